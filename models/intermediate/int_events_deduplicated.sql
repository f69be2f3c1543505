{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- One row per event_id: the earliest-loaded copy wins (ordered by _loaded_at, then _load_id, then
-- _source_row); later copies are dropped whole, attributes are not merged. Incremental runs read only
-- loads at or after the latest load already kept and re-rank their event_ids together with the copy
-- already kept, so a full refresh gives the same rows.
-- person_id is the stitched person: the landed person_id when the copy has one, else the person
-- int_identity_map gives its anonymous_id, else the pseudo-person `anon:<anonymous_id>` (person_source
-- says which). An incremental run also re-resolves the kept events of every anonymous id whose mapping
-- changed since its last run (int_identity_map.mapped_loaded_at), and their last_loaded_at moves to that
-- load, so every model downstream that reads changes by load time picks them up.
-- The person an anonymous id was relinked away from (int_identity_previous_persons) may keep events of
-- their own: last_loaded_at of every event of such a person is at least the relink's load, so the
-- models downstream recompute that person too. An incremental run re-resolves the kept events of the
-- persons of every anonymous id relinked since its last run (previous and current persons: a current
-- person may have been a previous one before and lose the stamp).
{%- set event_columns = [
    'event_id', 'person_id', 'anonymous_id', 'event_name', 'source',
    'campaign_id', 'ad_set_id', 'ad_id',
    'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term', 'fbclid',
    'device_type', 'browser', 'os', 'country', 'city',
    'event_source_url', 'client_ip_address', 'client_user_agent', 'fbp', 'fbc', 'properties',
    'event_time', '_load_id', '_source_file', '_source_row', '_loaded_at',
] %}

with identity_map as (
    select * from {{ ref('int_identity_map') }}
),

previous_persons as (
    -- Per person an anonymous id was relinked away from: the latest such relink's load.
    {{ latest_relink_away_by_person() }}
),

new_events as (
    select
        {{ event_columns | join(',\n        ') }}
    from {{ ref('stg_events') }}
    {% if is_incremental() -%}
        -- `>=`: a load committed at the same instant as the latest kept one is read again; its copies
        -- are ranked against the kept ones below, so nothing is lost or doubled.
        where _loaded_at >= {{ last_run_watermark('_loaded_at') }}
    {%- endif %}
),

{% if is_incremental() -%}
    -- The kept copies as landed: person_id back to the copy's own (null when it had only an anonymous id).
    kept_as_landed as (
        select
            {%- for column_name in event_columns %}
                {% if column_name == 'person_id' -%}
                    case when person_source = 'landed' then person_id end as person_id
                {%- else -%}
                    {{ column_name }}
                {%- endif %}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ this }}
    ),

    already_kept as (
        select kept_as_landed.*
        from kept_as_landed
        where kept_as_landed.event_id in (select new_events.event_id from new_events)
    ),

    restitched as (
        -- Kept events of anonymous ids whose person may have changed since the last run.
        select kept_as_landed.*
        from kept_as_landed
        where
            kept_as_landed.person_id is null
            and kept_as_landed.anonymous_id in (
                select identity_map.anonymous_id
                from identity_map
                where identity_map.mapped_loaded_at >= {{ last_run_watermark('last_loaded_at') }}
            )
    ),

    repersoned as (
        -- Kept events of the persons of an anonymous id relinked since the last run.
        select kept_as_landed.*
        from kept_as_landed
        where kept_as_landed.event_id in (
            select stored.event_id
            from {{ this }} as stored
            where stored.person_id in ({{ relinked_persons(last_run_watermark('last_loaded_at')) }})
        )
    ),

    candidate_copies as (
        select * from new_events
        union all
        select * from already_kept
        union all
        select * from restitched
        union all
        select * from repersoned
    ),
{%- else -%}
    candidate_copies as (
        select * from new_events
    ),
{%- endif %}

ranked_copies as (
    select
        *,
        row_number() over (
            partition by event_id
            order by _loaded_at, _load_id, _source_row
        ) as copy_rank
    from candidate_copies
),

resolved as (
    select
        {%- for column_name in event_columns %}
            {% if column_name == 'person_id' -%}
                case
                    when ranked_copies.person_id is not null then ranked_copies.person_id
                    when identity_map.person_id is not null then identity_map.person_id
                    else {{ pseudo_person_id('ranked_copies.anonymous_id') }}
                end as person_id,
            {%- else -%}
                ranked_copies.{{ column_name }},
            {%- endif %}
        {%- endfor %}
        case
            when ranked_copies.person_id is not null then 'landed'
            when identity_map.person_id is not null then 'identity'
            else 'anonymous'
        end as person_source,
        -- The copy's load, or the identity observation's when that came later and gave the person.
        case
            when ranked_copies.person_id is null and identity_map.mapped_loaded_at > ranked_copies._loaded_at
                then identity_map.mapped_loaded_at
            else ranked_copies._loaded_at
        end as resolved_loaded_at
    from ranked_copies
    left join identity_map
        on
            ranked_copies.person_id is null
            and ranked_copies.anonymous_id = identity_map.anonymous_id
    where ranked_copies.copy_rank = 1
),

final as (
    select
        {%- for column_name in event_columns %}
            resolved.{{ column_name }},
        {%- endfor %}
        resolved.person_source,
        -- Or the load of a relink that moved an anonymous id away from the person, when later.
        case
            when previous_persons.relinked_loaded_at > resolved.resolved_loaded_at
                then previous_persons.relinked_loaded_at
            else resolved.resolved_loaded_at
        end as last_loaded_at
    from resolved
    left join previous_persons
        on resolved.person_id = previous_persons.person_id
)

select * from final
