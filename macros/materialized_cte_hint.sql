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
