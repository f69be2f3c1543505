-- Conversions with a positive value that cannot be valued in the reporting currency: the one place
-- they are listed, with the reason. They stay in every fact with value_cents_reporting null, so
-- sums of money leave them out (quarantined from the money columns) while counts keep them; add
-- the missing exchange rate and rebuild with --full-refresh to value them.
{%- set reporting_currency = var('reporting_currency') %}

with conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),

rate_range as (
    select
        min(rate_date) as first_rate_date,
        max(rate_date) as last_rate_date
    from exchange_rates
),

unvalued as (
    select
        conversions.id,
        conversions.conversion_key,
        conversions.event_id,
        conversions.person_id,
        conversions.conversion_type,
        conversions.value_cents,
        conversions.currency,
        conversions.reporting_currency,
        conversions.conversion_time,
        conversions.last_loaded_at,
        {{ utc_date('conversions.conversion_time') }} as rate_date,
        conversion_rates.units_per_usd as conversion_units_per_usd,
        reporting_rates.units_per_usd as reporting_units_per_usd
    from conversions
    left join exchange_rates as conversion_rates
        on
            conversions.currency = conversion_rates.currency
            and {{ utc_date('conversions.conversion_time') }} = conversion_rates.rate_date
    left join exchange_rates as reporting_rates
        on
            reporting_rates.currency = '{{ reporting_currency }}'
            and {{ utc_date('conversions.conversion_time') }} = reporting_rates.rate_date
    where
        conversions.value_cents > 0
        and conversions.value_cents_reporting is null
),

final as (
    select
        unvalued.id,
        unvalued.conversion_key,
        unvalued.event_id,
        unvalued.person_id,
        unvalued.conversion_type,
        unvalued.value_cents,
        unvalued.currency,
        unvalued.reporting_currency,
        unvalued.conversion_time,
        unvalued.rate_date,
        case
            when unvalued.currency is null
                then 'no currency for a positive value'
            when unvalued.rate_date < rate_range.first_rate_date or unvalued.rate_date > rate_range.last_rate_date
                then
                    'no exchange rate for ' || unvalued.currency || ' on '
                    || cast(unvalued.rate_date as {{ dbt.type_string() }})
                    || ': the exchange-rate seed covers '
                    || cast(rate_range.first_rate_date as {{ dbt.type_string() }}) || ' to '
                    || cast(rate_range.last_rate_date as {{ dbt.type_string() }})
            when unvalued.conversion_units_per_usd is null
                then
                    'no exchange rate for ' || unvalued.currency || ' on '
                    || cast(unvalued.rate_date as {{ dbt.type_string() }})
            when unvalued.reporting_units_per_usd is null
                then
                    'no exchange rate for the reporting currency ' || unvalued.reporting_currency || ' on '
                    || cast(unvalued.rate_date as {{ dbt.type_string() }})
            else 'not valued'
        end as reason,
        unvalued.last_loaded_at
    from unvalued
    cross join rate_range
)

select * from final
