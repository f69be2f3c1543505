{#-
    First day (a date) of the reporting period of type `period_type_expression` (a SQL expression
    worth 'daily', 'weekly' or 'monthly', e.g. a column of a period-types CTE) that contains the
    instant `timestamp_expression`, in the reporting time zone. Lets one query build all three period
    types by cross joining its facts with the period types. Built on reporting_period_start (ISO weeks
    start on Monday).
-#}
{% macro period_start(period_type_expression, timestamp_expression) -%}
    case {{ period_type_expression }}
        when 'daily' then {{ reporting_period_start(timestamp_expression, 'day') }}
        when 'weekly' then {{ reporting_period_start(timestamp_expression, 'week') }}
        when 'monthly' then {{ reporting_period_start(timestamp_expression, 'month') }}
    end
{%- endmacro %}

{#-
    The same for a calendar day that is already a local day (e.g. the ad account day of ad spend):
    the day itself, the Monday of its ISO week, or the first of its month.
-#}
{% macro period_start_of_date(period_type_expression, date_expression) -%}
    case {{ period_type_expression }}
        when 'daily' then cast({{ date_expression }} as date)
        when 'weekly' then cast({{ dbt.date_trunc('week', date_expression) }} as date)
        when 'monthly' then cast({{ dbt.date_trunc('month', date_expression) }} as date)
    end
{%- endmacro %}

{#- The period types of conversion_metrics as a three-row query (period_type). -#}
{% macro period_types_query() -%}
    select 'daily' as period_type
    union all
    select 'weekly' as period_type
    union all
    select 'monthly' as period_type
{%- endmacro %}
