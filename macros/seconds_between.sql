{#-
    Whole seconds elapsed from `start_expression` to `end_expression` (two timestamps), truncated:
    1.9 s is 1. Exact (epoch microseconds), unlike counting second boundaries crossed.
    Null when either side is null.
-#}
{% macro seconds_between(start_expression, end_expression) -%}
    cast(
        floor(({{ epoch_microseconds(end_expression) }} - {{ epoch_microseconds(start_expression) }}) / 1000000.0)
        as {{ dbt.type_bigint() }}
    )
{%- endmacro %}
