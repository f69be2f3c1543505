{{ config(materialized='view') }}

-- The events funnels are matched on: behavioural events (deduplicated) and conversions, as one
-- stream with a common shape, restricted to the event names some funnel step or exclusion uses (the
-- definitions' names are lower-cased in int_funnel_definitions, as staging lower-cases events and
-- conversion types), or every event when a strict funnel exists (any other event of the person breaks
-- a strict attempt). A conversion matches a step by its conversion_type. The columns a step filter may
-- name (macros/funnel_filters.sql) are carried along; value_cents is a conversion's, null for events.
-- Which funnels exist comes only from the funnel definitions.
with funnel_definitions as (
    select * from {{ ref('int_funnel_definitions') }}
),

events as (
    select * from {{ ref('int_events_deduplicated') }}
),

conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

funnel_exclusions as (
    select * from {{ ref('int_funnel_exclusions') }}
),

-- The event names of every step and of every exclusion step.
step_event_names as (
    select funnel_definitions.event_name
    from funnel_definitions
    union
    select funnel_exclusions.event_name
    from funnel_exclusions
),

behavioural_events as (
    select
        events.person_id,
        'event' as event_source,
        events.event_id as source_record_id,
        events.event_id,
        cast(null as {{ dbt.type_string() }}) as conversion_id,
        events.event_name,
        events.campaign_id,
        events.ad_set_id,
        events.ad_id,
        events.utm_source,
        events.utm_medium,
        events.utm_campaign,
        events.utm_content,
        events.utm_term,
        events.device_type,
        events.browser,
        events.os,
        events.country,
        events.city,
        events.event_source_url,
        cast(null as {{ dbt.type_bigint() }}) as value_cents,
        events.properties,
        events.event_time,
        -- The earliest-loaded copy of an event is kept whole, so it changes after its load only when an
        -- identity observation stitches it to another person (last_loaded_at is that observation's load).
        events._loaded_at as first_loaded_at,
        events.last_loaded_at
    from events
    where
        events.event_name in (select step_event_names.event_name from step_event_names)
        -- A strict funnel is broken by any other event of the person: it needs them all.
        or exists (
            select 1 from funnel_definitions
            where funnel_definitions.order_type = 'strict'
        )
),

conversion_events as (
    select
        conversions.person_id,
        'conversion' as event_source,
        cast(conversions.id as {{ dbt.type_string() }}) as source_record_id,
        conversions.event_id,
        cast(conversions.id as {{ dbt.type_string() }}) as conversion_id,
        conversions.conversion_type as event_name,
        conversions.campaign_id,
        conversions.ad_set_id,
        conversions.ad_id,
        conversions.utm_source,
        conversions.utm_medium,
        conversions.utm_campaign,
        conversions.utm_content,
        conversions.utm_term,
        conversions.device_type,
        conversions.browser,
        conversions.os,
        conversions.country,
        conversions.city,
        conversions.event_source_url,
        cast(conversions.value_cents as {{ dbt.type_bigint() }}) as value_cents,
        conversions.properties,
        conversions.conversion_time as event_time,
        -- The first and the latest load of the conversion's copies: a later copy can fill attributes.
        conversions.created_at as first_loaded_at,
        conversions.last_loaded_at
    from conversions
    where
        conversions.conversion_type in (select step_event_names.event_name from step_event_names)
        or exists (
            select 1 from funnel_definitions
            where funnel_definitions.order_type = 'strict'
        )
),

final as (
    select * from behavioural_events
    union all
    select * from conversion_events
)

select * from final
