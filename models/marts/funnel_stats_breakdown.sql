{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='id',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}{{ delete_rows_where(this, funnel_aggregate_outdated_periods(
            funnel_stats_breakdown_fingerprint(), funnel_stats_breakdown_day_counts(), funnel_stats_breakdown_stored_day_counts(this)
        )) }}{% endif %}",
        post_hook="{{ record_incremental_state(funnel_stats_loaded_through(), funnel_stats_breakdown_fingerprint()) }}",
    )
}}

-- depends_on: {{ ref('int_funnel_steps_matched') }}
-- depends_on: {{ ref('int_funnel_exclusions') }}

-- Funnel step counts broken down by a property of the person's funnel events (PostHog's breakdowns): one
-- row per funnel × period_type × period_date × breakdown_type × breakdown_value × step. breakdown_type is
-- one of campaign (campaign_id), channel (the marketing channel, seeds/channel_mapping.csv), device_type,
-- country and utm_source. Which event gives a person's value is the funnel's breakdown_attribution (in
-- the funnel definitions): `first_touch` (default: the earliest step event of the person's chosen attempt
-- with a value), `last_touch` (the latest such event) or `step_N` (the event of step N; persons who did
-- not reach step N have none). A person without a value is counted under '(none)'. Each person counts once
-- per breakdown type, so the values of one type add up to funnel_stats' persons. Persons excluded from a
-- funnel are left out; a person is placed in the period of their started_at in the reporting time zone.
--
-- Incremental, by period, as funnel_stats: the pre-hook deletes every row of each period (funnel × period_type
-- × period_date) that may have changed since the last run (macros/funnel_aggregate_periods.sql: the days where
-- a changed person now starts or whose count of persons changed, their weeks and months, and the funnel's
-- all_time rows), or every row when the funnel definitions or their breakdown_attribution, the channel
-- mapping, the funnel marts' own recomputation or var reporting_timezone changed. A person's values depend
-- only on the events of their chosen attempt, which change only when the person's matching does.
--
-- Only the daily rows are computed from persons, and only those of the days the pre-hook left without rows
-- (every person of such a day, each whole: every breakdown type, value and step). The counts are sums of
-- persons and each person starts on one day, so a week's, a month's and the all_time rows are the sums of
-- their days' rows: the periods left without rows are summed from the daily rows, those kept from earlier
-- runs and those computed now. A run that changed nothing computes no person; one that changed a few days
-- reads only the persons of those days, whatever the all_time rows they move.
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

events as (
    select * from {{ ref('int_events_deduplicated') }}
),

conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

breakdown_types as (
    select 'campaign' as breakdown_type
    union all
    select 'channel' as breakdown_type
    union all
    select 'device_type' as breakdown_type
    union all
    select 'country' as breakdown_type
    union all
    select 'utm_source' as breakdown_type
),

funnel_attributions as (
    select distinct
        funnel_name,
        total_steps,
        breakdown_attribution
    from funnel_definitions
),

-- Each person's reporting day; on an incremental run only the persons of the days left without rows
-- (every stored day has rows of the campaign breakdown's step 1).
person_days as (
    select
        funnels.person_id,
        funnels.funnel_name,
        funnels.completed_steps,
        'daily' as period_type,
        {{ reporting_period_start('funnels.started_at', 'day') }} as period_date
    from funnels
),

day_persons as (
    {{ funnel_rows_of_unstored_periods(
        'person_days', "stored.period_type = 'daily' and stored.breakdown_type = 'campaign' and stored.step_number = 1"
    ) }}
),

-- Each counted step event of those persons with the properties a breakdown reads.
step_properties as (
    select
        funnel_steps.id as step_id,
        funnel_steps.person_id,
        funnel_steps.funnel_name,
        funnel_steps.step_number,
        funnel_steps.campaign_id,
        funnel_steps.utm_source,
        funnel_steps.utm_medium,
        coalesce(events.fbclid, conversions.fbclid) as fbclid,
        coalesce(events.device_type, conversions.device_type) as device_type,
        coalesce(events.country, conversions.country) as country
    from funnel_steps
    inner join day_persons
        on
            funnel_steps.person_id = day_persons.person_id
            and funnel_steps.funnel_name = day_persons.funnel_name
    left join events
        on
            funnel_steps.event_source = 'event'
            and funnel_steps.event_id = events.event_id
    left join conversions
        on
            funnel_steps.event_source = 'conversion'
            and funnel_steps.conversion_id = cast(conversions.id as {{ dbt.type_string() }})
),

step_channels as (
    {{ attribution_channel_lookup('step_properties', 'step_id') }}
),

step_values as (
    select
        step_properties.person_id,
        step_properties.funnel_name,
        step_properties.step_number,
        breakdown_types.breakdown_type,
        case breakdown_types.breakdown_type
            when 'campaign' then step_properties.campaign_id
            when 'channel' then step_channels.channel
            when 'device_type' then step_properties.device_type
            when 'country' then step_properties.country
            when 'utm_source' then step_properties.utm_source
        end as breakdown_value
    from step_properties
    left join step_channels
        on step_properties.step_id = step_channels.step_id
    cross join breakdown_types
),

-- The person's step events with the funnel's attribution, and their order for it: from the first step
-- (first_touch) or from the last (last_touch).
touch_values as (
    select
        step_values.*,
        funnel_attributions.breakdown_attribution,
        case
            when funnel_attributions.breakdown_attribution = 'last_touch' then -step_values.step_number
            else step_values.step_number
        end as touch_order
    from step_values
    inner join funnel_attributions
        on step_values.funnel_name = funnel_attributions.funnel_name
),

-- The value each person counts under: first_touch and last_touch, the first step event with a value in
-- touch order; step_N, the value of the event of step N (none when the person did not reach it). An
-- aggregate, not a window ranking the events: over millions of tiny partitions DuckDB's windows took a
-- third of the model's CPU (BENCHMARKS.md).
person_values as (
    select
        day_persons.person_id,
        day_persons.funnel_name,
        day_persons.completed_steps,
        day_persons.period_date,
        breakdown_types.breakdown_type,
        coalesce(
            {{ first_non_null(
                'touch_values.breakdown_value', 'touch_values.touch_order',
                "touch_values.breakdown_attribution in ('first_touch', 'last_touch')"
            ) }},
            max(
                case
                    when
                        touch_values.breakdown_attribution
                        = 'step_' || cast(touch_values.step_number as {{ dbt.type_string() }})
                        then touch_values.breakdown_value
                end
            ),
            '(none)'
        ) as breakdown_value
    from day_persons
    cross join breakdown_types
    left join touch_values
        on
            day_persons.person_id = touch_values.person_id
            and day_persons.funnel_name = touch_values.funnel_name
            and breakdown_types.breakdown_type = touch_values.breakdown_type
    group by
        day_persons.person_id,
        day_persons.funnel_name,
        day_persons.completed_steps,
        day_persons.period_date,
        breakdown_types.breakdown_type
),

computed_days as (
    select
        person_values.funnel_name,
        person_values.period_date,
        person_values.breakdown_type,
        person_values.breakdown_value,
        funnel_definitions.step_number,
        count(*) as persons_entered,
        sum(case when person_values.completed_steps >= funnel_definitions.step_number then 1 else 0 end)
            as persons_reached,
        sum(case when person_values.completed_steps >= funnel_definitions.step_number - 1 then 1 else 0 end)
            as persons_reached_previous_step
    from person_values
    inner join funnel_definitions
        on person_values.funnel_name = funnel_definitions.funnel_name
    group by
        person_values.funnel_name,
        person_values.period_date,
        person_values.breakdown_type,
        person_values.breakdown_value,
        funnel_definitions.step_number
),

-- Every day's rows: those computed now and, on an incremental run, those kept (step 1 stores no
-- persons_reached_previous_step: every person entered has reached step 0).
all_days as (
    select * from computed_days
    {%- if is_incremental() %}
        union all
        select
            stored.funnel_name,
            stored.period_date,
            stored.breakdown_type,
            stored.breakdown_value,
            stored.step_number,
            stored.persons_entered,
            stored.persons_reached,
            coalesce(stored.persons_reached_previous_step, stored.persons_entered) as persons_reached_previous_step
        from {{ this }} as stored
        where stored.period_type = 'daily'
    {%- endif %}
),

summed_periods as (
    -- Weeks, months and all_time: sums of the days (each person starts on one day).
    {%- for period_type, grain in [('weekly', 'week'), ('monthly', 'month'), ('all_time', none)] %}
        {%- set period_date = none if grain is none
            else 'cast(' ~ dbt.date_trunc(grain, 'all_days.period_date') ~ ' as date)' %}
        select
            all_days.funnel_name,
            '{{ period_type }}' as period_type,
            {{ period_date or 'cast(null as date)' }} as period_date,
            all_days.breakdown_type,
            all_days.breakdown_value,
            all_days.step_number,
            sum(all_days.persons_entered) as persons_entered,
            sum(all_days.persons_reached) as persons_reached,
            sum(all_days.persons_reached_previous_step) as persons_reached_previous_step
        from all_days
        group by
            all_days.funnel_name,
            {% if period_date -%} {{ period_date }}, {%- endif %}
            all_days.breakdown_type,
            all_days.breakdown_value,
            all_days.step_number
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

-- The weeks, months and all_time rows the pre-hook left are kept; every other one is summed.
computed_periods as (
    {{ funnel_rows_of_unstored_periods(
        'summed_periods', "stored.breakdown_type = 'campaign' and stored.step_number = 1"
    ) }}
),

step_counts as (
    select
        computed_days.funnel_name,
        'daily' as period_type,
        computed_days.period_date,
        computed_days.breakdown_type,
        computed_days.breakdown_value,
        computed_days.step_number,
        computed_days.persons_entered,
        computed_days.persons_reached,
        computed_days.persons_reached_previous_step
    from computed_days
    union all
    select
        computed_periods.funnel_name,
        computed_periods.period_type,
        computed_periods.period_date,
        computed_periods.breakdown_type,
        computed_periods.breakdown_value,
        computed_periods.step_number,
        computed_periods.persons_entered,
        computed_periods.persons_reached,
        computed_periods.persons_reached_previous_step
    from computed_periods
),

final as (
    select
        {{ uuid_from_columns([
            'step_counts.funnel_name', 'step_counts.period_type', 'step_counts.period_date',
            'step_counts.breakdown_type', 'step_counts.breakdown_value', 'step_counts.step_number'
        ]) }} as id,
        step_counts.funnel_name,
        step_counts.period_type,
        step_counts.breakdown_type,
        step_counts.breakdown_value,
        funnel_attributions.breakdown_attribution,
        funnel_definitions.step_name,
        cast(step_counts.step_number as {{ dbt.type_int() }}) as step_number,
        cast(funnel_definitions.total_steps as {{ dbt.type_int() }}) as total_steps,
        cast(step_counts.persons_entered as {{ dbt.type_bigint() }}) as persons_entered,
        cast(step_counts.persons_reached as {{ dbt.type_bigint() }}) as persons_reached,
        cast(
            case when step_counts.step_number > 1 then step_counts.persons_reached_previous_step end
            as {{ dbt.type_bigint() }}
        ) as persons_reached_previous_step,
        {{ percentage('step_counts.persons_reached', 'step_counts.persons_entered') }} as conversion_rate_from_start,
        case
            when step_counts.step_number > 1
                then {{ percentage('step_counts.persons_reached', 'step_counts.persons_reached_previous_step') }}
        end as conversion_rate_from_previous_step,
        step_counts.period_date
    from step_counts
    inner join funnel_definitions
        on
            step_counts.funnel_name = funnel_definitions.funnel_name
            and step_counts.step_number = funnel_definitions.step_number
    inner join funnel_attributions
        on step_counts.funnel_name = funnel_attributions.funnel_name
)

select * from final
