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
-- the loads after the latest load already kept. The ingest gives every load a time after every earlier
-- one, so each copy they read ranks after every kept copy: a copy of an event already kept changes
-- nothing and is left out, and the copies of new events are ranked among themselves, so a full refresh
-- gives the same rows. A run with nothing new writes only the events it re-resolves (below) and reads
-- the table's other rows by a few columns only (their ids, persons and anonymous ids), never whole.
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
    select
        anonymous_id,
        person_id,
        mapped_loaded_at
    from {{ ref('int_identity_map') }}
),

previous_persons as (
    -- Per person an anonymous id was relinked away from: the latest such relink's load.
    {{ latest_relink_away_by_person() }}
),

-- On a full build these are every landed copy, which the CTEs below read three times: not materialized,
-- so each reads the staged rows itself. DuckDB would otherwise first hold all of them, every column, in
-- memory and spill most of it to disk: at 10M events that took twice as long as the whole model does now.
-- An incremental run's few new copies are left to the engine, which keeps them in memory.
landed_copies as {% if not is_incremental() %}{{ not_materialized_cte_hint() }}{% endif %} (
    select
        {{ event_columns | join(',\n        ') }}
    from {{ ref('stg_events') }}
    {% if is_incremental() -%}
        where _loaded_at > {{ last_run_watermark('_loaded_at') }}
    {%- endif %}
),

{% if is_incremental() -%}
    -- The copies of events not kept yet. A copy of a kept event was loaded after that event's kept copy
    -- (it is from a later load), so it loses to it.
    new_events as (
        select landed_copies.*
        from landed_copies
        where not exists (
            select 1
            from {{ this }} as stored
            where stored.event_id = landed_copies.event_id
        )
    ),

    -- The kept events to re-resolve, found by their ids first (a few columns of the table), so that only
    -- their own rows are read whole: the kept anonymous events of the anonymous ids whose person may have
    -- changed since the last run, and the kept events of the persons of an anonymous id relinked since.
    reread_rows as (
        select stored.{{ row_locator('event_id') }} as row_locator
        from {{ this }} as stored
        where
            stored.person_source <> 'landed'
            and stored.anonymous_id in (
                select identity_map.anonymous_id
                from identity_map
                where identity_map.mapped_loaded_at > {{ last_run_watermark('last_loaded_at') }}
            )

        union

        select stored.{{ row_locator('event_id') }} as row_locator
        from {{ this }} as stored
        where stored.person_id in ({{ relinked_persons(last_run_watermark('last_loaded_at')) }})
    ),

    -- Those kept copies as landed: person_id back to the copy's own (null when it had only an
    -- anonymous id).
    kept_copies as (
        select
            {%- for column_name in event_columns %}
                {% if column_name == 'person_id' -%}
                    case when stored.person_source = 'landed' then stored.person_id end as person_id
                {%- else -%}
                    stored.{{ column_name }}
                {%- endif %}{{ ',' if not loop.last }}
            {%- endfor %}
        from {{ this }} as stored
        where stored.{{ row_locator('event_id') }} in (select reread_rows.row_locator from reread_rows)
    ),

    candidate_copies as (
        select * from new_events
        union all
        select * from kept_copies
    ),
{%- else -%}
    candidate_copies as {{ not_materialized_cte_hint() }} (
        select * from landed_copies
    ),
{%- endif %}

-- The event ids with more than one candidate copy. Only their copies are ranked: most events arrive once,
-- and ranking every copy sorted the whole history (at 10M events a quarter of the model's CPU, and the
-- sort spilled to disk). `is not distinct from`: a missing event_id ranks its copies together, as the
-- window's partition does.
duplicated_event_ids as (
    select event_id
    from candidate_copies
    group by event_id
    having count(*) > 1
),

ranked_copies as (
    select
        *,
        1 as copy_rank
    from candidate_copies
    where
        not exists (
            select 1 from duplicated_event_ids
            where duplicated_event_ids.event_id is not distinct from candidate_copies.event_id
        )

    union all

    select
        *,
        row_number() over (
            partition by event_id
            order by _loaded_at, _load_id, _source_row
        ) as copy_rank
    from candidate_copies
    where
        exists (
            select 1 from duplicated_event_ids
            where duplicated_event_ids.event_id is not distinct from candidate_copies.event_id
        )
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
