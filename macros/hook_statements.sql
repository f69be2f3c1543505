{#-
    Several SQL statements as the text of one hook (on-run-end, pre-/post-hook). DuckDB and
    PostgreSQL run a `;`-separated text as is; Spark's Thrift server takes one statement per call,
    so spark__hook_statements (macros/engines/spark.sql) runs all but the last itself.
-#}
{% macro hook_statements(statements) -%}
    {{ return(adapter.dispatch('hook_statements')(statements)) }}
{%- endmacro %}

{% macro default__hook_statements(statements) -%}
    {{ statements | join(';\n') }}
{%- endmacro %}
