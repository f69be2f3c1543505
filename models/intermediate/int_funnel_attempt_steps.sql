{#- on_schema_change fail: the columns are an interface of the models derived from this one. -#}
{{
    config(
        materialized='incremental',
        unique_key='person_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() %}{{ delete_outdated_funnel_rows(this) }}{% endif %}",
            "{% if is_incremental() %}{{ delete_rows_where(this, stitched_away_persons(since=last_run_watermark('person_loaded_at'))) }}{% endif %}",
        ],
    )
}}

-- The pre-hooks read the funnel definitions and exclusions (their hashes), and the identity map with the
-- events and conversions (the persons stitched away: macros/stitched_away_persons.sql).
-- depends_on: {{ ref('int_funnel_definitions') }}
-- depends_on: {{ ref('int_funnel_exclusions') }}
-- depends_on: {{ ref('int_identity_map') }}
-- depends_on: {{ ref('int_identity_previous_persons') }}
-- depends_on: {{ ref('int_identity_observations') }}
-- depends_on: {{ ref('int_events_deduplicated') }}
-- depends_on: {{ ref('int_conversions_deduplicated') }}

-- Every attempt's steps as int_funnel_attempt_matches found them, with the campaign and UTM columns of the
-- event or conversion counted for the step and of the attempt's start event, read from int_funnel_events by
-- (person_id, event_source, source_record_id). One row per row of int_funnel_attempt_matches.
--
-- Incremental (delete+insert by person_id), following int_funnel_attempt_matches as the other derived
-- funnel models follow this one: a run copies the persons that model recomputed since this one last ran
-- (person_loaded_at after the latest one here) and the persons with rows there of a funnel definition
-- that has no rows here (a new or edited funnel: the pre-hook deletes the rows of a definition no longer
-- current). An event's campaign and UTM columns never change once kept (the earliest-loaded copy wins), so
-- the rows of the persons not recomputed stay right.
-- attempt_matches is read three times on an incremental run (macros/funnel_attempt_rows_to_rebuild.sql):
-- not copied first, each reader scans the table for its own columns.
with attempt_matches as {{ not_materialized_cte_hint() }} (
    select * from {{ ref('int_funnel_attempt_matches') }}
),

matches_to_copy as (
    {{ funnel_attempt_rows_to_rebuild('attempt_matches') }}
),

funnel_events as (
    select
        person_id,
        event_source,
        source_record_id,
        event_id,
        conversion_id,
        campaign_id,
        ad_set_id,
        ad_id,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term
    from {{ ref('int_funnel_events') }}
    {%- if is_incremental() %}
        -- Only the persons copied: on an incremental run they are few, and the engine can drop the others'
        -- rows before reading their wider columns.
        where person_id in (select matches_to_copy.person_id from matches_to_copy)
    {%- endif %}
),

final as (
    select
        matches_to_copy.person_id,
        matches_to_copy.funnel_name,
        matches_to_copy.start_event_source,
        matches_to_copy.start_source_record_id,
        matches_to_copy.step_name,
        matches_to_copy.event_name,
        matches_to_copy.event_source,
        matches_to_copy.source_record_id,
        matched_event.event_id,
        matched_event.conversion_id,
        matched_event.campaign_id,
        matched_event.ad_set_id,
        matched_event.ad_id,
        matched_event.utm_source,
        matched_event.utm_medium,
        matched_event.utm_campaign,
        matched_event.utm_content,
        matched_event.utm_term,
        start_event.campaign_id as start_campaign_id,
        start_event.ad_set_id as start_ad_set_id,
        start_event.ad_id as start_ad_id,
        start_event.utm_source as start_utm_source,
        start_event.utm_medium as start_utm_medium,
        start_event.utm_campaign as start_utm_campaign,
        matches_to_copy.funnel_definition_hash,
        matches_to_copy.step_number,
        matches_to_copy.total_steps,
        matches_to_copy.completed_steps,
        matches_to_copy.candidate_starts,
        matches_to_copy.is_excluded,
        matches_to_copy.is_chosen_attempt,
        matches_to_copy.conversion_window_hours,
        matches_to_copy.event_time,
        matches_to_copy.started_at,
        matches_to_copy.seconds_from_start,
        matches_to_copy.event_loaded_at,
        matches_to_copy.first_start_loaded_at,
        matches_to_copy.last_start_loaded_at,
        matches_to_copy.person_loaded_at
    from matches_to_copy
    -- Left joins: every matched event is a funnel event; they keep the attempts as the side looked up from.
    left join funnel_events as matched_event
        on
            matches_to_copy.person_id = matched_event.person_id
            and matches_to_copy.event_source = matched_event.event_source
            and matches_to_copy.source_record_id = matched_event.source_record_id
    left join funnel_events as start_event
        on
            matches_to_copy.person_id = start_event.person_id
            and matches_to_copy.start_event_source = start_event.event_source
            and matches_to_copy.start_source_record_id = start_event.source_record_id
)

select * from final
