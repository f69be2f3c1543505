-- The report dataset `attribution_by_campaign`: credited conversions and revenue per period (daily,
-- weekly, monthly, reporting time zone) × attribution model × campaign × channel × conversion type,
-- summed from conversion_attribution. `convopt report` exports the rows of one period type in its
-- range (every column but period_type).
--
-- Summed by day first, then the days into weeks and months: the reporting-time-zone day of each
-- attribution row is computed once, not once per period type, and the weeks and months add up a few
-- thousand day rows instead of every attribution row again. The sums add up exactly (decimals and
-- integers), and so do the conversions touched: a conversion has one conversion_time, so it is in one
-- day of its week and its month and counts once there.
with attribution as (
    select * from {{ ref('conversion_attribution') }}
),

credits_by_day as (
    select
        {{ reporting_period_start('attribution.conversion_time', 'day') }} as period_date,
        attribution.attribution_model,
        attribution.campaign_id,
        attribution.channel,
        attribution.conversion_type,
        max(attribution.reporting_currency) as reporting_currency,
        count(distinct case when attribution.credit > 0 then attribution.conversion_id end) as conversions_touched,
        sum(attribution.credit) as credit,
        sum(attribution.credited_value_cents) as credited_value_cents
    from attribution
    group by
        {{ reporting_period_start('attribution.conversion_time', 'day') }},
        attribution.attribution_model,
        attribution.campaign_id,
        attribution.channel,
        attribution.conversion_type
),

period_types as (
    {{ period_types_query() }}
),

credits_by_period as (
    select
        period_types.period_type,
        {{ period_start_of_date('period_types.period_type', 'credits_by_day.period_date') }} as period_date,
        credits_by_day.attribution_model,
        credits_by_day.campaign_id,
        credits_by_day.channel,
        credits_by_day.conversion_type,
        credits_by_day.reporting_currency,
        credits_by_day.conversions_touched,
        credits_by_day.credit,
        credits_by_day.credited_value_cents
    from credits_by_day
    cross join period_types
),

final as (
    select
        period_type,
        period_date,
        attribution_model,
        campaign_id,
        channel,
        conversion_type,
        -- The same value on every row (var reporting_currency).
        max(reporting_currency) as reporting_currency,
        cast(sum(conversions_touched) as {{ dbt.type_bigint() }}) as conversions_touched,
        cast(sum(credit) as decimal(18, 9)) as attributed_conversions,
        cast(sum(credited_value_cents) as {{ dbt.type_bigint() }}) as credited_value_cents
    from credits_by_period
    group by
        period_type,
        period_date,
        attribution_model,
        campaign_id,
        channel,
        conversion_type
)

select * from final
