{#-
    Aggregate: the value of `expression` on the first row in `order_expression` order among the
    rows of the group where it is not null (and `where` holds, when given). Null when there is none.
    Used to fill a conversion's missing attributes from its later copies, in time order, and to pick the
    step event a person's funnel breakdown value comes from (funnel_stats_breakdown).
-#}
{% macro first_non_null(expression, order_expression, where=none) -%}
    {{ return(adapter.dispatch('first_non_null')(expression, order_expression, where)) }}
{%- endmacro %}

{% macro default__first_non_null(expression, order_expression, where) -%}
    {{ exceptions.raise_compiler_error(
        "first_non_null has no implementation for the '" ~ adapter.type() ~ "' adapter yet (macros/first_non_null.sql)"
    ) }}
{%- endmacro %}

{% macro duckdb__first_non_null(expression, order_expression, where) -%}
    arg_min({{ expression }}, {{ order_expression }}) filter (
        where {{ expression }} is not null{% if where %} and ({{ where }}){% endif %}
    )
{%- endmacro %}
