{#-
    True when the whole text matches the regular expression `pattern` (given as plain regex text,
    not as a SQL literal: each engine quotes it). Null in, null out. DuckDB's regexp_full_match here;
    PostgreSQL and Spark anchor `^(?:pattern)$` (macros/engines/). Keep patterns to the syntax the
    three regex engines share (RE2, PostgreSQL ARE, Java): classes, quantifiers, groups, alternation.
-#}
{% macro regexp_full_match(expression, pattern) -%}
    {{ return(adapter.dispatch('regexp_full_match')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regexp_full_match(expression, pattern) -%}
    regexp_full_match({{ expression }}, '{{ pattern | replace("'", "''") }}')
{%- endmacro %}
