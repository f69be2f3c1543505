{#-
    Meta `db`: date of birth as YYYYMMDD. Accepts YYYY-MM-DD, YYYYMMDD, YYYY/MM/DD, MM/DD/YYYY
    (slashes are read in US order) and DD.MM.YYYY. Null when the text fits none of them, the date
    does not exist, or the year is outside 1900-2099.
-#}
{% macro meta_normalize_dob(expression) -%}
    {{ meta_parse_date_yyyymmdd(trim_whitespace(expression)) }}
{%- endmacro %}
