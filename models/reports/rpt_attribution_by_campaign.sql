-- The report dataset `attribution_by_campaign`: credited conversions and revenue per period (daily,
-- weekly, monthly, reporting time zone) × attribution model × campaign × channel × conversion type,
-- summed from conversion_attribution. `convopt report` exports the rows of one period type in its
-- range (every column but period_type).
with attribution as (
    select * from {{ ref('conversion_attribution') }}
),

period_types as (
    {{ period_types_query() }}
),

credits_by_period as (
    select
        period_types.period_type,
        {{ period_start('period_types.period_type', 'attribution.conversion_time') }} as period_date,
        attribution.conversion_id,
        attribution.attribution_model,
        attribution.campaign_id,
        attribution.channel,
        attribution.conversion_type,
        attribution.reporting_currency,
        attribution.credit,
        attribution.credited_value_cents
    from attribution
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
        count(distinct case when credit > 0 then conversion_id end) as conversions_touched,
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
