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

-- One row per funnel attempt of a person: every try the funnel matching follows (the docs block
-- funnel_attempts says what an attempt is for each order type), how far it got, when, whether an exclusion
-- tainted it, and whether it is the attempt conversion_funnel keeps for the person (is_chosen_attempt:
-- exactly one per person and funnel). conversion_funnel counts persons (uniques); this table also
-- counts attempts (Mixpanel's "totals").
--
-- The attempts' steps come from int_funnel_attempt_steps (matched once per build). Incremental
-- (delete+insert by person_id), following that model: a run sums up again the persons it recomputed since
-- this one last ran (person_loaded_at after the latest one here) and the persons with rows there of a
-- funnel definition that has no rows here (new or edited: the pre-hook deletes the rows of a changed
-- definition).
with attempt_steps as (
    select * from {{ ref('int_funnel_attempt_steps') }}
),

attempt_step_events as (
    {{ funnel_attempt_rows_to_rebuild('attempt_steps') }}
),

-- One row per attempt; the start event's columns are the same on each of its steps.
attempts as (
    select
        person_id,
        funnel_name,
        start_event_source,
        start_source_record_id,
        start_campaign_id,
        start_ad_set_id,
        start_ad_id,
        start_utm_source,
        start_utm_medium,
        start_utm_campaign,
        funnel_definition_hash,
        total_steps,
        person_loaded_at,
        max(completed_steps) as completed_steps,
        max(case when step_number = completed_steps then step_name end) as last_step_name,
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
        start_event_source,
        start_source_record_id,
        start_campaign_id,
        start_ad_set_id,
        start_ad_id,
        start_utm_source,
        start_utm_medium,
        start_utm_campaign,
        funnel_definition_hash,
        total_steps,
        person_loaded_at
),

final as (
    select
        {{ uuid_from_columns(['person_id', 'funnel_name', 'start_event_source', 'start_source_record_id']) }} as id,
        person_id,
        funnel_name,
        last_step_name,
        start_event_source,
        start_source_record_id,
        start_campaign_id as campaign_id,
        start_ad_set_id as ad_set_id,
        start_ad_id as ad_id,
        start_utm_source as utm_source,
        start_utm_medium as utm_medium,
        start_utm_campaign as utm_campaign,
        funnel_definition_hash,
        step_seconds_from_start,
        cast(total_steps as {{ dbt.type_int() }}) as total_steps,
        cast(completed_steps as {{ dbt.type_int() }}) as completed_steps,
        {{ seconds_between('started_at', 'last_step_at') }} as total_time_seconds,
        completed_steps = total_steps as is_converted,
        is_excluded,
        is_chosen_attempt,
        started_at,
        last_step_at,
        case when completed_steps = total_steps then last_step_at end as converted_at,
        person_loaded_at
    from attempts
)

select * from final
