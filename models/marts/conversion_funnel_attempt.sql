{#- postgres_settings: no nested loops on PostgreSQL (macros/planner_settings.sql says why). -#}
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

-- One row per funnel attempt of a person: every try the funnel matching follows (the docs block
-- funnel_attempts says what an attempt is for each order type), how far it got, when, whether an exclusion
-- tainted it, and whether it is the attempt conversion_funnel keeps for the person (is_chosen_attempt:
-- exactly one per person and funnel). conversion_funnel counts persons (uniques); this table also
-- counts attempts (Mixpanel's "totals").
--
-- The matching is the macro funnel_matching_ctes, shared with int_funnel_steps_matched, and incremental the
-- same way (delete+insert by person_id): a run recomputes whole persons, those with a funnel event loaded
-- since the latest person_loaded_at here and those with a start event of a funnel that has no rows here
-- (new or edited: the pre-hook deletes the rows of a changed definition).
{{ funnel_matching_ctes() }}

-- Each attempt's steps with their events.
attempt_step_events as (
    select
        attempt_rows.person_id,
        attempt_rows.funnel_name,
        attempt_rows.start_event_sequence,
        attempt_rows.step_number,
        attempt_rows.completed_steps,
        attempt_rows.is_excluded,
        attempt_rows.is_chosen_attempt,
        start_event.event_time as started_at,
        step_event.event_time,
        {{ seconds_between('start_event.event_time', 'step_event.event_time') }} as seconds_from_start
    from attempt_rows
    inner join sequenced_events as start_event
        on
            attempt_rows.person_id = start_event.person_id
            and attempt_rows.start_event_sequence = start_event.event_sequence
    inner join sequenced_events as step_event
        on
            attempt_rows.person_id = step_event.person_id
            and attempt_rows.event_sequence = step_event.event_sequence
),

attempts as (
    select
        person_id,
        funnel_name,
        start_event_sequence,
        max(completed_steps) as completed_steps,
        max(case when step_number = completed_steps then event_time end) as last_step_at,
        {{ dbt.listagg(
            measure='cast(seconds_from_start as ' ~ dbt.type_string() ~ ')',
            delimiter_text="','",
            order_by_clause='order by step_number',
        ) }} as step_seconds_from_start,
        {{ dbt.bool_or('is_excluded') }} as is_excluded,
        {{ dbt.bool_or('is_chosen_attempt') }} as is_chosen_attempt,
        min(started_at) as started_at
    from attempt_step_events
    group by
        person_id,
        funnel_name,
        start_event_sequence
),

final as (
    select
        {{ uuid_from_columns([
            'attempts.person_id', 'attempts.funnel_name', 'start_event.event_source', 'start_event.source_record_id'
        ]) }} as id,
        attempts.person_id,
        attempts.funnel_name,
        last_step.step_name as last_step_name,
        start_event.event_source as start_event_source,
        start_event.source_record_id as start_source_record_id,
        start_event.campaign_id,
        start_event.ad_set_id,
        start_event.ad_id,
        start_event.utm_source,
        start_event.utm_medium,
        start_event.utm_campaign,
        steps.funnel_definition_hash,
        attempts.step_seconds_from_start,
        cast(steps.total_steps as {{ dbt.type_int() }}) as total_steps,
        cast(attempts.completed_steps as {{ dbt.type_int() }}) as completed_steps,
        {{ seconds_between('attempts.started_at', 'attempts.last_step_at') }} as total_time_seconds,
        attempts.completed_steps = steps.total_steps as is_converted,
        attempts.is_excluded,
        attempts.is_chosen_attempt,
        attempts.started_at,
        attempts.last_step_at,
        case when attempts.completed_steps = steps.total_steps then attempts.last_step_at end as converted_at,
        person_loads.person_loaded_at
    from attempts
    inner join steps
        on
            attempts.funnel_name = steps.funnel_name
            and steps.step_number = 1
    inner join steps as last_step
        on
            attempts.funnel_name = last_step.funnel_name
            and attempts.completed_steps = last_step.step_number
    inner join sequenced_events as start_event
        on
            attempts.person_id = start_event.person_id
            and attempts.start_event_sequence = start_event.event_sequence
    inner join person_loads
        on attempts.person_id = person_loads.person_id
)

select * from final
