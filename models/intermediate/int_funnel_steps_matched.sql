{#- on_schema_change append_new_columns: a column added here (is_excluded) arrives with new definition
    hashes, so the pre-hook deletes every older row and the new column is never left empty. -#}
{{
    config(
        materialized='incremental',
        unique_key='person_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
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

-- One row per person × funnel × step reached by the person's winning attempt (PostHog semantics, see the
-- model YAML): the rows of int_funnel_attempt_steps' chosen attempts (matched in int_funnel_attempt_matches).
-- Ordered funnels: every step-1 event is a candidate start; each later step is the earliest matching event at or
-- after the previous counted step and within the window from the start; the winning attempt reaches the
-- furthest step, then reached it first, then started latest. Strict funnels: the same, but each step must
-- be the person's next event (repeats of the current step and events at the same instant do not break an
-- attempt). Unordered funnels: every step event is an anchor; its reach is the number of distinct steps
-- done within the window from it; the earliest anchor with the largest reach wins, its steps numbered in
-- time order. A step with a property filter only matches the events that pass it.
--
-- Incremental (delete+insert by person_id), following int_funnel_attempt_steps: a run copies the persons
-- that model recomputed since this one last ran (person_loaded_at after the latest one here) and the
-- persons with rows there of a funnel definition that has no rows here (a new or edited funnel: the
-- pre-hook deletes the rows of a definition no longer current).
with attempt_steps as (
    select * from {{ ref('int_funnel_attempt_steps') }}
    where is_chosen_attempt
),

chosen_steps as (
    {{ funnel_attempt_rows_to_rebuild('attempt_steps') }}
),

final as (
    select
        person_id,
        funnel_name,
        step_name,
        event_name,
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
        utm_term,
        funnel_definition_hash,
        step_number,
        total_steps,
        completed_steps,
        candidate_starts,
        is_excluded,
        conversion_window_hours,
        event_time,
        started_at,
        event_loaded_at,
        first_start_loaded_at,
        last_start_loaded_at,
        person_loaded_at
    from chosen_steps
)

select * from final
