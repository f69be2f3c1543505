{#-
    Incremental state and outdated periods of the funnel aggregates funnel_time_to_convert and
    funnel_stats_breakdown, which work like funnel_stats (macros/funnel_stats_outdated_periods.sql): they read
    conversion_funnel and conversion_funnel_step, so their `loaded_through` is funnel_stats_loaded_through(),
    and a pre-hook deletes every row of each period (funnel × period_type × period_date) that may have changed
    since the last run; the model then computes the periods that have persons and no rows, each whole.
-#}

{#- Fingerprint of funnel_time_to_convert: the funnel marts' fingerprints (a funnel definition change
    recomputes them whole), the funnel definitions (step names) and var reporting_timezone (the periods). -#}
{% macro funnel_time_to_convert_fingerprint() -%}
    {{ funnel_stats_fingerprint() }}
{%- endmacro %}

{#- Fingerprint of funnel_stats_breakdown: funnel_stats' inputs, plus what its values depend on besides the
    data: each funnel's breakdown_attribution (not part of the definition hashes) and the channel mapping
    (in attribution_settings_hash). -#}
{% macro funnel_stats_breakdown_fingerprint() -%}
    md5(
        {{ funnel_stats_fingerprint() }}
        || '|' || coalesce((
            select {{ dbt.listagg(
                measure=dbt.concat(['attributions.funnel_name', "'='", 'attributions.breakdown_attribution']),
                delimiter_text="','",
                order_by_clause='order by attributions.funnel_name',
            ) }}
            from (
                select distinct
                    funnel_definitions.funnel_name,
                    funnel_definitions.breakdown_attribution
                from {{ ref('int_funnel_definitions') }} as funnel_definitions
            ) as attributions
        ), '')
        || '|' || ({{ attribution_settings_hash() }})
    )
{%- endmacro %}

{#-
    Pre-hook condition over a funnel aggregate's rows: true for every row of a period whose persons may have
    changed since the last run, and for every row when the state (`fingerprint`) is not current. A day of a
    funnel may have changed when
      * a person whose matching changed since (int_funnel_steps_matched.person_loaded_at after
        `loaded_through`) now starts in it, not excluded: a row entered or changed;
      * one of its counts differs from the stored one: a person left it (its start moved, or it became
        excluded), which the new rows cannot show. `current_day_counts` and `stored_day_counts` are queries
        with the columns funnel_name, period_date (the reporting day), count_key and persons: the counts the
        model would write for its daily rows now, and those it wrote.
    A week, a month and the funnel's all_time total may have changed exactly when one of their days did.
-#}
{% macro funnel_aggregate_outdated_periods(fingerprint, current_day_counts, stored_day_counts) -%}
    {%- if not incremental_state_is_current_now(fingerprint) -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {{ funnel_stats_period_key('funnel_name', 'period_type', 'period_date') }} in (
        with changed_persons as (
            select matched_rows.person_id
            from {{ ref('int_funnel_steps_matched') }} as matched_rows
            where matched_rows.person_loaded_at > {{ incremental_state_value('loaded_through') }}
        ),

        changed_days as (
            select
                funnels.funnel_name,
                {{ reporting_period_start('funnels.started_at', 'day') }} as period_date
            from {{ ref('conversion_funnel') }} as funnels
            where
                not funnels.is_excluded
                and funnels.person_id in (select changed_persons.person_id from changed_persons)
        ),

        current_counts as (
            {{ current_day_counts }}
        ),

        stored_counts as (
            {{ stored_day_counts }}
        ),

        recounted_days as (
            select
                coalesce(current_counts.funnel_name, stored_counts.funnel_name) as funnel_name,
                coalesce(current_counts.period_date, stored_counts.period_date) as period_date
            from current_counts
            full outer join stored_counts
                on
                    current_counts.funnel_name = stored_counts.funnel_name
                    and current_counts.period_date = stored_counts.period_date
                    and current_counts.count_key = stored_counts.count_key
            where current_counts.persons is distinct from stored_counts.persons
        ),

        {{ funnel_outdated_period_keys() }}
    )
{%- endmacro %}

{#- The rows of `rows` (a CTE with funnel_name, period_type, period_date) an incremental run computes: those
    of the periods with no rows left in the model's own table after the pre-hook (`where` picks one row kind
    every stored period has; all_time has no period_date and is compared as a placeholder). A full build
    computes every row. A select, for the body of a CTE. -#}
{% macro funnel_rows_of_unstored_periods(rows, where='true') -%}
    {%- if is_incremental() %}
        select {{ rows }}.*
        from {{ rows }}
        left join (
            select distinct
                stored.funnel_name,
                stored.period_type,
                stored.period_date
            from {{ this }} as stored
            where {{ where }}
        ) as stored_periods
            on
                {{ rows }}.funnel_name = stored_periods.funnel_name
                and {{ rows }}.period_type = stored_periods.period_type
                and coalesce({{ rows }}.period_date, cast('1900-01-01' as date))
                = coalesce(stored_periods.period_date, cast('1900-01-01' as date))
        where stored_periods.funnel_name is null
    {%- else %}
        select * from {{ rows }}
    {%- endif %}
{%- endmacro %}

{#- funnel_time_to_convert's daily counts now (persons per funnel × reporting day × time span), as
    funnel_aggregate_outdated_periods reads them: the same timings as the model. -#}
{% macro funnel_time_to_convert_day_counts() -%}
    select
        funnels.funnel_name,
        {{ reporting_period_start('funnels.started_at', 'day') }} as period_date,
        'time_to_convert' as count_key,
        count(*) as persons
    from {{ ref('conversion_funnel') }} as funnels
    where
        not funnels.is_excluded
        and funnels.is_converted
    group by
        funnels.funnel_name,
        {{ reporting_period_start('funnels.started_at', 'day') }}
    union all
    select
        funnels.funnel_name,
        {{ reporting_period_start('funnels.started_at', 'day') }} as period_date,
        'step ' || cast(funnel_steps.step_number as {{ dbt.type_string() }}) as count_key,
        count(*) as persons
    from {{ ref('conversion_funnel_step') }} as funnel_steps
    inner join {{ ref('conversion_funnel') }} as funnels
        on
            funnel_steps.person_id = funnels.person_id
            and funnel_steps.funnel_name = funnels.funnel_name
    where
        not funnels.is_excluded
        and funnel_steps.step_number >= 2
        and funnel_steps.seconds_from_previous_step > 0
    group by
        funnels.funnel_name,
        {{ reporting_period_start('funnels.started_at', 'day') }},
        funnel_steps.step_number
{%- endmacro %}

{#- The same counts as stored in funnel_time_to_convert's daily rows (`relation`). -#}
{% macro funnel_time_to_convert_stored_day_counts(relation) -%}
    select
        stored.funnel_name,
        stored.period_date,
        case
            when stored.time_span = 'time_to_convert' then 'time_to_convert'
            else 'step ' || cast(stored.step_number as {{ dbt.type_string() }})
        end as count_key,
        stored.persons
    from {{ relation }} as stored
    where stored.period_type = 'daily'
{%- endmacro %}

{#- funnel_stats_breakdown's daily counts now: persons entered per funnel × reporting day (excluded persons
    left out), and as stored (each breakdown type counts every person once: the campaign type's step 1). -#}
{% macro funnel_stats_breakdown_day_counts() -%}
    select
        funnels.funnel_name,
        {{ reporting_period_start('funnels.started_at', 'day') }} as period_date,
        'entered' as count_key,
        count(*) as persons
    from {{ ref('conversion_funnel') }} as funnels
    where not funnels.is_excluded
    group by
        funnels.funnel_name,
        {{ reporting_period_start('funnels.started_at', 'day') }}
{%- endmacro %}

{% macro funnel_stats_breakdown_stored_day_counts(relation) -%}
    select
        stored.funnel_name,
        stored.period_date,
        'entered' as count_key,
        sum(stored.persons_entered) as persons
    from {{ relation }} as stored
    where
        stored.period_type = 'daily'
        and stored.breakdown_type = 'campaign'
        and stored.step_number = 1
    group by
        stored.funnel_name,
        stored.period_date
{%- endmacro %}
