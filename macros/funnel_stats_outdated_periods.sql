{#-
    The incremental state of funnel_stats and the periods it must recompute.

    funnel_stats reads conversion_funnel and conversion_funnel_step, so its rows are as up to date as
    theirs: its `loaded_through` is the earlier of the two recorded by those models, and its
    fingerprint combines their fingerprints (a funnel definition change recomputes them whole) with
    the funnel definitions it reads itself (step names) and var `reporting_timezone` (the periods).
-#}

{% macro funnel_stats_loaded_through() -%}
    (
        select
            case
                when inputs.funnels_through is null or inputs.steps_through is null then null
                when inputs.funnels_through < inputs.steps_through then inputs.funnels_through
                else inputs.steps_through
            end
        from (
            select
                {{ incremental_state_value('loaded_through', ref('conversion_funnel').identifier) }} as funnels_through,
                {{ incremental_state_value('loaded_through', ref('conversion_funnel_step').identifier) }} as steps_through
        ) as inputs
    )
{%- endmacro %}

{% macro funnel_stats_fingerprint() -%}
    md5(
        {{ incremental_state_value('fingerprint', ref('conversion_funnel').identifier) }}
        || '|' || {{ incremental_state_value('fingerprint', ref('conversion_funnel_step').identifier) }}
        || '|' || {{ funnel_definitions_fingerprint() }}
        || '|' || '{{ var("reporting_timezone", "UTC") }}'
    )
{%- endmacro %}

{#-
    Pre-hook condition over funnel_stats' rows: true for every row of a period (funnel × period_type ×
    period_date) whose persons may have changed since the last run, and for every row when the state
    is not current. A day of a funnel may have changed when
      * a person whose matching changed since (int_funnel_steps_matched.person_loaded_at after
        `loaded_through`) now starts in it: a row entered or changed;
      * its count of persons (conversion_funnel rows starting that day) differs from the stored
        persons_entered: a row left it (its start moved to another day, or the row is gone), which
        the new rows cannot show. A day that lost a row and gained a changed one is caught above.
    A week, a month and the funnel's all_time total may have changed exactly when one of their days did.
-#}
{% macro funnel_stats_outdated_periods() -%}
    {%- if not incremental_state_is_current_now(funnel_stats_fingerprint()) -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {{ funnel_stats_period_key('funnel_name', 'period_type', 'period_date') }} in (
        -- Excluded persons are not counted in funnel_stats.
        with funnels as (
            select * from {{ ref('conversion_funnel') }}
            where not is_excluded
        ),

        changed_persons as (
            select matched_rows.person_id
            from {{ ref('int_funnel_steps_matched') }} as matched_rows
            where matched_rows.person_loaded_at > {{ incremental_state_value('loaded_through') }}
        ),

        changed_days as (
            select
                funnels.funnel_name,
                {{ reporting_period_start('funnels.started_at', 'day') }} as period_date
            from funnels
            where funnels.person_id in (select changed_persons.person_id from changed_persons)
        ),

        entered_by_day as (
            select
                funnels.funnel_name,
                {{ reporting_period_start('funnels.started_at', 'day') }} as period_date,
                count(*) as persons_entered
            from funnels
            group by
                funnels.funnel_name,
                {{ reporting_period_start('funnels.started_at', 'day') }}
        ),

        stored_by_day as (
            select
                stored.funnel_name,
                stored.period_date,
                stored.persons_entered
            from {{ this }} as stored
            where
                stored.period_type = 'daily'
                and stored.campaign_scope = 'all'
                and stored.step_number = 1
        ),

        recounted_days as (
            select
                coalesce(entered_by_day.funnel_name, stored_by_day.funnel_name) as funnel_name,
                coalesce(entered_by_day.period_date, stored_by_day.period_date) as period_date
            from entered_by_day
            full outer join stored_by_day
                on
                    entered_by_day.funnel_name = stored_by_day.funnel_name
                    and entered_by_day.period_date = stored_by_day.period_date
            where entered_by_day.persons_entered is distinct from stored_by_day.persons_entered
        ),

        {{ funnel_outdated_period_keys() }}
    )
{%- endmacro %}

{#- One text per funnel × period_type × period_date (period_date is null for all_time). -#}
{% macro funnel_stats_period_key(funnel_name, period_type, period_date) -%}
    {{ funnel_name }} || '|' || {{ period_type }} || '|' || coalesce(cast({{ period_date }} as {{ dbt.type_string() }}), '')
{%- endmacro %}

{#- The end of an outdated-periods query of a funnel aggregate (funnel_stats, funnel_time_to_convert,
    funnel_stats_breakdown): the CTEs `changed_days` and `recounted_days` (funnel_name, period_date) before
    it name the outdated days; a day's week, month and the funnel's all_time total are outdated with it.
    Selects one funnel_stats_period_key per outdated period. -#}
{% macro funnel_outdated_period_keys() -%}
outdated_days as (
    select changed_days.funnel_name, changed_days.period_date from changed_days
    union
    select recounted_days.funnel_name, recounted_days.period_date from recounted_days
),

outdated_periods as (
    select outdated_days.funnel_name, 'daily' as period_type, outdated_days.period_date
    from outdated_days
    union
    select
        outdated_days.funnel_name,
        'weekly' as period_type,
        cast({{ dbt.date_trunc('week', 'outdated_days.period_date') }} as date) as period_date
    from outdated_days
    union
    select
        outdated_days.funnel_name,
        'monthly' as period_type,
        cast({{ dbt.date_trunc('month', 'outdated_days.period_date') }} as date) as period_date
    from outdated_days
    union
    select outdated_days.funnel_name, 'all_time' as period_type, cast(null as date) as period_date
    from outdated_days
)

select
    {{ funnel_stats_period_key(
        'outdated_periods.funnel_name', 'outdated_periods.period_type', 'outdated_periods.period_date'
    ) }}
from outdated_periods
{%- endmacro %}
