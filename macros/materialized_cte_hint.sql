{#-
    `materialized` where the engine accepts it after `<cte name> as` (DuckDB, Postgres ≥ 12), nothing
    elsewhere. For a CTE read by every iteration of a recursive CTE: without it DuckDB recomputes the
    CTE in each iteration.
-#}
{% macro materialized_cte_hint() -%}
    {{ return(adapter.dispatch('materialized_cte_hint')()) }}
{%- endmacro %}

{% macro default__materialized_cte_hint() -%}
{%- endmacro %}

{% macro duckdb__materialized_cte_hint() -%}
    materialized
{%- endmacro %}

{% macro postgres__materialized_cte_hint() -%}
    materialized
{%- endmacro %}

{#-
    `not materialized` where the engine accepts it after `<cte name> as` (DuckDB, Postgres ≥ 12), nothing
    elsewhere. For a CTE that only reads a table (`select * from <model>`) and that several CTEs read:
    DuckDB would otherwise copy the whole table into memory first, where each reader can scan the
    table itself, reading only its own columns.
-#}
{% macro not_materialized_cte_hint() -%}
    {{ return(adapter.dispatch('not_materialized_cte_hint')()) }}
{%- endmacro %}

{% macro default__not_materialized_cte_hint() -%}
{%- endmacro %}

{% macro duckdb__not_materialized_cte_hint() -%}
    not materialized
{%- endmacro %}

{% macro postgres__not_materialized_cte_hint() -%}
    not materialized
{%- endmacro %}
