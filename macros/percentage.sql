{#-
    100 × numerator / denominator as decimal(9, 2), rounded half away from zero to 2 decimals
    (1/8 → 12.50, 1/3 → 33.33, 2/3 → 66.67); null when the denominator is 0 or null.
    For non-negative counts. Computed as floor((20000·n + d) / 2d) / 100, so the rounding is exact
    and identical on every engine (no float ties, no banker's rounding).
-#}
{% macro percentage(numerator, denominator) -%}
    cast(
        floor((20000.0 * ({{ numerator }}) + ({{ denominator }})) / (2.0 * nullif({{ denominator }}, 0))) / 100
        as decimal(9, 2)
    )
{%- endmacro %}
