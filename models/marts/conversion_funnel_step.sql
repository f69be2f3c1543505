-- One row per person × funnel × step reached by the person's winning attempt (the feature document's funnel steps:
-- getFunnelSteps / completeFunnelStep), with the event or conversion counted and the time between steps.
with steps_matched as (
    select * from {{ ref('int_funnel_steps_matched') }}
),

timed_steps as (
    select
        *,
        lag(event_time) over (
            partition by person_id, funnel_name
            order by step_number
        ) as previous_step_at
    from steps_matched
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
