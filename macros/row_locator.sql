{#-
    The column that finds a stored row of a table again within one statement, for a model that first
    finds the few rows it needs by a few columns and then reads those rows whole: DuckDB's `rowid`
    (a semi-join on it reads only the matching rows; on the key it decompresses every column of most of
    the table when the rows are scattered), elsewhere `key_column`, a unique key of the table.
-#}
{% macro row_locator(key_column) -%}
    {{ return(adapter.dispatch('row_locator')(key_column)) }}
{%- endmacro %}

{% macro default__row_locator(key_column) -%}
    {{ key_column }}
{%- endmacro %}

{% macro duckdb__row_locator(key_column) -%}
    rowid
{%- endmacro %}
