{#-
    First day (a date) of the `period` ('day', 'week' or 'month') containing the instant
    `timestamp_expression`, in the reporting time zone (var `reporting_timezone`, default UTC).
    Weeks are ISO weeks starting on Monday (dbt.date_trunc('week') is Monday-based on DuckDB,
    Postgres and Spark).
-#}
{% macro reporting_period_start(timestamp_expression, period) -%}
    cast({{ dbt.date_trunc(period, to_reporting_timezone(timestamp_expression)) }} as date)
{%- endmacro %}

{#- The wall-clock time in the reporting time zone of an instant, as a timestamp without zone. -#}
{% macro to_reporting_timezone(timestamp_expression) -%}
    {{ return(adapter.dispatch('to_reporting_timezone')(timestamp_expression)) }}
{%- endmacro %}

{% macro default__to_reporting_timezone(timestamp_expression) -%}
    ({{ timestamp_expression }} at time zone '{{ var("reporting_timezone", "UTC") }}')
{%- endmacro %}

{% macro duckdb__to_reporting_timezone(timestamp_expression) -%}
    timezone('{{ var("reporting_timezone", "UTC") }}', {{ timestamp_expression }})
{%- endmacro %}

{% macro spark__to_reporting_timezone(timestamp_expression) -%}
    from_utc_timestamp({{ timestamp_expression }}, '{{ var("reporting_timezone", "UTC") }}')
{%- endmacro %}
