{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='id',
        on_schema_change='fail',
        pre_hook="{% if is_incremental() %}{{ delete_rows_where(this, funnel_stats_outdated_periods()) }}{% endif %}",
        post_hook="{{ record_incremental_state(funnel_stats_loaded_through(), funnel_stats_fingerprint()) }}",
    )
}}

-- depends_on: {{ ref('int_funnel_steps_matched') }}
-- depends_on: {{ ref('int_funnel_exclusions') }}

-- Funnel statistics (the feature document's getFunnelStats): one row per funnel × period_type × period_date ×
-- campaign_scope × campaign_id × step (see the docs block funnel_stats_grain). Persons, not attempts:
-- each person's winning attempt from conversion_funnel, placed in the period of its started_at (in the
-- reporting time zone) and under the campaign of its step-1 event.
--
-- Incremental, by period: the pre-hook deletes every row of each period (funnel × period_type ×
-- period_date) that may have changed since the last run (macros/funnel_stats_outdated_periods.sql: the
-- days where a changed person now starts or whose count of persons changed, their weeks and months, and
-- the funnel's all_time total), or every row when the funnel definitions, the funnel marts' own
-- recomputation or var reporting_timezone changed. This model then computes the periods that have
-- persons and no rows: each of them whole, every campaign and step, so no row of a period survives from
-- an earlier run beside new ones. The clock changes nothing here (is_open is not read).
with funnel_definitions as (
    select * from {{ ref('int_funnel_definitions') }}
),

-- A person excluded from a funnel (an exclusion step) has left it: not counted anywhere here.
funnels as (
    select * from {{ ref('conversion_funnel') }}
    where not is_excluded
),

funnel_steps as (
    select * from {{ ref('conversion_funnel_step') }}
),

-- Each person's funnel row under every period it belongs to …
all_person_periods as (
    select
        person_id,
        funnel_name,
        campaign_id,
        'all_time' as period_type,
        cast(null as date) as period_date
    from funnels
    union all
    select
        person_id,
        funnel_name,
        campaign_id,
        'daily' as period_type,
        {{ reporting_period_start('started_at', 'day') }} as period_date
    from funnels
    union all
    select
        person_id,
        funnel_name,
        campaign_id,
        'weekly' as period_type,
        {{ reporting_period_start('started_at', 'week') }} as period_date
    from funnels
    union all
    select
        person_id,
        funnel_name,
        campaign_id,
        'monthly' as period_type,
        {{ reporting_period_start('started_at', 'month') }} as period_date
    from funnels
),

{% if is_incremental() -%}
    -- The periods left after the pre-hook (every one has its 'all' row of step 1) …
    stored_periods as (
        select
            stored.funnel_name,
            stored.period_type,
            stored.period_date
        from {{ this }} as stored
        where
            stored.campaign_scope = 'all'
            and stored.step_number = 1
    ),

    -- … and the persons of every other period (all_time has no period_date: compared as a placeholder).
    person_periods as (
        select all_person_periods.*
        from all_person_periods
        left join stored_periods
            on
                all_person_periods.funnel_name = stored_periods.funnel_name
                and all_person_periods.period_type = stored_periods.period_type
                and coalesce(all_person_periods.period_date, cast('1900-01-01' as date))
                = coalesce(stored_periods.period_date, cast('1900-01-01' as date))
        where stored_periods.funnel_name is null
    ),
{%- else -%}
    person_periods as (
        select * from all_person_periods
    ),
{%- endif %}

-- … and under both campaign scopes: all campaigns together, and its own entry campaign.
person_groups as (
    select
        person_id,
        funnel_name,
        period_type,
        period_date,
        'all' as campaign_scope,
        cast(null as {{ dbt.type_string() }}) as campaign_id
    from person_periods
    union all
    select
        person_id,
        funnel_name,
        period_type,
        period_date,
        'campaign' as campaign_scope,
        campaign_id
    from person_periods
),

step_measures as (
    select
        person_groups.funnel_name,
        person_groups.period_type,
        person_groups.period_date,
        person_groups.campaign_scope,
        person_groups.campaign_id,
        funnel_steps.step_number,
        count(*) as persons_reached,
        avg(funnel_steps.seconds_from_previous_step) as average_seconds_from_previous_step,
        {{ median('funnel_steps.seconds_from_previous_step') }} as median_seconds_from_previous_step,
        avg(funnel_steps.seconds_from_start) as average_seconds_from_start,
        {{ median('funnel_steps.seconds_from_start') }} as median_seconds_from_start
    from person_groups
    inner join funnel_steps
        on
            person_groups.person_id = funnel_steps.person_id
            and person_groups.funnel_name = funnel_steps.funnel_name
    group by
        person_groups.funnel_name,
        person_groups.period_type,
        person_groups.period_date,
        person_groups.campaign_scope,
        person_groups.campaign_id,
        funnel_steps.step_number
),

group_measures as (
    select
        person_groups.funnel_name,
        person_groups.period_type,
        person_groups.period_date,
        person_groups.campaign_scope,
        person_groups.campaign_id,
        max(funnels.total_steps) as total_steps,
        count(*) as persons_entered,
        sum(case when funnels.is_converted then 1 else 0 end) as persons_converted,
        avg(case when funnels.is_converted then funnels.total_time_seconds end) as average_time_to_convert_seconds,
        {{ median('case when funnels.is_converted then funnels.total_time_seconds end') }}
            as median_time_to_convert_seconds
    from person_groups
    inner join funnels
        on
            person_groups.person_id = funnels.person_id
            and person_groups.funnel_name = funnels.funnel_name
    group by
        person_groups.funnel_name,
        person_groups.period_type,
        person_groups.period_date,
        person_groups.campaign_scope,
        person_groups.campaign_id
),

-- Every group gets every step of its funnel, reached by somebody or not. period_date (all_time) and
-- campaign_id (scope 'all', entries without a campaign) can be null: compared null-safe.
measured_steps as (
    select
        group_measures.funnel_name,
        group_measures.period_type,
        group_measures.period_date,
        group_measures.campaign_scope,
        group_measures.campaign_id,
        funnel_definitions.step_number,
        funnel_definitions.step_name,
        -- An unordered funnel's step i is "i distinct steps done", whichever event did it.
        case when funnel_definitions.order_type <> 'unordered' then funnel_definitions.event_name end as event_name,
        group_measures.total_steps,
        group_measures.persons_entered,
        group_measures.persons_converted,
        group_measures.average_time_to_convert_seconds,
        group_measures.median_time_to_convert_seconds,
        coalesce(step_measures.persons_reached, 0) as persons_reached,
        step_measures.average_seconds_from_previous_step,
        step_measures.median_seconds_from_previous_step,
        step_measures.average_seconds_from_start,
        step_measures.median_seconds_from_start
    from group_measures
    inner join funnel_definitions
        on group_measures.funnel_name = funnel_definitions.funnel_name
    left join step_measures
        on
            group_measures.funnel_name = step_measures.funnel_name
            and group_measures.period_type = step_measures.period_type
            and group_measures.period_date is not distinct from step_measures.period_date
            and group_measures.campaign_scope = step_measures.campaign_scope
            and group_measures.campaign_id is not distinct from step_measures.campaign_id
            and funnel_definitions.step_number = step_measures.step_number
),

with_previous as (
    select
        *,
        coalesce(
            lag(persons_reached) over (
                partition by funnel_name, period_type, period_date, campaign_scope, campaign_id
                order by step_number
            ),
            persons_reached
        ) as persons_reached_previous_step
    from measured_steps
),

final as (
    select
        {{ uuid_from_columns([
            'funnel_name', 'period_type', 'period_date', 'campaign_scope', 'campaign_id', 'step_number',
        ]) }} as id,
        funnel_name,
        period_type,
        campaign_scope,
        campaign_id,
        step_name,
        event_name,
        cast(step_number as {{ dbt.type_int() }}) as step_number,
        cast(total_steps as {{ dbt.type_int() }}) as total_steps,
        cast(persons_entered as {{ dbt.type_bigint() }}) as persons_entered,
        cast(persons_reached as {{ dbt.type_bigint() }}) as persons_reached,
        cast(persons_reached_previous_step as {{ dbt.type_bigint() }}) as persons_reached_previous_step,
        cast(persons_reached_previous_step - persons_reached as {{ dbt.type_bigint() }}) as drop_off_count,
        {{ percentage('persons_reached_previous_step - persons_reached', 'persons_reached_previous_step') }}
            as drop_off_rate,
        {{ percentage('persons_reached', 'persons_entered') }} as conversion_rate_from_start,
        {{ percentage('persons_reached', 'persons_reached_previous_step') }} as conversion_rate_from_previous_step,
        cast(persons_converted as {{ dbt.type_bigint() }}) as persons_converted,
        {{ percentage('persons_converted', 'persons_entered') }} as conversion_rate,
        {{ round_decimal('average_seconds_from_previous_step', 2) }} as average_seconds_from_previous_step,
        {{ round_decimal('median_seconds_from_previous_step', 2) }} as median_seconds_from_previous_step,
        {{ round_decimal('average_seconds_from_start', 2) }} as average_seconds_from_start,
        {{ round_decimal('median_seconds_from_start', 2) }} as median_seconds_from_start,
        {{ round_decimal('average_time_to_convert_seconds', 2) }} as average_time_to_convert_seconds,
        {{ round_decimal('median_time_to_convert_seconds', 2) }} as median_time_to_convert_seconds,
        period_date
    from with_previous
)

select * from final
