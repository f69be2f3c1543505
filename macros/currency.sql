{#-
    Money in minor units converted between currencies with the daily rates of seed
    `exchange_rates` (units of a currency per US dollar).

    convert_cents(value_cents, from_units_per_usd, to_units_per_usd): the value in the target
    currency's minor units, rounded half-up to a whole cent (values are >= 0, so half-up is also
    half away from zero): floor(value × to / from + 1/2). Computed exactly in integers on rates
    scaled by 10^6 (the seed has 6 decimals), so no floating-point error can flip a half cent:
        (2 × value × to_scaled + from_scaled) div (2 × from_scaled)
    Null when either rate is null (no rate for that currency and day).
-#}
{% macro convert_cents(value_cents, from_units_per_usd, to_units_per_usd) -%}
    {{ return(adapter.dispatch('convert_cents')(value_cents, from_units_per_usd, to_units_per_usd)) }}
{%- endmacro %}

{% macro default__convert_cents(value_cents, from_units_per_usd, to_units_per_usd) -%}
    {{ exceptions.raise_compiler_error(
        "convert_cents has no implementation for the '" ~ adapter.type() ~ "' adapter yet (macros/currency.sql)"
    ) }}
{%- endmacro %}

{% macro duckdb__convert_cents(value_cents, from_units_per_usd, to_units_per_usd) -%}
    cast(
        (
            2 * cast({{ value_cents }} as hugeint) * cast({{ to_units_per_usd }} * 1000000 as hugeint)
            + cast({{ from_units_per_usd }} * 1000000 as hugeint)
        ) // (2 * cast({{ from_units_per_usd }} * 1000000 as hugeint))
        as bigint
    )
{%- endmacro %}

{#- The calendar day (UTC) of an instant: the day whose exchange rate applies. -#}
{% macro utc_date(timestamp_expression) -%}
    {{ return(adapter.dispatch('utc_date')(timestamp_expression)) }}
{%- endmacro %}

{% macro default__utc_date(timestamp_expression) -%}
    {{ exceptions.raise_compiler_error(
        "utc_date has no implementation for the '" ~ adapter.type() ~ "' adapter yet (macros/currency.sql)"
    ) }}
{%- endmacro %}

{% macro duckdb__utc_date(timestamp_expression) -%}
    cast(timezone('UTC', {{ timestamp_expression }}) as date)
{%- endmacro %}

{#-
    An amount in the reporting currency (var `reporting_currency`): 0 stays 0 and an amount already in the
    reporting currency stays as it is (neither needs a rate); any other is converted with convert_cents
    through the two rates given (null when one is missing). The one rule for conversions, adjustments and
    ad spend.
-#}
{% macro reporting_cents(amount_cents, currency, from_units_per_usd, to_units_per_usd) -%}
    case
        when {{ amount_cents }} = 0 then 0
        when {{ currency }} = '{{ var("reporting_currency", "USD") }}' then {{ amount_cents }}
        else {{ convert_cents(amount_cents, from_units_per_usd, to_units_per_usd) }}
    end
{%- endmacro %}
