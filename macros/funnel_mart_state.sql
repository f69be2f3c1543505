{#-
    What the incremental funnel marts record as their state (macros/incremental_state.sql) and compare
    it with. The matching (int_funnel_steps_matched) stamps every row with the latest load of the
    person's funnel records (`person_loaded_at`) and with the hash of the funnel definition it was
    computed with, and recomputes a person whenever one of them changes, so:

    * its largest `person_loaded_at` is how far a model reading it is up to date: the persons whose
      matching changed since carry a `person_loaded_at` after it;
    * the set of its definition hashes changes exactly when it recomputed persons because funnels were
      added, edited or removed in the funnel definitions, which `person_loaded_at` does not show.
-#}

{% macro funnel_rows_loaded_through() -%}
    (
        select max(matched_rows.person_loaded_at)
        from {{ ref('int_funnel_steps_matched') }} as matched_rows
    )
{%- endmacro %}

{#- MD5 of the funnel definition hashes present in int_funnel_steps_matched, in order. -#}
{% macro funnel_rows_fingerprint() -%}
    (
        select md5(coalesce({{ dbt.listagg(
            measure='matched_definitions.funnel_definition_hash',
            delimiter_text="','",
            order_by_clause='order by matched_definitions.funnel_definition_hash',
        ) }}, ''))
        from (
            select distinct matched_rows.funnel_definition_hash
            from {{ ref('int_funnel_steps_matched') }} as matched_rows
        ) as matched_definitions
    )
{%- endmacro %}

{#- MD5 of the current funnel definitions (funnel_definition_hashes), for a model that reads the seed
    itself (funnel_stats gives every step its name and event name from it). -#}
{% macro funnel_definitions_fingerprint() -%}
    (
        select md5(coalesce({{ dbt.listagg(
            measure='current_definitions.funnel_definition_hash',
            delimiter_text="','",
            order_by_clause='order by current_definitions.funnel_definition_hash',
        ) }}, ''))
        from ({{ funnel_definition_hashes() }}) as current_definitions
    )
{%- endmacro %}
