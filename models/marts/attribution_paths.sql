-- One row per conversion with its path: the channels and campaigns of its touches in the lookback window
-- (the touches every attribution model credits), in path order (touchpoint_time, then event id), joined
-- with ' > '. A conversion without touches has the path `(no touches)` and 0 touches (attribution credits
-- it to channel direct, campaign (unattributed)). A table rebuilt on every run.
with conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

touchpoints as (
    select * from {{ ref('int_touchpoints') }}
),

path_touches as (
    select
        conversions.id as conversion_id,
        touchpoints.touchpoint_event_id,
        touchpoints.channel,
        coalesce(touchpoints.campaign_id, '(unattributed)') as campaign_id,
        touchpoints.touchpoint_time
    from conversions
    inner join touchpoints
        on {{ touch_in_lookback_window('conversions', 'touchpoints') }}
),

paths as (
    select
        conversion_id,
        {{ touch_path_columns() }}
    from path_touches
    group by conversion_id
),

final as (
    select
        conversions.id as conversion_id,
        conversions.person_id,
        conversions.conversion_type,
        coalesce(paths.channel_path, '(no touches)') as channel_path,
        coalesce(paths.campaign_path, '(no touches)') as campaign_path,
        conversions.reporting_currency,
        cast(coalesce(paths.touches_count, 0) as {{ dbt.type_bigint() }}) as touches_count,
        cast(coalesce(paths.channels_count, 0) as {{ dbt.type_bigint() }}) as channels_count,
        cast(coalesce(paths.campaigns_count, 0) as {{ dbt.type_bigint() }}) as campaigns_count,
        conversions.value_cents_reporting,
        paths.first_touch_at,
        paths.last_touch_at,
        conversions.conversion_time
    from conversions
    left join paths
        on conversions.id = paths.conversion_id
)

select * from final
