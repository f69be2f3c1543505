{#-
    The rows of `attempt_steps` (a CTE over int_funnel_attempt_matches or int_funnel_attempt_steps) that a
    model derived from it (int_funnel_attempt_steps from the former; int_funnel_steps_matched and
    conversion_funnel_attempt from the latter; all incremental by person_id) must rebuild. On
    an incremental run: every row of the persons recomputed there since this model last ran
    (person_loaded_at after the latest one here) and of the persons with rows of a funnel definition
    hash this model has no rows of (a new or edited funnel: the models' pre-hook deletes the rows of a
    definition no longer current). On a full build: every row.
-#}
{% macro funnel_attempt_rows_to_rebuild(attempt_steps) -%}
    {%- if is_incremental() %}
        select rows_to_rebuild.*
        from {{ attempt_steps }} as rows_to_rebuild
        where rows_to_rebuild.person_id in (
            select recomputed.person_id
            from {{ attempt_steps }} as recomputed
            where recomputed.person_loaded_at > (
                select coalesce(max(previous_rows.person_loaded_at), cast('1970-01-01' as {{ dbt.type_timestamp() }}))
                from {{ this }} as previous_rows
            )
            union
            select new_definitions.person_id
            from {{ attempt_steps }} as new_definitions
            where new_definitions.funnel_definition_hash not in (
                select previous_rows.funnel_definition_hash from {{ this }} as previous_rows
            )
        )
    {%- else %}
        select * from {{ attempt_steps }}
    {%- endif %}
{%- endmacro %}
