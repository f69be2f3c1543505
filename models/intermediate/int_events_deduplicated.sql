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
{%- set event_columns = [
    'event_id', 'person_id', 'event_name', 'source',
    'campaign_id', 'ad_set_id', 'ad_id',
    'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term', 'fbclid',
    'device_type', 'browser', 'os', 'country', 'city',
    'event_source_url', 'client_ip_address', 'client_user_agent', 'fbp', 'fbc', 'properties',
    'event_time', '_load_id', '_source_file', '_source_row', '_loaded_at',
] %}

with new_events as (
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
    already_kept as (
        select
            {{ event_columns | join(',\n            ') }}
        from {{ this }}
        where event_id in (select new_events.event_id from new_events)
    ),

    candidate_copies as (
        select * from new_events
        union all
        select * from already_kept
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

final as (
    select
        {{ event_columns | join(',\n        ') }}
    from ranked_copies
    where copy_rank = 1
)

select * from final
