{#-
    A touch's share of a conversion's money in whole cents: `rounded_column` (floor of value × credit) plus,
    on the conversion's latest credited touch, the cents the floors lost, so the shares of each conversion
    and attribution model add up to `value_column` exactly. The latest credited touch is the row with the
    highest touch_position (positions are unique within a path; a conversion credited whole has a single
    row, without a position). Reads touch_position, `value_column` and `rounded_column` of `relation`, and
    of `totals`, the relation's rows grouped by conversion_id and attribution_model and joined to it,
    last_touch_position (their highest touch_position) and `rounded_column` (the sum of theirs).
-#}
{% macro balanced_credit_cents(relation, totals, value_column, rounded_column) -%}
    {{ relation }}.{{ rounded_column }} + case
        when coalesce({{ relation }}.touch_position = {{ totals }}.last_touch_position, true)
            then {{ relation }}.{{ value_column }} - {{ totals }}.{{ rounded_column }}
        else 0
    end
{%- endmacro %}
