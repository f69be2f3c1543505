-- One row per person × funnel (the feature document's conversion_funnel): the person's winning attempt, from
-- int_funnel_steps_matched (see the docs block funnel_semantics). A table rebuilt on every run from the
-- incremental matching, so is_open always reflects the current end of the data.
with steps_matched as (
    select * from {{ ref('int_funnel_steps_matched') }}
),

events as (
    select * from {{ ref('int_events_deduplicated') }}
),

conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

-- The end of the data: the latest event or conversion anywhere in the warehouse.
data_end as (
    select max(observed_at) as data_end_at
    from (
        select max(events.event_time) as observed_at from events
        union all
        select max(conversions.conversion_time) as observed_at from conversions
    ) as observed
),

entry_steps as (
    select *
    from steps_matched
    where step_number = 1
),

furthest_steps as (
    select *
    from steps_matched
    where step_number = completed_steps
),

counted_loads as (
    select
        person_id,
        funnel_name,
        max(event_loaded_at) as last_counted_loaded_at
    from steps_matched
    group by
        person_id,
        funnel_name
),

funnels as (
    select
        entry_steps.person_id,
        entry_steps.funnel_name,
        furthest_steps.step_name as last_step_name,
        entry_steps.campaign_id,
        entry_steps.ad_set_id,
        entry_steps.ad_id,
        entry_steps.utm_source,
        entry_steps.utm_medium,
        entry_steps.utm_campaign,
        entry_steps.utm_content,
        entry_steps.utm_term,
        entry_steps.total_steps,
        entry_steps.completed_steps,
        {{ percentage('entry_steps.completed_steps', 'entry_steps.total_steps') }} as completion_percentage,
        {{ seconds_between('entry_steps.event_time', 'furthest_steps.event_time') }} as total_time_seconds,
        entry_steps.candidate_starts,
        entry_steps.conversion_window_hours,
        entry_steps.completed_steps = entry_steps.total_steps as is_converted,
        entry_steps.event_time as started_at,
        furthest_steps.event_time as last_step_at,
        case
            when entry_steps.completed_steps = entry_steps.total_steps then furthest_steps.event_time
        end as converted_at,
        {{ dbt.dateadd('second', 'round(entry_steps.conversion_window_hours * 3600)', 'entry_steps.event_time') }}
            as window_closes_at,
        entry_steps.first_start_loaded_at as created_at,
        greatest(counted_loads.last_counted_loaded_at, entry_steps.last_start_loaded_at) as updated_at
    from entry_steps
    inner join furthest_steps
        on
            entry_steps.person_id = furthest_steps.person_id
            and entry_steps.funnel_name = furthest_steps.funnel_name
    inner join counted_loads
        on
            entry_steps.person_id = counted_loads.person_id
            and entry_steps.funnel_name = counted_loads.funnel_name
),

final as (
    select
        {{ uuid_from_columns(['funnels.person_id', 'funnels.funnel_name']) }} as id,
        funnels.person_id,
        funnels.funnel_name,
        funnels.last_step_name,
        funnels.campaign_id,
        funnels.ad_set_id,
        funnels.ad_id,
        funnels.utm_source,
        funnels.utm_medium,
        funnels.utm_campaign,
        funnels.utm_content,
        funnels.utm_term,
        funnels.total_steps,
        funnels.completed_steps,
        funnels.completion_percentage,
        funnels.total_time_seconds,
        funnels.candidate_starts,
        funnels.conversion_window_hours,
        funnels.is_converted,
        not funnels.is_converted and funnels.window_closes_at > data_end.data_end_at as is_open,
        funnels.started_at,
        funnels.last_step_at,
        funnels.converted_at,
        funnels.window_closes_at,
        funnels.created_at,
        funnels.updated_at
    from funnels
    cross join data_end
)

select * from final
