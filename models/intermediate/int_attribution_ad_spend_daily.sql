-- Ad delivery per ad account day × campaign in the reporting currency: the latest restatement of each
-- day × ad (stg_ad_spend), converted row by row with the day's exchange rates (convert_cents: cross rate
-- through USD, rounded half up to a whole cent; spend already in the reporting currency needs no rate),
-- then summed. This is the grain conversion_metrics joins
-- spend at, so spend is never repeated over conversions. A day × ad without a rate makes the day's
-- spend_cents null (flagged by a test), never a silently smaller sum.
with ad_spend as (
    select * from {{ ref('stg_ad_spend') }}
),

exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),

reporting_rates as (
    select
        rate_date,
        units_per_usd
    from exchange_rates
    where currency = '{{ var("reporting_currency", "USD") }}'
),

converted as (
    select
        ad_spend.spend_date,
        ad_spend.campaign_id,
        ad_spend.impressions,
        ad_spend.clicks,
        ad_spend._loaded_at,
        {{ reporting_cents(
            'ad_spend.spend_cents', 'ad_spend.currency', 'spend_rates.units_per_usd', 'reporting_rates.units_per_usd'
        ) }} as spend_cents_reporting
    from ad_spend
    left join exchange_rates as spend_rates
        on
            ad_spend.currency = spend_rates.currency
            and ad_spend.spend_date = spend_rates.rate_date
    left join reporting_rates
        on ad_spend.spend_date = reporting_rates.rate_date
),

final as (
    select
        campaign_id,
        case
            when count(spend_cents_reporting) = count(*)
                then cast(sum(spend_cents_reporting) as {{ dbt.type_bigint() }})
        end as spend_cents,
        cast(sum(impressions) as {{ dbt.type_bigint() }}) as impressions,
        cast(sum(clicks) as {{ dbt.type_bigint() }}) as clicks,
        cast(count(*) - count(spend_cents_reporting) as {{ dbt.type_bigint() }}) as ad_rows_without_rate,
        spend_date,
        min(_loaded_at) as first_loaded_at,
        max(_loaded_at) as last_loaded_at
    from converted
    group by
        spend_date,
        campaign_id
)

select * from final
