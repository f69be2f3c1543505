-- One row per person with touches and no conversion at all: all their touches' channels and campaigns in
-- time order (touchpoint_time, then event id), joined with ' > ', the non-converting paths of attribution
-- model markov. A table rebuilt on every run.
with conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

touchpoints as (
    select * from {{ ref('int_touchpoints') }}
),

non_converting_touches as (
    select
        touchpoints.person_id,
        touchpoints.touchpoint_event_id,
        touchpoints.channel,
        coalesce(touchpoints.campaign_id, '(unattributed)') as campaign_id,
        touchpoints.touchpoint_time
    from touchpoints
    where
        not exists (
            select 1 from conversions
            where conversions.person_id = touchpoints.person_id
        )
),

final as (
    select
        person_id,
        {{ touch_path_columns() }}
    from non_converting_touches
    group by person_id
)

select * from final
