{#-
    The funnel matching, used by one model, int_funnel_attempt_matches (every attempt's steps;
    int_funnel_attempt_steps, int_funnel_steps_matched and conversion_funnel_attempt are derived from it, so a
    build matches once): the CTEs from the funnel
    definitions and events up to `attempt_rows` (every attempt's steps, with is_chosen_attempt), `start_loads`
    and `person_loads`, ending with a comma; the calling model adds its `final` CTE. The semantics are
    documented in the docs block funnel_semantics and in int_funnel_steps_matched's YAML.

    Incremental: in an incremental run of the calling model (`this`, which has person_loaded_at and
    funnel_definition_hash columns and a pre-hook delete_outdated_funnel_rows), only the persons with a funnel
    event loaded after the latest person_loaded_at of `this`, and the persons with a start event of a
    funnel that has no rows in `this`, are matched.
-#}
{% macro funnel_matching_ctes() -%}
with recursive

funnel_definitions as (
    select * from {{ ref('int_funnel_definitions') }}
),

all_funnel_events as (
    select * from {{ ref('int_funnel_events') }}
),

funnel_exclusions as (
    select * from {{ ref('int_funnel_exclusions') }}
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
        funnel_definitions.step_filter,
        funnel_definitions.order_type,
        current_definitions.funnel_definition_hash,
        funnel_definitions.conversion_window_hours,
        cast(round(funnel_definitions.window_seconds * 1000000) as {{ dbt.type_bigint() }}) as window_microseconds,
        funnel_definitions.total_steps,
        -- A number for the funnel, so the recursion's lookup holds no text.
        dense_rank() over (order by funnel_definitions.funnel_name) as funnel_number,
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
    -- Everything loaded up to this instant is already reflected in the existing rows; every later load
    -- has a later time (the ingest gives each load a time after every earlier one).
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
        where all_funnel_events.last_loaded_at > (select processed_through.loaded_at from processed_through)
        union
        select all_funnel_events.person_id
        from all_funnel_events
        inner join steps
            on
                all_funnel_events.event_name = steps.event_name
                and (steps.step_number = 1 or steps.order_type = 'unordered')
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

-- A person's events in one total order: time, then source ('conversion' before 'event'), then id. The
-- numbers run across persons (person by person), so an event_sequence alone names an event.
-- Only the columns the matching needs: this CTE is read many times, so the engine keeps it (DuckDB
-- materializes it), and a wide copy of every funnel event did not fit DuckDB's memory budget at 30M
-- events. Filter values and the calling model's attributes come from int_funnel_events itself, joined
-- on (person_id, event_source, source_record_id) where needed.
sequenced_events as (
    select
        person_id,
        event_source,
        source_record_id,
        event_name,
        event_time,
        first_loaded_at,
        last_loaded_at,
        {{ epoch_microseconds('event_time') }} as event_microseconds,
        row_number() over (
            order by person_id, event_time, event_source, source_record_id
        ) as event_sequence,
        -- The event_sequence of the person's first event at this instant (DuckDB's step lookup starts
        -- there: an event at the same instant can follow the preceding step).
        rank() over (order by person_id, event_time) as instant_sequence
    from funnel_events
),

-- The conditions of every step filter and exclusion filter (macros/funnel_filters.sql), by filter text.
filter_clauses as (
    {{ funnel_filter_clauses(
        'select step_filter as filter_text from steps union select exclusion_filter as filter_text from funnel_exclusions'
    ) }}
),

-- Each step with the events of its event name, and each condition of its filter with the event's value.
step_name_events as (
    select
        steps.funnel_name,
        steps.funnel_number,
        steps.step_number,
        steps.step_filter,
        steps.order_type,
        sequenced_events.*
    from sequenced_events
    inner join steps
        on sequenced_events.event_name = steps.event_name
),

step_filter_values as (
    select
        step_name_events.funnel_name,
        step_name_events.step_number,
        step_name_events.person_id,
        step_name_events.event_sequence,
        filter_clauses.filter_key,
        filter_clauses.filter_operator,
        filter_clauses.filter_value,
        filter_clauses.filter_number,
        {{ funnel_filter_event_value('filter_clauses', 'filtered_event') }} as event_value
    from step_name_events
    inner join filter_clauses
        on step_name_events.step_filter = filter_clauses.filter_text
    inner join {{ ref('int_funnel_events') }} as filtered_event
        on
            step_name_events.person_id = filtered_event.person_id
            and step_name_events.event_source = filtered_event.event_source
            and step_name_events.source_record_id = filtered_event.source_record_id
),

step_filter_failures as (
    select distinct
        step_filter_values.funnel_name,
        step_filter_values.step_number,
        step_filter_values.person_id,
        step_filter_values.event_sequence
    from step_filter_values
    where not ({{ funnel_filter_passes('step_filter_values', 'step_filter_values.event_value') }})
),

-- One row per step and event that matches it: the step's event name and every condition of its filter.
step_events as {{ materialized_cte_hint() }} (
    select
        step_name_events.funnel_name,
        step_name_events.funnel_number,
        step_name_events.step_number,
        step_name_events.order_type,
        step_name_events.person_id,
        step_name_events.event_name,
        step_name_events.event_sequence,
        step_name_events.event_microseconds,
        step_name_events.instant_sequence,
        step_name_events.first_loaded_at,
        step_name_events.last_loaded_at
    from step_name_events
    left join step_filter_failures
        on
            step_name_events.funnel_name = step_filter_failures.funnel_name
            and step_name_events.step_number = step_filter_failures.step_number
            and step_name_events.person_id = step_filter_failures.person_id
            and step_name_events.event_sequence = step_filter_failures.event_sequence
    where step_filter_failures.event_sequence is null
),

-- `step_lookup`: which event an attempt's step k takes, keyed by the event it follows
-- (`after_event_sequence`: the step k-1 event, or for a step repeating an earlier step's event name the
-- latest counted event), with what the recursion needs to follow on: the window, and whether step k+1
-- repeats an event name. The next event is the earliest candidate for step k (an event matching it):
--   * at or after the preceding event's time, same instant included (steps with a new event name);
--   * after the preceding event in the person's event order (steps repeating an earlier event name:
--     the preceding event is then the last counted one, so no counted event is counted twice).
-- Numbers only: DuckDB holds the recursion's join table in memory on every iteration (it does not spill
-- there), so its width decides how many events fit the memory budget (text keys did not fit it at 30M
-- events). How it is found depends on the engine (funnel_step_lookup_ctes).
{{ funnel_step_lookup_ctes() }},

-- Every attempt (one per step-1 event) followed step by step as far as it goes. `lookup_sequence` is
-- the event the next step follows: this step's event, or for a next step repeating an event name the
-- latest counted event (`max_event_sequence`).
attempt_steps as (
    select
        step_events.person_id,
        step_events.funnel_name,
        step_events.funnel_number,
        step_events.event_sequence as start_event_sequence,
        step_events.event_microseconds as start_microseconds,
        step_events.step_number,
        step_events.event_sequence,
        step_events.event_microseconds,
        step_events.event_sequence as max_event_sequence,
        step_events.event_sequence as lookup_sequence
    from step_events
    where
        step_events.step_number = 1
        and step_events.order_type = 'ordered'

    union all

    select
        attempt_steps.person_id,
        attempt_steps.funnel_name,
        attempt_steps.funnel_number,
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
            attempt_steps.funnel_number = step_lookup.funnel_number
            and attempt_steps.step_number + 1 = step_lookup.step_number
            and attempt_steps.lookup_sequence = step_lookup.after_event_sequence
    where step_lookup.next_event_microseconds - attempt_steps.start_microseconds <= step_lookup.window_microseconds
),

-- Strict funnels read the person's whole event stream (int_funnel_events keeps every event when a strict
-- funnel exists). Per funnel, events at one instant are ordered by the first step they match (events
-- matching no step last), so that simultaneous steps follow in funnel order.
strict_funnel_starts as (
    select distinct
        step_events.person_id,
        step_events.funnel_name
    from step_events
    where
        step_events.step_number = 1
        and step_events.order_type = 'strict'
),

strict_event_steps as (
    select
        strict_funnel_starts.funnel_name,
        sequenced_events.person_id,
        sequenced_events.event_name,
        sequenced_events.event_sequence,
        sequenced_events.event_microseconds,
        min(step_events.step_number) as first_step_number,
        -- The steps the event matches, as '|1|3|' ('|' when none).
        '|' || coalesce({{ dbt.listagg(
            measure='cast(step_events.step_number as ' ~ dbt.type_string() ~ ')',
            delimiter_text="'|'",
            order_by_clause='order by step_events.step_number',
        ) }} || '|', '') as matched_steps
    from strict_funnel_starts
    inner join sequenced_events
        on strict_funnel_starts.person_id = sequenced_events.person_id
    left join step_events
        on
            strict_funnel_starts.funnel_name = step_events.funnel_name
            and sequenced_events.person_id = step_events.person_id
            and sequenced_events.event_sequence = step_events.event_sequence
    group by
        strict_funnel_starts.funnel_name,
        sequenced_events.person_id,
        sequenced_events.event_name,
        sequenced_events.event_sequence,
        sequenced_events.event_microseconds
),

strict_stream as {{ materialized_cte_hint() }} (
    select
        *,
        row_number() over (
            partition by person_id, funnel_name
            order by event_microseconds, coalesce(first_step_number, 2147483647), event_sequence
        ) as stream_position
    from strict_event_steps
),

-- Every strict attempt walked event by event (an event is a step when it matches the step's event name
-- and filter: matched_steps): the next event in the stream is the next step (within
-- the window), a repeat of the current step or at the instant of the current step (both kept
-- walking), or anything else (the attempt ends there). One row per event walked; step rows flagged.
{%- set next_event_is_next_step = dbt.position(
    "'|' || cast(next_step.step_number as " ~ dbt.type_string() ~ ") || '|'", 'next_event.matched_steps'
) ~ ' > 0' -%}
{%- set next_event_is_current_step = dbt.position(
    "'|' || cast(current_step.step_number as " ~ dbt.type_string() ~ ") || '|'", 'next_event.matched_steps'
) ~ ' > 0' %}
strict_walk as (
    select
        strict_stream.person_id,
        strict_stream.funnel_name,
        strict_stream.event_sequence as start_event_sequence,
        strict_stream.event_microseconds as start_microseconds,
        steps.step_number,
        steps.total_steps,
        steps.window_microseconds,
        strict_stream.stream_position,
        strict_stream.event_sequence,
        strict_stream.event_microseconds,
        strict_stream.event_microseconds as step_microseconds,
        true as is_step
    from strict_stream
    inner join steps
        on
            strict_stream.funnel_name = steps.funnel_name
            and steps.step_number = 1
            and {{ dbt.position("'|1|'", 'strict_stream.matched_steps') }} > 0

    union all

    select
        strict_walk.person_id,
        strict_walk.funnel_name,
        strict_walk.start_event_sequence,
        strict_walk.start_microseconds,
        case
            when
                next_event.event_microseconds - strict_walk.start_microseconds <= strict_walk.window_microseconds
                and {{ next_event_is_next_step }}
                then strict_walk.step_number + 1
            else strict_walk.step_number
        end as step_number,
        strict_walk.total_steps,
        strict_walk.window_microseconds,
        next_event.stream_position,
        next_event.event_sequence,
        next_event.event_microseconds,
        case
            when
                next_event.event_microseconds - strict_walk.start_microseconds <= strict_walk.window_microseconds
                and {{ next_event_is_next_step }}
                then next_event.event_microseconds
            else strict_walk.step_microseconds
        end as step_microseconds,
        next_event.event_microseconds - strict_walk.start_microseconds <= strict_walk.window_microseconds
        and {{ next_event_is_next_step }} as is_step
    from strict_walk
    inner join strict_stream as next_event
        on
            strict_walk.person_id = next_event.person_id
            and strict_walk.funnel_name = next_event.funnel_name
            and strict_walk.stream_position + 1 = next_event.stream_position
    inner join steps as current_step
        on
            strict_walk.funnel_name = current_step.funnel_name
            and strict_walk.step_number = current_step.step_number
    inner join steps as next_step
        on
            strict_walk.funnel_name = next_step.funnel_name
            and strict_walk.step_number + 1 = next_step.step_number
    where
        strict_walk.step_number < strict_walk.total_steps
        and (
            (
                next_event.event_microseconds - strict_walk.start_microseconds <= strict_walk.window_microseconds
                and {{ next_event_is_next_step }}
            )
            or {{ next_event_is_current_step }}
            or next_event.event_microseconds = strict_walk.step_microseconds
        )
),

all_attempt_steps as (
    select
        person_id,
        funnel_name,
        start_event_sequence,
        start_microseconds,
        step_number,
        event_sequence,
        event_microseconds
    from attempt_steps
    union all
    select
        person_id,
        funnel_name,
        start_event_sequence,
        start_microseconds,
        step_number,
        event_sequence,
        event_microseconds
    from strict_walk
    where is_step
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
    from all_attempt_steps
),

-- The person's events that are exclusion steps of a funnel.
exclusion_name_events as (
    select
        funnel_exclusions.funnel_name,
        funnel_exclusions.from_step,
        funnel_exclusions.to_step,
        funnel_exclusions.exclusion_filter,
        sequenced_events.*
    from sequenced_events
    inner join funnel_exclusions
        on sequenced_events.event_name = funnel_exclusions.event_name
),

exclusion_filter_values as (
    select
        exclusion_name_events.funnel_name,
        exclusion_name_events.from_step,
        exclusion_name_events.to_step,
        exclusion_name_events.exclusion_filter,
        exclusion_name_events.person_id,
        exclusion_name_events.event_sequence,
        filter_clauses.filter_key,
        filter_clauses.filter_operator,
        filter_clauses.filter_value,
        filter_clauses.filter_number,
        {{ funnel_filter_event_value('filter_clauses', 'filtered_event') }} as event_value
    from exclusion_name_events
    inner join filter_clauses
        on exclusion_name_events.exclusion_filter = filter_clauses.filter_text
    inner join {{ ref('int_funnel_events') }} as filtered_event
        on
            exclusion_name_events.person_id = filtered_event.person_id
            and exclusion_name_events.event_source = filtered_event.event_source
            and exclusion_name_events.source_record_id = filtered_event.source_record_id
),

exclusion_filter_failures as (
    select distinct
        exclusion_filter_values.funnel_name,
        exclusion_filter_values.from_step,
        exclusion_filter_values.to_step,
        exclusion_filter_values.exclusion_filter,
        exclusion_filter_values.person_id,
        exclusion_filter_values.event_sequence
    from exclusion_filter_values
    where not ({{ funnel_filter_passes('exclusion_filter_values', 'exclusion_filter_values.event_value') }})
),

-- The exclusion events: the exclusion's event name, and every condition of its filter.
exclusion_events as (
    select
        exclusion_name_events.funnel_name,
        exclusion_name_events.from_step,
        exclusion_name_events.to_step,
        exclusion_name_events.person_id,
        exclusion_name_events.event_microseconds
    from exclusion_name_events
    left join exclusion_filter_failures
        on
            exclusion_name_events.funnel_name = exclusion_filter_failures.funnel_name
            and exclusion_name_events.from_step = exclusion_filter_failures.from_step
            and exclusion_name_events.to_step = exclusion_filter_failures.to_step
            and exclusion_name_events.exclusion_filter = exclusion_filter_failures.exclusion_filter
            and exclusion_name_events.person_id = exclusion_filter_failures.person_id
            and exclusion_name_events.event_sequence = exclusion_filter_failures.event_sequence
    where exclusion_filter_failures.event_sequence is null
),

-- Each counted step of an attempt with the time of the attempt's next step (null: none).
attempt_step_bounds as (
    select
        attempt_totals.person_id,
        attempt_totals.funnel_name,
        attempt_totals.start_event_sequence,
        attempt_totals.start_microseconds,
        attempt_totals.step_number,
        attempt_totals.event_microseconds,
        lead(attempt_totals.event_microseconds) over (
            partition by attempt_totals.person_id, attempt_totals.funnel_name, attempt_totals.start_event_sequence
            order by attempt_totals.step_number
        ) as next_step_microseconds
    from attempt_totals
),

-- An attempt is tainted in the interval step j-1 → j when an exclusion covering it happens after step j-1,
-- before step j (or with no step j), and inside the window. The attempt keeps at most step j.
attempt_taints as (
    select
        attempt_step_bounds.person_id,
        attempt_step_bounds.funnel_name,
        attempt_step_bounds.start_event_sequence,
        min(attempt_step_bounds.step_number + 1) as tainted_step,
        min(exclusion_events.event_microseconds) as tainted_microseconds
    from attempt_step_bounds
    inner join steps
        on
            attempt_step_bounds.funnel_name = steps.funnel_name
            and attempt_step_bounds.step_number = steps.step_number
    inner join exclusion_events
        on
            attempt_step_bounds.person_id = exclusion_events.person_id
            and attempt_step_bounds.funnel_name = exclusion_events.funnel_name
            and attempt_step_bounds.step_number >= exclusion_events.from_step
            and attempt_step_bounds.step_number + 1 <= exclusion_events.to_step
            and attempt_step_bounds.event_microseconds < exclusion_events.event_microseconds
            and (
                attempt_step_bounds.next_step_microseconds is null
                or attempt_step_bounds.next_step_microseconds > exclusion_events.event_microseconds
            )
            and exclusion_events.event_microseconds - attempt_step_bounds.start_microseconds
            <= steps.window_microseconds
    where attempt_step_bounds.step_number < steps.total_steps
    group by
        attempt_step_bounds.person_id,
        attempt_step_bounds.funnel_name,
        attempt_step_bounds.start_event_sequence
),

-- Attempts cut after the step that follows their first taint, with their totals recomputed.
effective_attempt_steps as (
    select
        attempt_totals.person_id,
        attempt_totals.funnel_name,
        attempt_totals.start_event_sequence,
        attempt_totals.start_microseconds,
        attempt_totals.step_number,
        attempt_totals.event_sequence,
        attempt_totals.event_microseconds,
        attempt_totals.candidate_starts,
        attempt_taints.tainted_microseconds,
        max(attempt_totals.step_number) over (
            partition by attempt_totals.person_id, attempt_totals.funnel_name, attempt_totals.start_event_sequence
        ) as completed_steps,
        max(attempt_totals.event_microseconds) over (
            partition by attempt_totals.person_id, attempt_totals.funnel_name, attempt_totals.start_event_sequence
        ) as furthest_step_microseconds
    from attempt_totals
    left join attempt_taints
        on
            attempt_totals.person_id = attempt_taints.person_id
            and attempt_totals.funnel_name = attempt_taints.funnel_name
            and attempt_totals.start_event_sequence = attempt_taints.start_event_sequence
    where attempt_taints.tainted_step is null or attempt_totals.step_number <= attempt_taints.tainted_step
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
    from effective_attempt_steps
),

ranked_attempts as (
    select distinct
        person_id,
        funnel_name,
        start_event_sequence,
        start_microseconds,
        completed_steps,
        furthest_step_microseconds,
        tainted_microseconds,
        attempt_rank
    from ranked_attempt_steps
),

-- A tainted winner is replaced by the attempt that first reaches the same step after the taint (the
-- replacement, tainted itself, leaves the person excluded).
replacing_attempts as (
    select
        candidate.person_id,
        candidate.funnel_name,
        candidate.start_event_sequence,
        row_number() over (
            partition by candidate.person_id, candidate.funnel_name
            order by
                candidate.furthest_step_microseconds asc,
                candidate.start_microseconds desc,
                candidate.start_event_sequence desc
        ) as replacement_rank
    from ranked_attempts as winner
    inner join ranked_attempts as candidate
        on
            winner.person_id = candidate.person_id
            and winner.funnel_name = candidate.funnel_name
            and winner.completed_steps = candidate.completed_steps
            and winner.tainted_microseconds < candidate.furthest_step_microseconds
    where winner.attempt_rank = 1
),

result_attempts as (
    select
        winner.person_id,
        winner.funnel_name,
        coalesce(replacing_attempts.start_event_sequence, winner.start_event_sequence) as start_event_sequence
    from ranked_attempts as winner
    left join replacing_attempts
        on
            winner.person_id = replacing_attempts.person_id
            and winner.funnel_name = replacing_attempts.funnel_name
            and replacing_attempts.replacement_rank = 1
    where winner.attempt_rank = 1
),

-- Unordered funnels: each event name of the funnel and how many steps use it (a → a → b needs two a).
unordered_event_names as (
    select
        funnel_name,
        event_name,
        max(window_microseconds) as window_microseconds,
        count(*) as step_count
    from steps
    where order_type = 'unordered'
    group by
        funnel_name,
        event_name
),

-- The events matching a step of an unordered funnel (steps sharing an event name share their filter).
unordered_step_events as (
    select distinct
        funnel_name,
        person_id,
        event_name,
        event_sequence,
        event_microseconds
    from step_events
    where order_type = 'unordered'
),

unordered_events as (
    select
        unordered_event_names.funnel_name,
        unordered_event_names.step_count,
        unordered_event_names.window_microseconds,
        unordered_step_events.person_id,
        unordered_step_events.event_name,
        unordered_step_events.event_sequence,
        unordered_step_events.event_microseconds
    from unordered_step_events
    inner join unordered_event_names
        on
            unordered_step_events.funnel_name = unordered_event_names.funnel_name
            and unordered_step_events.event_name = unordered_event_names.event_name
),

-- Every step event is an anchor; the events of the funnel within the window from it (inclusive), each
-- numbered among the events of its name.
unordered_window_pairs as (
    select
        anchor.person_id,
        anchor.funnel_name,
        anchor.event_sequence as anchor_event_sequence,
        anchor.event_microseconds as anchor_microseconds,
        anchor.window_microseconds,
        in_window.event_name,
        in_window.step_count,
        in_window.event_sequence,
        in_window.event_microseconds,
        row_number() over (
            partition by anchor.person_id, anchor.funnel_name, anchor.event_sequence, in_window.event_name
            order by in_window.event_microseconds, in_window.event_sequence
        ) as name_occurrence
    from unordered_events as anchor
    inner join unordered_events as in_window
        on
            anchor.person_id = in_window.person_id
            and anchor.funnel_name = in_window.funnel_name
            and anchor.event_microseconds <= in_window.event_microseconds
            and in_window.event_microseconds - anchor.event_microseconds <= anchor.window_microseconds
),

-- Per anchor and event name: the steps it fills, and when the last of them was filled.
unordered_anchor_names as (
    select
        person_id,
        funnel_name,
        anchor_event_sequence,
        anchor_microseconds,
        window_microseconds,
        event_name,
        least(count(*), max(step_count)) as steps_done,
        max(case when name_occurrence = step_count then event_microseconds end) as filled_microseconds
    from unordered_window_pairs
    group by
        person_id,
        funnel_name,
        anchor_event_sequence,
        anchor_microseconds,
        window_microseconds,
        event_name
),

-- The anchor's reach (distinct steps done in its window) and, when it did every step, when.
unordered_anchor_reach as (
    select
        unordered_anchor_names.person_id,
        unordered_anchor_names.funnel_name,
        unordered_anchor_names.anchor_event_sequence,
        unordered_anchor_names.anchor_microseconds,
        unordered_anchor_names.window_microseconds,
        sum(unordered_anchor_names.steps_done) as completed_steps,
        case
            when sum(unordered_anchor_names.steps_done) = max(steps.total_steps)
                then max(unordered_anchor_names.filled_microseconds)
        end as all_done_microseconds
    from unordered_anchor_names
    inner join steps
        on
            unordered_anchor_names.funnel_name = steps.funnel_name
            and steps.step_number = 1
    group by
        unordered_anchor_names.person_id,
        unordered_anchor_names.funnel_name,
        unordered_anchor_names.anchor_event_sequence,
        unordered_anchor_names.anchor_microseconds,
        unordered_anchor_names.window_microseconds
),

-- An exclusion inside an anchor's window wipes it, unless every step was done before it. The earliest
-- clean anchor with the largest reach wins; a person whose every window was wiped is excluded.
unordered_anchors as (
    select
        unordered_anchor_reach.person_id,
        unordered_anchor_reach.funnel_name,
        unordered_anchor_reach.anchor_event_sequence,
        unordered_anchor_reach.anchor_microseconds,
        unordered_anchor_reach.completed_steps,
        min(exclusion_events.event_microseconds) is not null as is_excluded,
        row_number() over (
            partition by unordered_anchor_reach.person_id, unordered_anchor_reach.funnel_name
            order by
                min(exclusion_events.event_microseconds) is not null asc,
                unordered_anchor_reach.completed_steps desc,
                unordered_anchor_reach.anchor_microseconds asc,
                unordered_anchor_reach.anchor_event_sequence asc
        ) as anchor_rank,
        count(*) over (
            partition by unordered_anchor_reach.person_id, unordered_anchor_reach.funnel_name
        ) as candidate_starts
    from unordered_anchor_reach
    left join exclusion_events
        on
            unordered_anchor_reach.person_id = exclusion_events.person_id
            and unordered_anchor_reach.funnel_name = exclusion_events.funnel_name
            and unordered_anchor_reach.anchor_microseconds <= exclusion_events.event_microseconds
            and exclusion_events.event_microseconds - unordered_anchor_reach.anchor_microseconds
            <= unordered_anchor_reach.window_microseconds
            and (
                unordered_anchor_reach.all_done_microseconds is null
                or unordered_anchor_reach.all_done_microseconds >= exclusion_events.event_microseconds
            )
    group by
        unordered_anchor_reach.person_id,
        unordered_anchor_reach.funnel_name,
        unordered_anchor_reach.anchor_event_sequence,
        unordered_anchor_reach.anchor_microseconds,
        unordered_anchor_reach.completed_steps
),

-- Load times that make the rows reproducible: when the person's step-1 events of the funnel were
-- first and last loaded, and the latest load of any of the person's funnel events.
start_loads as (
    select
        person_id,
        funnel_name,
        min(first_loaded_at) as first_start_loaded_at,
        max(last_loaded_at) as last_start_loaded_at
    from step_events
    where step_number = 1 or order_type = 'unordered'
    group by
        person_id,
        funnel_name
),

person_loads as (
    select
        person_id,
        max(last_loaded_at) as person_loaded_at
    from sequenced_events
    group by person_id
),

-- Every attempt with its counted steps, and whether it is the person's result (the attempt
-- int_funnel_steps_matched keeps: result_attempts, or the first-ranked unordered anchor). Ordered and
-- strict: each step-1 event's attempt, cut after the step that follows its first taint; excluded when
-- tainted. Unordered: each anchor's window, the first event of each step in time order as
-- steps 1, 2, …; excluded when an exclusion wiped the window.
attempt_rows as (
    select
        ranked_attempt_steps.person_id,
        ranked_attempt_steps.funnel_name,
        ranked_attempt_steps.start_event_sequence,
        ranked_attempt_steps.step_number,
        ranked_attempt_steps.event_sequence,
        ranked_attempt_steps.completed_steps,
        ranked_attempt_steps.tainted_microseconds is not null as is_excluded,
        result_attempts.start_event_sequence is not null as is_chosen_attempt
    from ranked_attempt_steps
    left join result_attempts
        on
            ranked_attempt_steps.person_id = result_attempts.person_id
            and ranked_attempt_steps.funnel_name = result_attempts.funnel_name
            and ranked_attempt_steps.start_event_sequence = result_attempts.start_event_sequence
    union all
    select
        unordered_window_pairs.person_id,
        unordered_window_pairs.funnel_name,
        unordered_window_pairs.anchor_event_sequence as start_event_sequence,
        row_number() over (
            partition by
                unordered_window_pairs.person_id,
                unordered_window_pairs.funnel_name,
                unordered_window_pairs.anchor_event_sequence
            order by unordered_window_pairs.event_microseconds, unordered_window_pairs.event_sequence
        ) as step_number,
        unordered_window_pairs.event_sequence,
        unordered_anchors.completed_steps,
        unordered_anchors.is_excluded,
        unordered_anchors.anchor_rank = 1 as is_chosen_attempt
    from unordered_window_pairs
    inner join unordered_anchors
        on
            unordered_window_pairs.person_id = unordered_anchors.person_id
            and unordered_window_pairs.funnel_name = unordered_anchors.funnel_name
            and unordered_window_pairs.anchor_event_sequence = unordered_anchors.anchor_event_sequence
    where unordered_window_pairs.name_occurrence <= unordered_window_pairs.step_count
),

{%- endmacro %}


{#-
    The CTEs that end with `step_lookup` (funnel_matching_ctes says what it holds), from `steps`,
    `step_events` and `sequenced_events`; no trailing comma. Dispatched: DuckDB finds each next candidate
    with an ASOF join, other engines with window functions over the events around each step.
-#}
{% macro funnel_step_lookup_ctes() -%}
    {{ return(adapter.dispatch('funnel_step_lookup_ctes')()) }}
{%- endmacro %}

{% macro default__funnel_step_lookup_ctes() -%}
-- For every step k >= 2 of an ordered funnel, the events to look at: those matching step k (its
-- candidates), step k-1, and for a step repeating an earlier step's event name, any earlier step.
transition_events as (
    select
        later_step.funnel_name,
        later_step.step_number,
        later_step.is_repeated_event_name,
        step_events.person_id,
        step_events.event_sequence,
        step_events.event_microseconds,
        max(case when step_events.step_number = later_step.step_number then 1 else 0 end) = 1 as is_candidate
    from steps as later_step
    inner join step_events
        on
            later_step.funnel_name = step_events.funnel_name
            and (
                later_step.step_number = step_events.step_number
                or later_step.step_number - 1 = step_events.step_number
                or (later_step.is_repeated_event_name and later_step.step_number > step_events.step_number)
            )
    where
        later_step.order_type = 'ordered'
        and later_step.step_number > 1
    group by
        later_step.funnel_name,
        later_step.step_number,
        later_step.is_repeated_event_name,
        step_events.person_id,
        step_events.event_sequence,
        step_events.event_microseconds
),

-- For each event that can precede step k, the earliest candidate for step k: the first by time from
-- that event's time on (a range window, so the same instant is included), and the first after it in
-- event order.
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

step_lookup as {{ materialized_cte_hint() }} (
    select
        steps.funnel_number,
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
        on next_candidates.next_event_sequence = candidate.event_sequence
)
{%- endmacro %}

{#-
    DuckDB: one ASOF join from each event that can precede step k to the candidates of step k, by person
    and step: the candidate with the smallest event_sequence from a threshold on. Within a person,
    event_sequence follows time, so for a step with a new event name the threshold is the person's first
    event at the preceding event's instant (instant_sequence: the same instant included); for a step
    repeating an earlier step's event name it is the next event in order. Same lookups as the default's
    windows (the engine-equivalence tests compare them with PostgreSQL), without sorting every event
    around each step twice: at 10M events the matching query took about a quarter less CPU.
-#}
{% macro duckdb__funnel_step_lookup_ctes() -%}
-- The events each step k >= 2 of an ordered funnel can follow, with the first event_sequence a
-- candidate may have: the step k-1 events and, for a step repeating an earlier step's event name, the
-- events of every earlier step (once each: an event can match several steps).
step_lookup_from as (
    select
        later_step.funnel_number,
        later_step.step_number,
        step_events.person_id,
        step_events.event_sequence as after_event_sequence,
        case
            when later_step.is_repeated_event_name then step_events.event_sequence + 1
            else step_events.instant_sequence
        end as first_candidate_sequence
    from steps as later_step
    inner join step_events
        on
            later_step.funnel_name = step_events.funnel_name
            and later_step.step_number - 1 = step_events.step_number
    where
        later_step.order_type = 'ordered'
        and later_step.step_number > 1

    union all

    select distinct
        later_step.funnel_number,
        later_step.step_number,
        step_events.person_id,
        step_events.event_sequence as after_event_sequence,
        step_events.event_sequence + 1 as first_candidate_sequence
    from steps as later_step
    inner join step_events
        on
            later_step.funnel_name = step_events.funnel_name
            and later_step.step_number - 1 > step_events.step_number
    where
        later_step.order_type = 'ordered'
        and later_step.is_repeated_event_name
        and not exists (
            select 1 from step_events as previous_step_events
            where
                previous_step_events.funnel_name = later_step.funnel_name
                and previous_step_events.step_number = later_step.step_number - 1
                and previous_step_events.event_sequence = step_events.event_sequence
        )
),

step_candidates as (
    select
        funnel_number,
        step_number,
        person_id,
        event_sequence,
        event_microseconds
    from step_events
    where
        order_type = 'ordered'
        and step_number > 1
),

step_lookup as materialized (
    select
        step_lookup_from.funnel_number,
        step_lookup_from.step_number,
        step_lookup_from.after_event_sequence,
        step_candidates.event_sequence as next_event_sequence,
        step_candidates.event_microseconds as next_event_microseconds,
        steps.window_microseconds,
        steps.is_next_step_repeated_event_name
    from step_lookup_from
    asof inner join step_candidates
        on
            step_lookup_from.funnel_number = step_candidates.funnel_number
            and step_lookup_from.step_number = step_candidates.step_number
            and step_lookup_from.person_id = step_candidates.person_id
            and step_lookup_from.first_candidate_sequence <= step_candidates.event_sequence
    inner join steps
        on
            step_lookup_from.funnel_number = steps.funnel_number
            and step_lookup_from.step_number = steps.step_number
)
{%- endmacro %}
