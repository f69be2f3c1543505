-- var('reporting_currency') must be a currency of seed exchange_rates, or no value can be
-- converted (every positive value_cents_reporting would be null). Fails with the missing code.
with exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),

reporting_currency as (
    select cast('{{ var("reporting_currency") }}' as {{ dbt.type_string() }}) as currency
),

final as (
    select reporting_currency.currency
    from reporting_currency
    where not exists (
        select 1
        from exchange_rates
        where exchange_rates.currency = reporting_currency.currency
    )
)

select * from final
