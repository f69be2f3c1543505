{#-
    A DELETE of the rows of `relation` where `condition` (a SQL expression over its columns) is true,
    as a statement a hook can run. Spark's Parquet tables have no DELETE: spark__delete_rows_where
    (macros/engines/spark.sql) rewrites the table without those rows.
-#}
{% macro delete_rows_where(relation, condition) -%}
    {{ return(adapter.dispatch('delete_rows_where')(relation, condition)) }}
{%- endmacro %}

{% macro default__delete_rows_where(relation, condition) -%}
    delete from {{ relation }}
    where {{ condition }}
{%- endmacro %}
