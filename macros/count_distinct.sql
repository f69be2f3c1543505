{#-
    count(distinct expression), nulls not counted. Dispatched: Spark counts the set of values instead
    (macros/engines/spark.sql says why).
-#}
{% macro count_distinct(expression) -%}
    {{ return(adapter.dispatch('count_distinct')(expression)) }}
{%- endmacro %}

{% macro default__count_distinct(expression) -%}
    count(distinct {{ expression }})
{%- endmacro %}
