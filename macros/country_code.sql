{#-
    Two-letter country codes upper-cased (`us` → `US`); anything else (a country name such as
    `United States`) trimmed and kept as sent, for the Meta normalization to map to ISO alpha-2.
-#}
{% macro country_code(column_name) -%}
    case
        when length({{ trim_whitespace(column_name) }}) = 2 then upper({{ trim_whitespace(column_name) }})
        else {{ clean_string(column_name) }}
    end
{%- endmacro %}
