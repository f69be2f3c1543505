{#-
    A DELETE of the rows of `relation` where `condition` (a SQL expression over its columns, which may
    name the rows `target_rows`, and is never null: an EXISTS, NOT EXISTS, IN over non-null keys or a
    constant) is true, as one statement a hook can run. Spark's Parquet tables have no DELETE:
    spark__delete_rows_where (macros/engines/spark.sql) rewrites the table without those rows.
-#}
{% macro delete_rows_where(relation, condition) -%}
    {{ return(adapter.dispatch('delete_rows_where')(relation, condition)) }}
{%- endmacro %}

{% macro default__delete_rows_where(relation, condition) -%}
    delete from {{ relation }} as target_rows
    where {{ condition }}
{%- endmacro %}
