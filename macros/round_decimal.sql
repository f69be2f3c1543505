{#-
    `expression` (an average or a median) rounded half away from zero to `digits` decimals, as
    decimal(18, digits). Dispatched because PostgreSQL has no round(double precision, integer).
-#}
{% macro round_decimal(expression, digits) -%}
    {{ return(adapter.dispatch('round_decimal')(expression, digits)) }}
{%- endmacro %}

{% macro default__round_decimal(expression, digits) -%}
    cast(round({{ expression }}, {{ digits }}) as decimal(18, {{ digits }}))
{%- endmacro %}
