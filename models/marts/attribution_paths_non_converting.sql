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
        {{ dbt.listagg(
            measure='channel',
            delimiter_text="' > '",
            order_by_clause='order by touchpoint_time, touchpoint_event_id',
        ) }} as channel_path,
        {{ dbt.listagg(
            measure='campaign_id',
            delimiter_text="' > '",
            order_by_clause='order by touchpoint_time, touchpoint_event_id',
        ) }} as campaign_path,
        cast(count(*) as {{ dbt.type_bigint() }}) as touches_count,
        cast(count(distinct channel) as {{ dbt.type_bigint() }}) as channels_count,
        cast(count(distinct campaign_id) as {{ dbt.type_bigint() }}) as campaigns_count,
        min(touchpoint_time) as first_touch_at,
        max(touchpoint_time) as last_touch_at
    from non_converting_touches
    group by person_id
)

select * from final
