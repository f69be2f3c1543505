{{ config(materialized='view') }}

-- Every observation that an anonymous id is a person: the identities stream's rows, and each landed
-- event or conversion copy that carries both ids (observed at its own time, source `event` or
-- `conversion`). A copy whose two ids are equal links nothing and is left out (the identities stream
-- rejects such rows at ingest). int_identity_map decides which person each anonymous id belongs to;
-- rpt_identity_conflicts lists the observations it ignores.
with identities as (
    select * from {{ ref('stg_identities') }}
),

events as (
    select * from {{ ref('stg_events') }}
),

conversions as (
    select * from {{ ref('stg_conversions') }}
),

observations as (
    select
        identities.anonymous_id,
        identities.person_id,
        identities.observed_at,
        coalesce(identities.source, 'identity') as source,
        'identity' as observation_kind,
        identities._load_id,
        identities._source_file,
        identities._source_row,
        identities._loaded_at
    from identities

    union all

    select
        events.anonymous_id,
        events.person_id,
        events.event_time as observed_at,
        'event' as source,
        'event' as observation_kind,
        events._load_id,
        events._source_file,
        events._source_row,
        events._loaded_at
    from events
    where
        events.anonymous_id is not null
        and events.person_id is not null
        and events.anonymous_id <> events.person_id

    union all

    select
        conversions.anonymous_id,
        conversions.person_id,
        conversions.conversion_time as observed_at,
        'conversion' as source,
        'conversion' as observation_kind,
        conversions._load_id,
        conversions._source_file,
        conversions._source_row,
        conversions._loaded_at
    from conversions
    where
        conversions.anonymous_id is not null
        and conversions.person_id is not null
        and conversions.anonymous_id <> conversions.person_id
)

select * from observations
