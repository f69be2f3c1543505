{#-
    Meta `ct`: lower-case, no spaces, no punctuation, no digits: letters only, accents kept
    (`San Francisco` → `sanfrancisco`, `São Paulo` → `sãopaulo`, `St. Louis` → `stlouis`).
    Null when no letter is left.
-#}
{% macro meta_normalize_city(expression) -%}
    nullif({{ meta_letters_only(meta_clean_lower(expression)) }}, '')
{%- endmacro %}
