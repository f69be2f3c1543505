{#-
    Planner settings and statistics for the statements that build one model: `planner_settings()` is
    a pre-hook and `planner_statistics()` a post-hook of every model (dbt_project.yml). Nothing on
    DuckDB and Spark.

    PostgreSQL (macros/engines/postgres.sql):
    * planner_statistics: `analyze <model>` once a table or incremental model is built (not for
      views). dbt creates tables with `create table … as`, which leaves them without statistics
      until autovacuum gets to them (a minute or more later), so the next model's plan rested on
      default guesses (200 groups, a handful of rows) and its speed on whether autovacuum had run
      yet: at 1M events int_funnel_steps_matched finished in 13 s with statistics and was still
      running after 11 minutes without them. ANALYZE reads a fixed sample (300 × the statistics
      target rows), so it costs about the same at any size.
    * planner_settings: `set local <name> = <value>` for each item of the model's config
      `postgres_settings` (a dict), for the model's transaction only (`set local` ends with it, so
      nothing leaks to other statements on the connection). int_attribution_credits and
      int_funnel_attempt_matches (the funnel matching, which int_funnel_steps_matched ran before) set
      `enable_nestloop: "off"`: they group and join CTEs that PostgreSQL
      materializes without statistics, estimates 200 groups and about one row for them, and picked
      nested loops that were quadratic in practice (at 10M events both still ran after 30 minutes).
-#}
{% macro planner_settings() -%}
    {{ return(adapter.dispatch('planner_settings')()) }}
{%- endmacro %}

{% macro default__planner_settings() -%}
{%- endmacro %}

{#-
    `set local <name> = '<value>'` statements for a mapping of PostgreSQL setting names to values (the
    value quoted as a string literal, as `set` accepts for any setting). Raises a compilation error
    naming `node_id` when `settings` is not a mapping or a name is not a setting name (letters,
    digits, `_` and `.`), so a typo cannot smuggle SQL into the hook. None or {} gives no statement.
-#}
{% macro set_local_statements(settings, node_id) -%}
    {#- At parse time (execute is false) dbt's config stub gives '' for every key. -#}
    {%- if not execute or settings is none or settings == {} -%}
        {{ return([]) }}
    {%- endif -%}
    {%- if settings is not mapping -%}
        {{ exceptions.raise_compiler_error(
            node_id ~ ": config postgres_settings must be a mapping of setting name to value, got "
            ~ settings ~ " (for example {'enable_nestloop': 'off'})") }}
    {%- endif -%}
    {%- set statements = [] -%}
    {%- for name, value in settings | dictsort -%}
        {%- if name is not string or not modules.re.fullmatch('[A-Za-z_][A-Za-z0-9_.]*', name) -%}
            {{ exceptions.raise_compiler_error(
                node_id ~ ": config postgres_settings: '" ~ name
                ~ "' is not a setting name (letters, digits, _ and .)") }}
        {%- endif -%}
        {%- do statements.append("set local " ~ name ~ " = '" ~ (value | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{ return(statements) }}
{%- endmacro %}

{% macro planner_statistics() -%}
    {{ return(adapter.dispatch('planner_statistics')()) }}
{%- endmacro %}

{% macro default__planner_statistics() -%}
{%- endmacro %}
