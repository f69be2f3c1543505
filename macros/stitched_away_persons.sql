{#-
    Pre-hook condition (with delete_rows_where) of the person-keyed incremental models: the persons whose
    rows identity stitching has moved away. Their batch is empty, so delete+insert on person_id would
    never delete their old rows:
      * the pseudo-person `anon:<anonymous_id>` of every linked anonymous id (once linked, no event or
        conversion resolves to it any more);
      * the person an anonymous id was linked to before an observation observed earlier, but landed
        later, linked it to another person (a relink).
    With `since` (the model's watermark: the load its rows reflect), only what changed after it:
    the pseudo-persons of the anonymous ids linked or relinked since (int_identity_map.mapped_loaded_at;
    the pseudo-persons of earlier links lost their rows in the run after the link), and every person an
    anonymous id was relinked away from since (int_identity_previous_persons). Such a person may keep
    events or conversions of their own: they carry the relink's load as last_loaded_at, so the model
    recomputes the person in the same run; a person left with no record the model reads has no row. A
    run with nothing new reads only the latest links. A `since` of null (no state recorded) counts every
    link (every load is after 1970).
    Without `since`, every pseudo-person of a linked anonymous id and every person named by an identity
    observation who has no event and no conversion left (every relink's previous person without records).
    The rows of the persons they moved to are recomputed by the models' own change detection (the moved
    events and conversions carry the identity observation's load as their last load).
-#}
{% macro stitched_away_persons(since=none) -%}
    person_id in (
        select identity_map.pseudo_person_id
        from {{ ref('int_identity_map') }} as identity_map
        {%- if since is not none %}
        where
            identity_map.mapped_loaded_at > coalesce(
                {{ since }}, cast('1970-01-01 00:00:00+00' as {{ dbt.type_timestamp() }})
            )

        union

        select relinks.previous_person_id
        from {{ ref('int_identity_previous_persons') }} as relinks
        where
            relinks.relinked_loaded_at > coalesce(
                {{ since }}, cast('1970-01-01 00:00:00+00' as {{ dbt.type_timestamp() }})
            )
        {%- else %}

        union

        select observed.person_id
        from {{ ref('int_identity_observations') }} as observed
        where
            not exists (
                select 1
                from {{ ref('int_events_deduplicated') }} as events
                where events.person_id = observed.person_id
            )
            and not exists (
                select 1
                from {{ ref('int_conversions_deduplicated') }} as conversions
                where conversions.person_id = observed.person_id
            )
        {%- endif %}
    )
{%- endmacro %}
