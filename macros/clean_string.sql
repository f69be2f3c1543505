{#-
    Trimmed text, with empty strings turned into null. Producers send '' and null interchangeably
    (CSV cannot tell them apart), so staging treats both as "not provided".
-#}
{% macro clean_string(column_name) -%}
    nullif(trim({{ column_name }}), '')
{%- endmacro %}

{#- The same, lower-cased: for enumerations and case-insensitive codes. -#}
{% macro clean_lower(column_name) -%}
    lower({{ clean_string(column_name) }})
{%- endmacro %}
