-- value_cents_reporting is never null where it can be computed: a value of 0, a value already in the
-- reporting currency, or a currency with a rate on the conversion's UTC day while the reporting
-- currency has one too. (Rows without a
-- rate are caught by the not_null test on the column: this test tells the two failures apart.)
-- On an incremental build it reads the conversions this run rewrote (test_scope, macros/test_scope.sql).
with conversions as (
    select * from {{ ref('conversion_event') }}
    where {{ test_scope(['last_loaded_at', 'optimized_at'], key='conversion_key', relation=ref('conversion_event')) }}
),

exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),

computable as (
    select
        conversions.id,
        conversions.value_cents,
        conversions.currency,
        conversions.conversion_time,
        conversions.value_cents_reporting
    from conversions
    left join exchange_rates as conversion_rates
        on
            conversions.currency = conversion_rates.currency
            and {{ utc_date('conversions.conversion_time') }} = conversion_rates.rate_date
    left join exchange_rates as reporting_rates
        on
            conversions.reporting_currency = reporting_rates.currency
            and {{ utc_date('conversions.conversion_time') }} = reporting_rates.rate_date
    where
        conversions.value_cents = 0
        or conversions.currency = conversions.reporting_currency
        or (conversion_rates.units_per_usd is not null and reporting_rates.units_per_usd is not null)
),

final as (
    select *
    from computable
    where value_cents_reporting is null
)

select * from final
