{#- postgres_settings: no nested loops on PostgreSQL (macros/planner_settings.sql says why).
    on_schema_change append_new_columns: a column added here (is_excluded) arrives with new definition
    hashes, so the pre-hook deletes every older row and the new column is never left empty. -#}
{{
    config(
        materialized='incremental',
        unique_key='person_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        postgres_settings={'enable_nestloop': 'off'},
        pre_hook=[
            "{% if is_incremental() %}{{ delete_outdated_funnel_rows(this) }}{% endif %}",
            "{% if is_incremental() %}{{ delete_rows_where(this, stitched_away_persons()) }}{% endif %}",
        ],
    )
}}

-- depends_on: {{ ref('int_identity_map') }}
-- depends_on: {{ ref('int_identity_observations') }}
-- depends_on: {{ ref('int_events_deduplicated') }}
-- depends_on: {{ ref('int_conversions_deduplicated') }}

-- Funnel matching (PostHog semantics, see the model YAML): one row per person × funnel × step reached
-- by the person's winning attempt. Ordered funnels: every step-1 event is a candidate start; each
-- later step is the earliest matching event at or after the previous counted step and within the
-- window from the start; the winning attempt reaches the furthest step, then reached it first, then
-- started latest. Strict funnels: the same, but each step must be the person's next event (repeats of
-- the current step and events at the same instant do not break an attempt). Unordered funnels: every
-- step event is an anchor; its reach is the number of distinct steps done within the window from it;
-- the earliest anchor with the largest reach wins, its steps numbered in time order. A step with a
-- property filter only matches the events that pass it. Incremental runs recompute whole persons: those
-- with new or changed events or conversions, and those with a start event of a funnel that has no rows
-- (new or edited funnel). The matching itself is the macro funnel_matching_ctes (macros/funnel_matching.sql),
-- shared with conversion_funnel_attempt, which keeps every attempt.

{{ funnel_matching_ctes() }}

final as (
    select
        winning_steps.person_id,
        winning_steps.funnel_name,
        steps.step_name,
        matched_event.event_name,
        matched_event.event_source,
        matched_event.source_record_id,
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
        steps.funnel_definition_hash,
        cast(winning_steps.step_number as {{ dbt.type_int() }}) as step_number,
        cast(steps.total_steps as {{ dbt.type_int() }}) as total_steps,
        cast(winning_steps.completed_steps as {{ dbt.type_int() }}) as completed_steps,
        cast(winning_steps.candidate_starts as {{ dbt.type_bigint() }}) as candidate_starts,
        winning_steps.is_excluded,
        steps.conversion_window_hours,
        matched_event.event_time,
        start_event.event_time as started_at,
        matched_event.last_loaded_at as event_loaded_at,
        start_loads.first_start_loaded_at,
        start_loads.last_start_loaded_at,
        person_loads.person_loaded_at
    from winning_steps
    inner join steps
        on
            winning_steps.funnel_name = steps.funnel_name
            and winning_steps.step_number = steps.step_number
    inner join sequenced_events as matched_event
        on
            winning_steps.person_id = matched_event.person_id
            and winning_steps.event_sequence = matched_event.event_sequence
    inner join sequenced_events as start_event
        on
            winning_steps.person_id = start_event.person_id
            and winning_steps.start_event_sequence = start_event.event_sequence
    inner join start_loads
        on
            winning_steps.person_id = start_loads.person_id
            and winning_steps.funnel_name = start_loads.funnel_name
    inner join person_loads
        on winning_steps.person_id = person_loads.person_id
)

select * from final
