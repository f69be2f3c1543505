-- person_conversion_summary adds up to its sources: total conversions to conversion_event's rows,
-- funnels entered and converted to conversion_funnel's rows. Returns one row per disagreement.
with summary as (
    select
        sum(total_conversions) as total_conversions,
        sum(funnels_entered) as funnels_entered,
        sum(funnels_converted) as funnels_converted
    from {{ ref('person_conversion_summary') }}
),

conversions as (
    select count(*) as total_conversions
    from {{ ref('conversion_event') }}
),

funnels as (
    select
        count(*) as funnels_entered,
        coalesce(sum(case when is_converted then 1 else 0 end), 0) as funnels_converted
    from {{ ref('conversion_funnel') }}
    where not is_excluded
)

select
    summary.total_conversions,
    conversions.total_conversions as conversion_event_rows,
    summary.funnels_entered,
    funnels.funnels_entered as conversion_funnel_rows,
    summary.funnels_converted,
    funnels.funnels_converted as converted_funnel_rows
from summary
cross join conversions
cross join funnels
where
    coalesce(summary.total_conversions, 0) <> conversions.total_conversions
    or coalesce(summary.funnels_entered, 0) <> funnels.funnels_entered
    or coalesce(summary.funnels_converted, 0) <> funnels.funnels_converted
