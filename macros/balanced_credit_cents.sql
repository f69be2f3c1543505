{#-
    A touch's share of a conversion's money in whole cents: `rounded_column` (floor of value × credit) plus,
    on the conversion's latest credited touch (`is_latest_credited_touch`), the cents the floors lost, so the
    shares of each conversion and attribution model add up to `value_column` exactly. Reads the columns
    conversion_id, attribution_model and is_latest_credited_touch of `relation`.
-#}
{% macro balanced_credit_cents(relation, value_column, rounded_column) -%}
    {{ relation }}.{{ rounded_column }} + case
        when {{ relation }}.is_latest_credited_touch
            then
                {{ relation }}.{{ value_column }}
                - sum({{ relation }}.{{ rounded_column }}) over (
                    partition by {{ relation }}.conversion_id, {{ relation }}.attribution_model
                )
        else 0
    end
{%- endmacro %}
