{#-
    One row per funnel of the funnel definitions (int_funnel_definitions): funnel_name and
    funnel_definition_hash, the MD5 of the funnel's whole definition (every step's number, name, event
    name, filter, order type and window, in step order, and its exclusion steps with their filters, int_funnel_exclusions). Incremental funnel models store the hash with each
    row and drop rows whose hash is no longer current, so editing or replacing the funnel definitions
    file and rebuilding is all it takes.
-#}
{% macro funnel_definition_hashes() -%}
    select
        funnel_steps.funnel_name,
        md5(funnel_steps.steps_text || '#' || coalesce(funnel_exclusion_steps.exclusions_text, '')) as funnel_definition_hash
    from (
        select
            funnel_name,
            funnel_name || ':' || {{ dbt.listagg(
                measure=dbt.concat([
                    "cast(step_number as " ~ dbt.type_string() ~ ")", "'|'",
                    "step_name", "'|'",
                    "event_name", "'|'",
                    "order_type", "'|'",
                    "cast(window_seconds as " ~ dbt.type_string() ~ ")",
                    "coalesce('|' || step_filter, '')",
                ]),
                delimiter_text="';'",
                order_by_clause="order by step_number",
            ) }} as steps_text
        from {{ ref('int_funnel_definitions') }}
        group by funnel_name
    ) as funnel_steps
    left join (
        select
            funnel_name,
            {{ dbt.listagg(
                measure=dbt.concat([
                    "event_name", "'|'",
                    "cast(from_step as " ~ dbt.type_string() ~ ")", "'|'",
                    "cast(to_step as " ~ dbt.type_string() ~ ")",
                    "coalesce('|' || exclusion_filter, '')",
                ]),
                delimiter_text="';'",
                order_by_clause="order by event_name, from_step, to_step, exclusion_filter",
            ) }} as exclusions_text
        from {{ ref('int_funnel_exclusions') }}
        group by funnel_name
    ) as funnel_exclusion_steps
        on funnel_steps.funnel_name = funnel_exclusion_steps.funnel_name
{%- endmacro %}

{#-
    Pre-hook of incremental funnel models: delete the rows computed with a funnel definition that is
    no longer in the seed (funnel removed or changed). The model then recomputes every person with a
    step-1 event of a funnel that has no rows.
-#}
{% macro delete_outdated_funnel_rows(relation) -%}
    {{ return(adapter.dispatch('delete_outdated_funnel_rows')(relation)) }}
{%- endmacro %}

{#- A DELETE statement; Spark's Parquet tables have none (spark__ version in macros/engines/spark.sql). -#}
{% macro default__delete_outdated_funnel_rows(relation) -%}
    delete from {{ relation }}
    where funnel_definition_hash not in (
        select current_definitions.funnel_definition_hash
        from ({{ funnel_definition_hashes() }}) as current_definitions
    )
{%- endmacro %}
