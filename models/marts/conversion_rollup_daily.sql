-- Daily conversion rollup (see the docs block conversion_rollups and macros/conversion_rollup.sql):
-- conversions, revenue in the reporting currency, average value, persons converting, new and repeat
-- customers per day (reporting time zone) × conversion_type × campaign × ad set × channel × utm_source
-- × device_type × country, as the conversions themselves report their campaign and tags.
with {{ conversion_rollup_inputs() }},

facts as (
    {{ conversion_rollup_facts('day') }}
),

measures as (
    select
        period_date,
        {{ conversion_rollup_dimensions() }},
        count(*) as conversions,
        sum(value_cents_reporting) as revenue_cents,
        {{ conversion_rollup_person_measures() }}
    from facts
    group by
        period_date,
        {{ conversion_rollup_dimensions() }}
),

final as (
    {{ conversion_rollup_final('daily', 'measures') }}
)

select * from final
