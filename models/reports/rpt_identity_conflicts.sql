-- Identity observations the identity map ignores: an anonymous id seen with another person after its
-- first observation (a shared device, a reused cookie, a producer bug). One row per ignored observation,
-- with the landing file and row it came from (an event's or conversion's copy, or an identities row) and
-- the person the anonymous id stays with. Data test assert_no_identity_conflicts warns with their count.
with observations as (
    select * from {{ ref('int_identity_observations') }}
),

identity_map as (
    select * from {{ ref('int_identity_map') }}
),

final as (
    select
        observations.anonymous_id,
        identity_map.person_id as mapped_person_id,
        observations.person_id as conflicting_person_id,
        observations.observed_at,
        observations.source,
        observations.observation_kind,
        identity_map.first_observed_at,
        observations._source_file,
        observations._source_row,
        {{ dbt.concat([
            "'anonymous id first observed with person '",
            'identity_map.person_id',
            "', which keeps it; this observation names person '",
            'observations.person_id',
            "' and is ignored'",
        ]) }} as reason
    from observations
    inner join identity_map
        on observations.anonymous_id = identity_map.anonymous_id
    where observations.person_id <> identity_map.person_id
)

select * from final
