{#- postgres_settings: no nested loops on PostgreSQL (macros/planner_settings.sql says why). -#}
{{
    config(
        materialized='incremental',
        unique_key='person_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        postgres_settings={'enable_nestloop': 'off'},
        pre_hook=[
            "{% if is_incremental() %}{{ delete_outdated_funnel_rows(this) }}{% endif %}",
            "{% if is_incremental() %}{{ delete_rows_where(this, stitched_away_persons(since=last_run_watermark('person_loaded_at'))) }}{% endif %}",
        ],
    )
}}

-- The second pre-hook reads the identity map with the events and conversions (the persons stitched away:
-- macros/stitched_away_persons.sql).
-- depends_on: {{ ref('int_identity_map') }}
-- depends_on: {{ ref('int_identity_previous_persons') }}
-- depends_on: {{ ref('int_identity_observations') }}
-- depends_on: {{ ref('int_events_deduplicated') }}
-- depends_on: {{ ref('int_conversions_deduplicated') }}

-- Where the funnel matching runs (once per build): one row per person × funnel × attempt × step the attempt
-- reached, with the event or conversion counted for the step (by its source and id, name, time and load),
-- the attempt's start event, how far the attempt got, whether an exclusion tainted it, and whether it is the
-- person's chosen attempt (is_chosen_attempt: exactly one attempt per person and funnel). Narrow on purpose:
-- int_funnel_attempt_steps adds the two events' campaign and UTM columns from int_funnel_events, reading
-- this table, whose real row count the engine then knows (joined here, after the recursion, the engine
-- guessed the attempts at billions of rows and planned those joins badly). int_funnel_steps_matched and
-- conversion_funnel_attempt derive from int_funnel_attempt_steps; nothing else matches again. The rules
-- (PostHog semantics) are in the docs block funnel_semantics; what an attempt is for each order type in the
-- docs block funnel_attempts; the SQL is the macro funnel_matching_ctes (macros/funnel_matching.sql).
--
-- Incremental (delete+insert by person_id: a person's rows are replaced together). A run recomputes whole
-- persons: those with a funnel event or conversion loaded after the latest person_loaded_at here,
-- and those with a start event of a funnel that has no rows here (new, or edited: the pre-hook deletes the
-- rows of a definition no longer current). The matching depends only on the person's own events and the
-- definitions, never on the clock, so nothing else changes a row. A visitor stitched to a person moves
-- with its events (their load time is the identity's); the second pre-hook deletes the rows of the
-- pseudo-persons and persons left with no event or conversion.

{{ funnel_matching_ctes() }}

-- Every attempt of a person and funnel is a candidate start (ordered and strict: a step-1 event;
-- unordered: a step event anchoring a window).
attempt_counts as (
    select
        person_id,
        funnel_name,
        count(distinct start_event_sequence) as candidate_starts
    from attempt_rows
    group by
        person_id,
        funnel_name
),

final as (
    select
        attempt_rows.person_id,
        attempt_rows.funnel_name,
        start_event.event_source as start_event_source,
        start_event.source_record_id as start_source_record_id,
        steps.step_name,
        matched_event.event_name,
        matched_event.event_source,
        matched_event.source_record_id,
        steps.funnel_definition_hash,
        cast(attempt_rows.step_number as {{ dbt.type_int() }}) as step_number,
        cast(steps.total_steps as {{ dbt.type_int() }}) as total_steps,
        cast(attempt_rows.completed_steps as {{ dbt.type_int() }}) as completed_steps,
        cast(attempt_counts.candidate_starts as {{ dbt.type_bigint() }}) as candidate_starts,
        attempt_rows.is_excluded,
        attempt_rows.is_chosen_attempt,
        steps.conversion_window_hours,
        matched_event.event_time,
        start_event.event_time as started_at,
        {{ seconds_between('start_event.event_time', 'matched_event.event_time') }} as seconds_from_start,
        matched_event.last_loaded_at as event_loaded_at,
        start_loads.first_start_loaded_at,
        start_loads.last_start_loaded_at,
        person_loads.person_loaded_at
    from attempt_rows
    inner join steps
        on
            attempt_rows.funnel_name = steps.funnel_name
            and attempt_rows.step_number = steps.step_number
    inner join attempt_counts
        on
            attempt_rows.person_id = attempt_counts.person_id
            and attempt_rows.funnel_name = attempt_counts.funnel_name
    -- Left joins (every attempt row has both events): they keep the attempts as the side the events are
    -- looked up from. As inner joins, the engine may join the person's events to each other on person_id
    -- first, from its estimate of the recursion's output; at 10M events that spilled over 35 GB to disk.
    left join sequenced_events as matched_event
        on
            attempt_rows.person_id = matched_event.person_id
            and attempt_rows.event_sequence = matched_event.event_sequence
    left join sequenced_events as start_event
        on
            attempt_rows.person_id = start_event.person_id
            and attempt_rows.start_event_sequence = start_event.event_sequence
    inner join start_loads
        on
            attempt_rows.person_id = start_loads.person_id
            and attempt_rows.funnel_name = start_loads.funnel_name
    inner join person_loads
        on attempt_rows.person_id = person_loads.person_id
)

select * from final
