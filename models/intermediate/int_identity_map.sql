{{ config(materialized='table') }}

-- One row per anonymous id that has an identity observation: the person it belongs to. The rule (one
-- lookup, no chains): an anonymous id belongs to the person of its first observation, the earliest
-- observed_at; ties go to the observation landed first (load time, load id, row in the file), then to
-- the smaller person_id. Later observations with another person are conflicts: ignored here, listed in
-- rpt_identity_conflicts. A person_id is never looked up again (person ids are terminal: a person
-- that is also seen as another visitor's anonymous id keeps its own rows), and many anonymous ids may
-- belong to one person. Rebuilt whole on every run (one row per anonymous id).
-- mapped_loaded_at is when the winning observation landed: it moves only when the person of the
-- anonymous id may have changed, and the deduplicated events and conversions re-resolve exactly the
-- anonymous ids whose mapped_loaded_at is newer than their last run.
with observations as (
    select * from {{ ref('int_identity_observations') }}
),

ranked as (
    select
        observations.*,
        row_number() over (
            partition by observations.anonymous_id
            order by
                observations.observed_at,
                observations._loaded_at,
                observations._load_id,
                observations._source_row,
                observations.person_id
        ) as observation_rank
    from observations
),

first_observations as (
    select * from ranked
    where observation_rank = 1
),

observation_counts as (
    select
        ranked.anonymous_id,
        cast(count(*) as {{ dbt.type_int() }}) as observations_count,
        cast(
            sum(case when ranked.person_id <> first_observations.person_id then 1 else 0 end)
            as {{ dbt.type_int() }}
        ) as conflicting_observations_count
    from ranked
    inner join first_observations
        on ranked.anonymous_id = first_observations.anonymous_id
    group by ranked.anonymous_id
),

final as (
    select
        first_observations.anonymous_id,
        first_observations.person_id,
        {{ pseudo_person_id('first_observations.anonymous_id') }} as pseudo_person_id,
        first_observations.observed_at as first_observed_at,
        first_observations.source,
        first_observations.observation_kind,
        first_observations._source_file,
        first_observations._source_row,
        observation_counts.observations_count,
        observation_counts.conflicting_observations_count,
        first_observations._loaded_at as mapped_loaded_at
    from first_observations
    inner join observation_counts
        on first_observations.anonymous_id = observation_counts.anonymous_id
)

select * from final
