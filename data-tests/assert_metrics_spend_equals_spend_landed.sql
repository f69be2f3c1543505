-- Spend is never fanned out nor lost: in every period type and attribution model, conversion_metrics'
-- spend, impressions and clicks add up to exactly what landed in stg_ad_spend (latest restatement of each
-- day × ad; spend converted to the reporting currency day × ad by day × ad). Returns the differences.
with metrics as (
    select * from {{ ref('conversion_metrics') }}
),

ad_spend as (
    select * from {{ ref('stg_ad_spend') }}
),

exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),

landed as (
    select
        sum(
            {{ reporting_cents(
                'ad_spend.spend_cents', 'ad_spend.currency', 'spend_rates.units_per_usd', 'reporting_rates.units_per_usd'
            ) }}
        ) as spend_cents,
        sum(ad_spend.impressions) as impressions,
        sum(ad_spend.clicks) as clicks
    from ad_spend
    left join exchange_rates as spend_rates
        on
            ad_spend.currency = spend_rates.currency
            and ad_spend.spend_date = spend_rates.rate_date
    left join exchange_rates as reporting_rates
        on
            ad_spend.spend_date = reporting_rates.rate_date
            and reporting_rates.currency = '{{ var("reporting_currency", "USD") }}'
),

in_metrics as (
    select
        period_type,
        attribution_model,
        sum(spend_cents) as spend_cents,
        sum(impressions) as impressions,
        sum(clicks) as clicks
    from metrics
    group by
        period_type,
        attribution_model
)

select
    in_metrics.period_type,
    in_metrics.attribution_model,
    in_metrics.spend_cents,
    landed.spend_cents as landed_spend_cents,
    in_metrics.impressions,
    landed.impressions as landed_impressions,
    in_metrics.clicks,
    landed.clicks as landed_clicks
from in_metrics
cross join landed
where
    coalesce(in_metrics.spend_cents, -1) <> coalesce(landed.spend_cents, 0)
    or in_metrics.impressions <> coalesce(landed.impressions, 0)
    or in_metrics.clicks <> coalesce(landed.clicks, 0)
