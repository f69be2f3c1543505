{#- postgres_settings: no nested loops on PostgreSQL (macros/planner_settings.sql says why). -#}
{{
    config(
        materialized='incremental',
        unique_key='person_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        postgres_settings={'enable_nestloop': 'off'},
        pre_hook="{% if is_incremental() %}{{ delete_outdated_funnel_rows(this) }}{% endif %}",
    )
}}

-- Ordered-funnel matching (PostHog / Mixpanel semantics, see the model YAML): one row per person ×
-- funnel × step reached by the person's winning attempt. Every step-1 event is a candidate start;
-- each later step is the earliest matching event at or after the previous counted step and within
-- the window from the start; the winning attempt reaches the furthest step, then reached it first,
-- then started latest. Incremental runs recompute whole persons: those with new or changed events
-- or conversions, and those with a step-1 event of a funnel that has no rows (new or edited funnel).

with recursive

funnel_definitions as (
    select * from {{ ref('int_funnel_definitions') }}
),

all_funnel_events as (
    select * from {{ ref('int_funnel_events') }}
),

current_definitions as (
    {{ funnel_definition_hashes() }}
),

funnel_steps as (
    select
        funnel_definitions.funnel_name,
        funnel_definitions.step_number,
        funnel_definitions.step_name,
        funnel_definitions.event_name,
        current_definitions.funnel_definition_hash,
        funnel_definitions.conversion_window_hours,
        cast(round(funnel_definitions.window_seconds * 1000000) as {{ dbt.type_bigint() }}) as window_microseconds,
        funnel_definitions.total_steps,
        -- An earlier step of the same funnel has the same event_name.
        row_number() over (
            partition by funnel_definitions.funnel_name, funnel_definitions.event_name
            order by funnel_definitions.step_number
        ) > 1 as is_repeated_event_name
    from funnel_definitions
    inner join current_definitions
        on funnel_definitions.funnel_name = current_definitions.funnel_name
),

steps as (
    select
        *,
        coalesce(
            lead(is_repeated_event_name) over (partition by funnel_name order by step_number),
            false
        ) as is_next_step_repeated_event_name
    from funnel_steps
),

{% if is_incremental() -%}
    -- Everything loaded up to this instant is already reflected in the existing rows (compared with
    -- `>=`: a load committed at that same instant after the last run is not missed).
    processed_through as (
        select coalesce(max(person_loaded_at), cast('1970-01-01' as {{ dbt.type_timestamp() }})) as loaded_at
        from {{ this }}
    ),

    -- Funnels without any row: new or edited since the last run (the pre-hook deleted the rows of
    -- edited ones), or funnels nobody has started.
    funnels_without_rows as (
        select current_definitions.funnel_name
        from current_definitions
        where current_definitions.funnel_definition_hash not in (
            select previous_rows.funnel_definition_hash from {{ this }} as previous_rows
        )
    ),

    persons_to_recompute as (
        select all_funnel_events.person_id
        from all_funnel_events
        where all_funnel_events.last_loaded_at >= (select processed_through.loaded_at from processed_through)
        union
        select all_funnel_events.person_id
        from all_funnel_events
        inner join steps
            on
                all_funnel_events.event_name = steps.event_name
                and steps.step_number = 1
        where steps.funnel_name in (select funnels_without_rows.funnel_name from funnels_without_rows)
    ),

    funnel_events as (
        select all_funnel_events.*
        from all_funnel_events
        where all_funnel_events.person_id in (select persons_to_recompute.person_id from persons_to_recompute)
    ),
{%- else -%}
    funnel_events as (
        select * from all_funnel_events
    ),
{%- endif %}

-- A person's events in one total order: time, then source ('conversion' before 'event'), then id.
sequenced_events as (
    select
        *,
        {{ epoch_microseconds('event_time') }} as event_microseconds,
        row_number() over (
            partition by person_id
            order by event_time, event_source, source_record_id
        ) as event_sequence
    from funnel_events
),

-- For every step k >= 2, the event names to look at: step k's own (its candidates), step k-1's,
-- and for a step repeating an earlier step's event name, those of all earlier steps.
transition_event_names as (
    select distinct
        later_step.funnel_name,
        later_step.step_number,
        later_step.is_repeated_event_name,
        earlier_step.event_name,
        earlier_step.event_name = later_step.event_name as is_candidate_name
    from steps as later_step
    inner join steps as earlier_step
        on
            later_step.funnel_name = earlier_step.funnel_name
            and (
                later_step.step_number = earlier_step.step_number
                or later_step.step_number - 1 = earlier_step.step_number
                or (later_step.is_repeated_event_name and later_step.step_number > earlier_step.step_number)
            )
    where later_step.step_number > 1
),

transition_events as (
    select
        transition_event_names.funnel_name,
        transition_event_names.step_number,
        transition_event_names.is_repeated_event_name,
        sequenced_events.person_id,
        sequenced_events.event_sequence,
        sequenced_events.event_microseconds,
        transition_event_names.is_candidate_name as is_candidate
    from transition_event_names
    inner join sequenced_events
        on transition_event_names.event_name = sequenced_events.event_name
),

-- For each event that can precede step k, the earliest candidate for step k:
--   * at or after that event's time, same instant included (steps with a new event name);
--   * after that event in the person's event order (steps repeating an earlier event name: the
--     preceding event is then the last counted one, so no counted event is counted twice).
next_candidates as (
    select
        funnel_name,
        step_number,
        is_repeated_event_name,
        person_id,
        event_sequence as after_event_sequence,
        min(case when is_candidate then event_sequence end) over (
            partition by person_id, funnel_name, step_number
            order by event_microseconds
            range between current row and unbounded following
        ) as first_candidate_from_time,
        min(case when is_candidate then event_sequence end) over (
            partition by person_id, funnel_name, step_number
            order by event_sequence
            rows between 1 following and unbounded following
        ) as first_candidate_after_sequence
    from transition_events
),

candidate_choices as (
    select
        *,
        case
            when is_repeated_event_name then first_candidate_after_sequence
            else first_candidate_from_time
        end as next_event_sequence
    from next_candidates
),

-- Which event an attempt's step k takes, keyed by the event it follows (`after_event_sequence`: the
-- step k-1 event, or for a repeated event name the latest counted event), with what the recursion
-- needs to follow on: the window, and whether step k+1 repeats an event name.
step_lookup as {{ materialized_cte_hint() }} (
    select
        next_candidates.person_id,
        next_candidates.funnel_name,
        next_candidates.step_number,
        next_candidates.after_event_sequence,
        candidate.event_sequence as next_event_sequence,
        candidate.event_microseconds as next_event_microseconds,
        steps.window_microseconds,
        steps.is_next_step_repeated_event_name
    from candidate_choices as next_candidates
    inner join steps
        on
            next_candidates.funnel_name = steps.funnel_name
            and next_candidates.step_number = steps.step_number
    inner join sequenced_events as candidate
        on
            next_candidates.person_id = candidate.person_id
            and next_candidates.next_event_sequence = candidate.event_sequence
),

-- Every attempt (one per step-1 event) followed step by step as far as it goes. `lookup_sequence` is
-- the event the next step follows: this step's event, or for a next step repeating an event name the
-- latest counted event (`max_event_sequence`).
attempt_steps as (
    select
        sequenced_events.person_id,
        steps.funnel_name,
        sequenced_events.event_sequence as start_event_sequence,
        sequenced_events.event_microseconds as start_microseconds,
        steps.step_number,
        sequenced_events.event_sequence,
        sequenced_events.event_microseconds,
        sequenced_events.event_sequence as max_event_sequence,
        sequenced_events.event_sequence as lookup_sequence
    from sequenced_events
    inner join steps
        on
            sequenced_events.event_name = steps.event_name
            and steps.step_number = 1

    union all

    select
        attempt_steps.person_id,
        attempt_steps.funnel_name,
        attempt_steps.start_event_sequence,
        attempt_steps.start_microseconds,
        step_lookup.step_number,
        step_lookup.next_event_sequence as event_sequence,
        step_lookup.next_event_microseconds as event_microseconds,
        greatest(attempt_steps.max_event_sequence, step_lookup.next_event_sequence) as max_event_sequence,
        case
            when step_lookup.is_next_step_repeated_event_name
                then greatest(attempt_steps.max_event_sequence, step_lookup.next_event_sequence)
            else step_lookup.next_event_sequence
        end as lookup_sequence
    from attempt_steps
    inner join step_lookup
        on
            attempt_steps.person_id = step_lookup.person_id
            and attempt_steps.funnel_name = step_lookup.funnel_name
            and attempt_steps.step_number + 1 = step_lookup.step_number
            and attempt_steps.lookup_sequence = step_lookup.after_event_sequence
    where step_lookup.next_event_microseconds - attempt_steps.start_microseconds <= step_lookup.window_microseconds
),

-- Attempt totals on every step row: how far the attempt got and when (counted steps never go back in
-- time, so the latest step time is when the furthest step was reached).
attempt_totals as (
    select
        *,
        max(step_number) over (
            partition by person_id, funnel_name, start_event_sequence
        ) as completed_steps,
        max(event_microseconds) over (
            partition by person_id, funnel_name, start_event_sequence
        ) as furthest_step_microseconds,
        sum(case when step_number = 1 then 1 else 0 end) over (
            partition by person_id, funnel_name
        ) as candidate_starts
    from attempt_steps
),

-- The winning attempt: furthest step, then reached first, then started latest (its rows rank 1).
ranked_attempt_steps as (
    select
        *,
        dense_rank() over (
            partition by person_id, funnel_name
            order by
                completed_steps desc,
                furthest_step_microseconds asc,
                start_microseconds desc,
                start_event_sequence desc
        ) as attempt_rank
    from attempt_totals
),

-- Load times that make the rows reproducible: when the person's step-1 events of the funnel were
-- first and last loaded, and the latest load of any of the person's funnel events.
start_loads as (
    select
        sequenced_events.person_id,
        steps.funnel_name,
        min(sequenced_events.first_loaded_at) as first_start_loaded_at,
        max(sequenced_events.last_loaded_at) as last_start_loaded_at
    from sequenced_events
    inner join steps
        on
            sequenced_events.event_name = steps.event_name
            and steps.step_number = 1
    group by
        sequenced_events.person_id,
        steps.funnel_name
),

person_loads as (
    select
        person_id,
        max(last_loaded_at) as person_loaded_at
    from sequenced_events
    group by person_id
),

final as (
    select
        winning_steps.person_id,
        winning_steps.funnel_name,
        steps.step_name,
        steps.event_name,
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
        steps.conversion_window_hours,
        matched_event.event_time,
        start_event.event_time as started_at,
        matched_event.last_loaded_at as event_loaded_at,
        start_loads.first_start_loaded_at,
        start_loads.last_start_loaded_at,
        person_loads.person_loaded_at
    from ranked_attempt_steps as winning_steps
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
    where winning_steps.attempt_rank = 1
)

select * from final
