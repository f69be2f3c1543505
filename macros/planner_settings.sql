{#-
    Planner settings for the statements that build one model, as a pre-hook (dbt_project.yml applies it
    to every model). Nothing on DuckDB and Spark.

    PostgreSQL: `set local enable_nestloop = off` for the model's transaction. The models read CTEs
    that PostgreSQL materializes without statistics, so it estimates 200 groups for a `group by` over
    them and about one row for joins on their columns, and picks nested loops that are quadratic in
    practice: at 10M events int_attribution_credits (all credits × path summaries) and
    int_funnel_steps_matched (winning steps × persons) were still running after 30 minutes. The tables
    have no indexes, so a nested loop is never the better plan for a large input; where a join has no
    equality condition PostgreSQL still uses one. `set local` ends with the transaction, so the
    setting never leaks to other statements on the connection.
-#}
{% macro planner_settings() -%}
    {{ return(adapter.dispatch('planner_settings')()) }}
{%- endmacro %}

{% macro default__planner_settings() -%}
{%- endmacro %}
