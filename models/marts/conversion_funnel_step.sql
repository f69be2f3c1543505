{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='person_id',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() %}{{ delete_rows_where(this, 'not ' ~ incremental_state_is_current(funnel_rows_fingerprint())) }}{% endif %}",
            "{% if is_incremental() %}{{ delete_rows_where(this, stitched_away_persons(since=incremental_state_value('loaded_through'))) }}{% endif %}",
        ],
        post_hook="{{ record_incremental_state(funnel_rows_loaded_through(), funnel_rows_fingerprint()) }}",
    )
}}

-- depends_on: {{ ref('int_identity_map') }}
-- depends_on: {{ ref('int_identity_previous_persons') }}
-- depends_on: {{ ref('int_identity_observations') }}
-- depends_on: {{ ref('int_events_deduplicated') }}
-- depends_on: {{ ref('int_conversions_deduplicated') }}

-- One row per person × funnel × step reached by the person's winning attempt (the feature document's funnel steps:
-- getFunnelSteps / completeFunnelStep), with the event or conversion counted and the time between steps.
--
-- Incremental (delete+insert by person_id: a person's rows are replaced together). A run recomputes the
-- persons whose matching changed since the last run (person_loaded_at after the `loaded_through`
-- this model recorded in audit.incremental_state, macros/funnel_mart_state.sql), and every person when
-- the funnel definitions the matching used changed or nothing was recorded (the pre-hook then empties
-- the table). A row depends only on the person's matched steps: nothing else, not the clock, changes it.
with steps_matched as (
    select * from {{ ref('int_funnel_steps_matched') }}
),

{% if is_incremental() -%}
    incremental_state as (
        select
            {{ incremental_state_value('loaded_through') }} as loaded_through,
            {{ incremental_state_is_current(funnel_rows_fingerprint()) }} as is_current
    ),

    -- person_loaded_at is the same on every row of a person: whole persons are selected.
    recomputed_steps as (
        select steps_matched.*
        from steps_matched
        where
            steps_matched.person_loaded_at > (select incremental_state.loaded_through from incremental_state)
            or not (select incremental_state.is_current from incremental_state)
    ),
{%- else -%}
    recomputed_steps as (
        select * from steps_matched
    ),
{%- endif %}

timed_steps as (
    select
        *,
        lag(event_time) over (
            partition by person_id, funnel_name
            order by step_number
        ) as previous_step_at
    from recomputed_steps
),

final as (
    select
        {{ uuid_from_columns(['person_id', 'funnel_name', 'step_number']) }} as id,
        {{ uuid_from_columns(['person_id', 'funnel_name']) }} as conversion_funnel_id,
        person_id,
        funnel_name,
        step_name,
        event_name,
        event_source,
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
        step_number,
        total_steps,
        {{ seconds_between('previous_step_at', 'event_time') }} as seconds_from_previous_step,
        {{ seconds_between('started_at', 'event_time') }} as seconds_from_start,
        step_number = total_steps as is_last_step,
        started_at,
        event_time as reached_at
    from timed_steps
)

select * from final
