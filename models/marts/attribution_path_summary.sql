-- Which sequences of channels (and of campaigns) convert: one row per path type (channel, campaign) and
-- path, over all converting paths (attribution_paths, one per conversion) and non-converting paths
-- (attribution_paths_non_converting, one per person with touches and no conversion), with the number of
-- each, the conversion rate, the revenue and the path's rank by conversions. A table rebuilt on every run.
with converting as (
    select * from {{ ref('attribution_paths') }}
),

non_converting as (
    select * from {{ ref('attribution_paths_non_converting') }}
),

all_paths as (
    select
        'channel' as path_type,
        channel_path as path,
        touches_count,
        value_cents_reporting,
        true as is_converting
    from converting
    union all
    select
        'campaign' as path_type,
        campaign_path as path,
        touches_count,
        value_cents_reporting,
        true as is_converting
    from converting
    union all
    select
        'channel' as path_type,
        channel_path as path,
        touches_count,
        cast(null as {{ dbt.type_bigint() }}) as value_cents_reporting,
        false as is_converting
    from non_converting
    union all
    select
        'campaign' as path_type,
        campaign_path as path,
        touches_count,
        cast(null as {{ dbt.type_bigint() }}) as value_cents_reporting,
        false as is_converting
    from non_converting
),

summary as (
    select
        path_type,
        path,
        count(case when is_converting then 1 end) as conversions_count,
        count(case when not is_converting then 1 end) as non_converting_paths_count,
        -- null, never a partial sum, when a conversion of the path has no reporting-currency value
        case
            when
                count(case when is_converting then 1 end)
                = count(case when is_converting then value_cents_reporting end)
                then coalesce(sum(case when is_converting then value_cents_reporting end), 0)
        end as revenue_cents,
        max(touches_count) as touches_count
    from all_paths
    group by
        path_type,
        path
),

final as (
    select
        summary.path_type,
        summary.path,
        cast(summary.touches_count as {{ dbt.type_bigint() }}) as touches_count,
        cast(summary.conversions_count as {{ dbt.type_bigint() }}) as conversions_count,
        cast(summary.non_converting_paths_count as {{ dbt.type_bigint() }}) as non_converting_paths_count,
        {{ percentage(
            'summary.conversions_count', 'summary.conversions_count + summary.non_converting_paths_count'
        ) }} as conversion_rate,
        cast(summary.revenue_cents as {{ dbt.type_bigint() }}) as revenue_cents,
        cast(
            row_number() over (
                partition by summary.path_type
                order by summary.conversions_count desc, coalesce(summary.revenue_cents, -1) desc, summary.path
            ) as {{ dbt.type_bigint() }}
        ) as conversions_rank
    from summary
)

select * from final
