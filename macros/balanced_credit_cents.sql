{#-
    A touch's share of a conversion's money in whole cents: `rounded_column` (floor of value × credit) plus,
    on the conversion's latest credited touch, the cents the floors lost, so the shares of each conversion
    and attribution model add up to `value_column` exactly. The latest credited touch is the row with the
    highest touch_position (positions are unique within a path; a conversion credited whole has a single
    row, without a position). Reads conversion_id, attribution_model and touch_position of `relation`; both
    window sums share one partition, so the engine computes them in one pass.
-#}
{% macro balanced_credit_cents(relation, value_column, rounded_column) -%}
    {%- set conversion_model = 'partition by ' ~ relation ~ '.conversion_id, ' ~ relation ~ '.attribution_model' -%}
    {{ relation }}.{{ rounded_column }} + case
        when coalesce({{ relation }}.touch_position = max({{ relation }}.touch_position) over ({{ conversion_model }}), true)
            then {{ relation }}.{{ value_column }} - sum({{ relation }}.{{ rounded_column }}) over ({{ conversion_model }})
        else 0
    end
{%- endmacro %}
