{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='id',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}{{ delete_rows_where(this, funnel_aggregate_outdated_periods(
            funnel_time_to_convert_fingerprint(), funnel_time_to_convert_day_counts(), funnel_time_to_convert_stored_day_counts(this)
        )) }}{% endif %}",
        post_hook="{{ record_incremental_state(funnel_stats_loaded_through(), funnel_time_to_convert_fingerprint()) }}",
    )
}}

-- depends_on: {{ ref('int_funnel_steps_matched') }}
-- depends_on: {{ ref('int_funnel_exclusions') }}

-- How long funnels take, as distributions (the time-to-convert view of product-analytics tools): one row
-- per funnel × period_type × period_date × time_span. Time span `time_to_convert` is each converted
-- person's time from the first to the last step (conversion_funnel.total_time_seconds); `step` with
-- step_number i is each person's gap between steps i-1 and i of their winning attempt
-- (conversion_funnel_step.seconds_from_previous_step), gaps of 0 seconds left out (as PostHog: steps
-- done at one instant say nothing about how long the step takes). Persons excluded from a funnel are
-- left out; a person is placed in the period of their started_at in the reporting time zone.
--
-- Incremental, by period, as funnel_stats: the pre-hook deletes every row of each period (funnel × period_type
-- × period_date) that may have changed since the last run (macros/funnel_aggregate_periods.sql: the days where
-- a changed person now starts or whose counts changed, their weeks and months, and the funnel's all_time
-- rows), or every row when the funnel definitions, the funnel marts' own recomputation or var
-- reporting_timezone changed. This model then computes the periods that have timings and no rows, each whole
-- (every time span). The all_time rows read every person's timings whenever anything changed.
with funnels as (
    select * from {{ ref('conversion_funnel') }}
    where not is_excluded
),

funnel_steps as (
    select * from {{ ref('conversion_funnel_step') }}
),

funnel_definitions as (
    select * from {{ ref('int_funnel_definitions') }}
),

timings as (
    select
        funnels.funnel_name,
        'time_to_convert' as time_span,
        cast(null as {{ dbt.type_int() }}) as step_number,
        funnels.total_time_seconds as duration_seconds,
        funnels.started_at
    from funnels
    where funnels.is_converted
    union all
    select
        funnel_steps.funnel_name,
        'step' as time_span,
        funnel_steps.step_number,
        funnel_steps.seconds_from_previous_step as duration_seconds,
        funnels.started_at
    from funnel_steps
    inner join funnels
        on
            funnel_steps.person_id = funnels.person_id
            and funnel_steps.funnel_name = funnels.funnel_name
    where
        funnel_steps.step_number >= 2
        and funnel_steps.seconds_from_previous_step > 0
),

timings_by_period as (
    select
        funnel_name,
        time_span,
        step_number,
        duration_seconds,
        'all_time' as period_type,
        cast(null as date) as period_date
    from timings
    union all
    select
        funnel_name,
        time_span,
        step_number,
        duration_seconds,
        'daily' as period_type,
        {{ reporting_period_start('started_at', 'day') }} as period_date
    from timings
    union all
    select
        funnel_name,
        time_span,
        step_number,
        duration_seconds,
        'weekly' as period_type,
        {{ reporting_period_start('started_at', 'week') }} as period_date
    from timings
    union all
    select
        funnel_name,
        time_span,
        step_number,
        duration_seconds,
        'monthly' as period_type,
        {{ reporting_period_start('started_at', 'month') }} as period_date
    from timings
),

-- The periods the pre-hook left are kept; every other period is computed.
outdated_timings as (
    {{ funnel_rows_of_unstored_periods('timings_by_period') }}
),

distributions as (
    select
        funnel_name,
        period_type,
        period_date,
        time_span,
        step_number,
        count(*) as persons,
        avg(duration_seconds) as average_seconds,
        {{ percentile('duration_seconds', 0.5) }} as p50_seconds,
        {{ percentile('duration_seconds', 0.9) }} as p90_seconds,
        {{ percentile('duration_seconds', 0.95) }} as p95_seconds,
        min(duration_seconds) as min_seconds,
        max(duration_seconds) as max_seconds,
        sum(case when duration_seconds <= 60 then 1 else 0 end) as persons_within_1_minute,
        sum(case when duration_seconds > 60 and duration_seconds <= 600 then 1 else 0 end) as persons_1_to_10_minutes,
        sum(case when duration_seconds > 600 and duration_seconds <= 3600 then 1 else 0 end)
            as persons_10_to_60_minutes,
        sum(case when duration_seconds > 3600 and duration_seconds <= 86400 then 1 else 0 end) as persons_1_to_24_hours,
        sum(case when duration_seconds > 86400 and duration_seconds <= 604800 then 1 else 0 end) as persons_1_to_7_days,
        sum(case when duration_seconds > 604800 then 1 else 0 end) as persons_over_7_days
    from outdated_timings
    group by
        funnel_name,
        period_type,
        period_date,
        time_span,
        step_number
),

final as (
    select
        {{ uuid_from_columns(['distributions.funnel_name', 'distributions.period_type', 'distributions.period_date',
            'distributions.time_span', 'distributions.step_number']) }} as id,
        distributions.funnel_name,
        distributions.period_type,
        distributions.time_span,
        funnel_definitions.step_name,
        cast(distributions.step_number as {{ dbt.type_int() }}) as step_number,
        cast(distributions.persons as {{ dbt.type_bigint() }}) as persons,
        {{ round_decimal('distributions.average_seconds', 2) }} as average_seconds,
        {{ round_decimal('distributions.p50_seconds', 2) }} as p50_seconds,
        {{ round_decimal('distributions.p90_seconds', 2) }} as p90_seconds,
        {{ round_decimal('distributions.p95_seconds', 2) }} as p95_seconds,
        {{ round_decimal('distributions.min_seconds', 2) }} as min_seconds,
        {{ round_decimal('distributions.max_seconds', 2) }} as max_seconds,
        cast(distributions.persons_within_1_minute as {{ dbt.type_bigint() }}) as persons_within_1_minute,
        cast(distributions.persons_1_to_10_minutes as {{ dbt.type_bigint() }}) as persons_1_to_10_minutes,
        cast(distributions.persons_10_to_60_minutes as {{ dbt.type_bigint() }}) as persons_10_to_60_minutes,
        cast(distributions.persons_1_to_24_hours as {{ dbt.type_bigint() }}) as persons_1_to_24_hours,
        cast(distributions.persons_1_to_7_days as {{ dbt.type_bigint() }}) as persons_1_to_7_days,
        cast(distributions.persons_over_7_days as {{ dbt.type_bigint() }}) as persons_over_7_days,
        distributions.period_date
    from distributions
    left join funnel_definitions
        on
            distributions.funnel_name = funnel_definitions.funnel_name
            and distributions.step_number = funnel_definitions.step_number
)

select * from final
