{#-
    Meta `external_id`: the advertiser's id of the person, trimmed only (ids can be case-sensitive,
    so no lower-casing). Meta recommends hashing it; `meta_hashed_user_data('external_id', …)` does.
    Null when empty.
-#}
{% macro meta_normalize_external_id(expression) -%}
    nullif({{ trim_whitespace(expression) }}, '')
{%- endmacro %}
