{#- on_schema_change append_new_columns: a column added here (is_excluded) comes with new funnel
    definition hashes, which change the recorded fingerprint, so every older row is deleted first. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='person_id',
        on_schema_change='append_new_columns',
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

-- One row per person × funnel (the feature document's conversion_funnel): the person's winning attempt, from
-- int_funnel_steps_matched (see the docs block funnel_semantics).
--
-- Incremental (delete+insert by person_id: a person's rows are replaced together). A run recomputes
--   * the persons whose matching changed since the last run: person_loaded_at after the
--     `loaded_through` this model recorded (audit.incremental_state, macros/funnel_mart_state.sql);
--   * the persons with a row whose is_open the end of the data (the latest event or conversion, which
--     moves with most loads) changes: is_open is `not is_converted and window_closes_at > data end`,
--     so a row flips when the data end passes its window's close (or moves back before it). A run
--     with nothing new leaves the data end, and so every is_open, where it was;
--   * every person when the funnel definitions the matching used changed (its set of definition
--     hashes differs from the recorded one) or nothing was recorded: the pre-hook then empties the table.
-- Nothing else changes a row: its other columns depend only on the person's matched steps.
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

{% if is_incremental() -%}
    incremental_state as (
        select
            {{ incremental_state_value('loaded_through') }} as loaded_through,
            {{ incremental_state_is_current(funnel_rows_fingerprint()) }} as is_current
    ),

    persons_to_recompute as (
        select steps_matched.person_id
        from steps_matched
        where
            steps_matched.person_loaded_at > (select incremental_state.loaded_through from incremental_state)
            or not (select incremental_state.is_current from incremental_state)

        union

        -- is_open as this run computes it, against the stored one: only the rows it flips.
        select previous_rows.person_id
        from {{ this }} as previous_rows
        where
            previous_rows.is_open is distinct from (
                not previous_rows.is_converted
                and previous_rows.window_closes_at > (select data_end.data_end_at from data_end)
            )
    ),

    recomputed_steps as (
        select steps_matched.*
        from steps_matched
        where steps_matched.person_id in (select persons_to_recompute.person_id from persons_to_recompute)
    ),
{%- else -%}
    recomputed_steps as (
        select * from steps_matched
    ),
{%- endif %}

entry_steps as (
    select *
    from recomputed_steps
    where step_number = 1
),

furthest_steps as (
    select *
    from recomputed_steps
    where step_number = completed_steps
),

counted_loads as (
    select
        person_id,
        funnel_name,
        max(event_loaded_at) as last_counted_loaded_at
    from recomputed_steps
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
        entry_steps.is_excluded,
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
        funnels.is_excluded,
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
