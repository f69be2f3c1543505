{{ config(materialized='table') }}

-- One row per anonymous id × person it may have belonged to before its current link: each person of an
-- observation of the anonymous id that landed before the winning observation did (int_identity_map's
-- mapped_loaded_at), other than the person it belongs to now. Such a person is, or could have been, the
-- winner before an observation observed earlier but landed later moved the anonymous id elsewhere (a
-- relink). relinked_loaded_at is when the current winner landed.
-- The deduplicated events and conversions give every row of such a person that load as last_loaded_at
-- (at least), so each incremental model downstream recomputes the person the rows moved away from
-- exactly like the one they moved to; the person-keyed models also delete, before they run, the rows of
-- a previous person relinked since their last run, so a person with no row left there loses them.
-- The rows change only when mapped_loaded_at moves (an observation landed after the winner never
-- counts: it is a conflict, or the new winner), so a model that recomputes the persons of the anonymous
-- ids remapped since its last run sees every change. Rebuilt whole on every run (one row per relinked
-- anonymous id and earlier person: none in most warehouses).
with observations as (
    select * from {{ ref('int_identity_observations') }}
),

identity_map as (
    select * from {{ ref('int_identity_map') }}
),

final as (
    select distinct
        observations.anonymous_id,
        observations.person_id as previous_person_id,
        identity_map.person_id,
        identity_map.mapped_loaded_at as relinked_loaded_at
    from observations
    inner join identity_map
        on observations.anonymous_id = identity_map.anonymous_id
    where
        observations._loaded_at < identity_map.mapped_loaded_at
        and observations.person_id <> identity_map.person_id
)

select * from final
