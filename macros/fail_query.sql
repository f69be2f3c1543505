{#-
    A SQL expression that makes the running query fail with `message` (a text expression) when it is
    evaluated: used to stop a build on invalid configuration rows with a message naming the row and the
    field. Put it where only the invalid rows evaluate it (`where problem is null or fail_query(problem) is null`).
    Dispatched: DuckDB has error(), Spark raise_error(); PostgreSQL has neither, and its default fails by
    casting the message to an integer, which shows the message in the error.
-#}
{% macro fail_query(message) -%}
    {{ return(adapter.dispatch('fail_query')(message)) }}
{%- endmacro %}

{% macro default__fail_query(message) -%}
    cast({{ message }} as {{ dbt.type_int() }})
{%- endmacro %}

{% macro duckdb__fail_query(message) -%}
    error({{ message }})
{%- endmacro %}

{% macro spark__fail_query(message) -%}
    raise_error({{ message }})
{%- endmacro %}
