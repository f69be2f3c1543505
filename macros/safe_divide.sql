{#-
    numerator / denominator as a non-integer division on every engine (Postgres would truncate two
    integers); null when the denominator is 0 or null.
-#}
{% macro safe_divide(numerator, denominator) -%}
    (({{ numerator }}) * 1.0 / nullif({{ denominator }}, 0))
{%- endmacro %}

{#-
    A non-negative number rounded half up (= half away from zero) to a whole number, as a bigint:
    floor(x + 0.5). Spelled out because engines round halves differently (Postgres rounds a double
    half to even). Used for the integer columns of the metrics (counts, cents, seconds, hours).
-#}
{% macro round_half_up(expression) -%}
    cast(floor(({{ expression }}) + 0.5) as {{ dbt.type_bigint() }})
{%- endmacro %}
