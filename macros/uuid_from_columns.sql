{#-
    A deterministic UUID-formatted id (8-4-4-4-12 lower-case hex) from the MD5 of the given column
    expressions joined with '|' (nulls as ''). The same inputs give the same id on every run and
    engine, so a full refresh and an incremental run agree on primary keys.
-#}
{% macro uuid_from_columns(column_expressions) -%}
    {%- set parts = [] -%}
    {%- for column_expression in column_expressions -%}
        {%- do parts.append("coalesce(cast(" ~ column_expression ~ " as " ~ dbt.type_string() ~ "), '')") -%}
        {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
    {%- endfor -%}
    {%- set digest = "md5(" ~ dbt.concat(parts) ~ ")" -%}
    {{ dbt.concat([
        "substring(" ~ digest ~ ", 1, 8)", "'-'",
        "substring(" ~ digest ~ ", 9, 4)", "'-'",
        "substring(" ~ digest ~ ", 13, 4)", "'-'",
        "substring(" ~ digest ~ ", 17, 4)", "'-'",
        "substring(" ~ digest ~ ", 21, 12)",
    ]) }}
{%- endmacro %}
