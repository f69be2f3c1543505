-- The path marts agree with attribution and with each other: every conversion of conversion_event has one
-- path whose touch count is the touches_in_path of its attribution rows (0 without touches), and the path
-- summary counts every converting and non-converting path once per path type. Returns the differences.
with conversions as (
    select * from {{ ref('conversion_event') }}
),

paths as (
    select * from {{ ref('attribution_paths') }}
),

non_converting as (
    select * from {{ ref('attribution_paths_non_converting') }}
),

summary as (
    select * from {{ ref('attribution_path_summary') }}
),

attribution as (
    select * from {{ ref('conversion_attribution') }}
),

touches_by_conversion as (
    select
        conversion_id,
        max(touches_in_path) as touches_in_path
    from attribution
    where attribution_model = 'first_touch'
    group by conversion_id
),

path_differences as (
    select
        'conversion without a path, or a path without a conversion' as problem,
        coalesce(conversions.id, paths.conversion_id) as conversion_id
    from conversions
    full outer join paths
        on conversions.id = paths.conversion_id
    where conversions.id is null or paths.conversion_id is null
    union all
    select
        'touches_count differs from touches_in_path' as problem,
        paths.conversion_id
    from paths
    inner join touches_by_conversion
        on paths.conversion_id = touches_by_conversion.conversion_id
    where paths.touches_count <> touches_by_conversion.touches_in_path
),

summary_totals as (
    select
        path_type,
        sum(conversions_count) as conversions_count,
        sum(non_converting_paths_count) as non_converting_paths_count
    from summary
    group by path_type
),

summary_differences as (
    select
        'path summary totals differ from the path marts for path type ' || summary_totals.path_type as problem,
        cast(null as {{ dbt.type_string() }}) as conversion_id
    from summary_totals
    where
        summary_totals.conversions_count <> (select count(*) from paths)
        or summary_totals.non_converting_paths_count <> (select count(*) from non_converting)
),

final as (
    select * from path_differences
    union all
    select * from summary_differences
)

select * from final
