{#-
    Use the folder's custom schema as-is (`staging`, `intermediate`, `marts`, `reference`) instead of
    dbt's default `<target_schema>_<custom>`, so ad-hoc SQL reads `marts.conversion_event`.
    Models without a custom schema land in the target schema (`main` on DuckDB).
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
