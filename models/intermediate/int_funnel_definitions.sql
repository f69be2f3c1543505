-- The funnel definitions as the funnel models use them: one row per funnel step, with the step's event
-- name in the form events are matched on (trimmed, lower case: staging writes event names and
-- conversion types that way), its property filter (step_filter, trimmed; grammar in
-- macros/funnel_filters.sql), the funnel's order type and its conversion window in seconds.
--
-- A funnel's window is either conversion_window_interval + conversion_window_unit or
-- conversion_window_hours, never both; funnel-level columns (order_type and the window) may be
-- written on every step or on some of them, and must not disagree. An invalid row stops the build
-- with a message naming the funnel, the step and the field (macros/fail_query.sql).
{%- set seed_columns = [] -%}
{%- if execute -%}
    {%- set seed_columns = adapter.get_columns_in_relation(ref('funnel_definitions'))
        | map(attribute='name') | map('lower') | list -%}
{%- endif -%}
{#- Columns a definition file may leave out (a file written before they existed keeps working). -#}
{%- set optional_columns = {} -%}
{%- for column_name, column_type in [
    ('order_type', dbt.type_string()),
    ('conversion_window_unit', dbt.type_string()),
    ('conversion_window_interval', dbt.type_numeric()),
    ('conversion_window_hours', dbt.type_numeric()),
    ('step_filter', dbt.type_string()),
    ('breakdown_attribution', dbt.type_string()),
] -%}
    {%- if not seed_columns or column_name in seed_columns -%}
        {%- set column_sql = 'cast(funnel_definitions.' ~ column_name ~ ' as ' ~ column_type ~ ')' -%}
        {%- do optional_columns.update({column_name: column_sql}) -%}
    {%- else -%}
        {%- do optional_columns.update({column_name: 'cast(null as ' ~ column_type ~ ')'}) -%}
    {%- endif -%}
{%- endfor %}

with funnel_definitions as (
    select * from {{ ref('funnel_definitions') }}
),

written as (
    select
        funnel_definitions.funnel_name,
        funnel_definitions.step_name,
        {{ clean_lower('funnel_definitions.event_name') }} as event_name,
        {{ clean_string(optional_columns['step_filter']) }} as step_filter,
        {{ clean_lower(optional_columns['order_type']) }} as order_type,
        {{ clean_lower(optional_columns['conversion_window_unit']) }} as conversion_window_unit,
        {{ clean_lower(optional_columns['breakdown_attribution']) }} as breakdown_attribution,
        cast(funnel_definitions.step_number as {{ dbt.type_int() }}) as step_number,
        {{ optional_columns['conversion_window_interval'] }} as conversion_window_interval,
        {{ optional_columns['conversion_window_hours'] }} as conversion_window_hours
    from funnel_definitions
),

-- The funnel-level values, from whichever rows give them, and how many different values the rows give.
funnel_values as (
    select
        funnel_name,
        max(order_type) as order_type,
        max(conversion_window_unit) as conversion_window_unit,
        max(conversion_window_interval) as conversion_window_interval,
        max(conversion_window_hours) as conversion_window_hours,
        max(breakdown_attribution) as breakdown_attribution,
        count(*) as step_count,
        count(distinct order_type) as order_types,
        count(distinct breakdown_attribution) as breakdown_attributions,
        count(distinct conversion_window_unit) as window_units,
        count(distinct conversion_window_interval) as window_intervals,
        count(distinct conversion_window_hours) as window_hours
    from written
    group by funnel_name
),

-- Seconds per unit; a month is 31 days (as PostHog). Plural spellings are accepted.
funnel_windows as (
    select
        *,
        case
            when conversion_window_hours is not null then conversion_window_hours * 3600
            else conversion_window_interval * case
                when conversion_window_unit in ('second', 'seconds') then 1
                when conversion_window_unit in ('minute', 'minutes') then 60
                when conversion_window_unit in ('hour', 'hours') then 3600
                when conversion_window_unit in ('day', 'days') then 86400
                when conversion_window_unit in ('week', 'weeks') then 604800
                when conversion_window_unit in ('month', 'months') then 2678400
            end
        end as window_seconds
    from funnel_values
),

-- Each step filter's conditions, parsed and checked (macros/funnel_filters.sql), and its first problem.
filter_problems as (
    select
        filter_text,
        min(problem) as problem
    from ({{ funnel_filter_clauses('select distinct step_filter as filter_text from written') }}) as clauses
    where problem is not null
    group by filter_text
),

-- Unordered funnels tell steps apart by event name: steps sharing one must share their filter too.
unordered_filters as (
    select
        funnel_name,
        event_name,
        count(distinct coalesce(step_filter, '')) as step_filters
    from written
    group by
        funnel_name,
        event_name
),

checked as (
    select
        written.funnel_name,
        written.step_name,
        written.event_name,
        written.step_filter,
        coalesce(funnel_windows.order_type, 'ordered') as order_type,
        coalesce(funnel_windows.breakdown_attribution, 'first_touch') as breakdown_attribution,
        written.step_number,
        funnel_windows.conversion_window_interval,
        funnel_windows.conversion_window_unit,
        funnel_windows.window_seconds,
        case
            when written.event_name is null
                then 'event_name is empty'
            when funnel_windows.order_types > 1
                then 'the steps give different order_type values; give one per funnel'
            when
                funnel_windows.window_units > 1
                or funnel_windows.window_intervals > 1
                or funnel_windows.window_hours > 1
                then 'the steps give different conversion windows; give one per funnel'
            when
                funnel_windows.conversion_window_hours is not null
                and (
                    funnel_windows.conversion_window_interval is not null
                    or funnel_windows.conversion_window_unit is not null
                )
                then
                    'both conversion_window_hours and conversion_window_interval/conversion_window_unit are given;'
                    || ' give one of them'
            when
                funnel_windows.conversion_window_hours is null
                and funnel_windows.conversion_window_interval is null
                and funnel_windows.conversion_window_unit is null
                then
                    'no conversion window; give conversion_window_interval and conversion_window_unit'
                    || ' (or conversion_window_hours)'
            when funnel_windows.conversion_window_hours is null and funnel_windows.conversion_window_interval is null
                then 'conversion_window_unit without conversion_window_interval'
            when funnel_windows.conversion_window_hours is null and funnel_windows.conversion_window_unit is null
                then 'conversion_window_interval without conversion_window_unit'
            when funnel_windows.window_seconds is null
                then
                    'conversion_window_unit ''' || funnel_windows.conversion_window_unit
                    || ''' is not one of second, minute, hour, day, week, month'
            when round(funnel_windows.window_seconds) <= 0
                then 'the conversion window must be positive (at least one second)'
            when coalesce(funnel_windows.order_type, 'ordered') not in ('ordered', 'strict', 'unordered')
                then 'order_type ''' || funnel_windows.order_type || ''' is not one of ordered, strict, unordered'
            when funnel_windows.breakdown_attributions > 1
                then 'the steps give different breakdown_attribution values; give one per funnel'
            when
                not (
                    coalesce(funnel_windows.breakdown_attribution, 'first_touch') in ('first_touch', 'last_touch')
                    or case
                        when {{ regexp_full_match('funnel_windows.breakdown_attribution', 'step_[1-9][0-9]{0,3}') }}
                            then
                                cast(substr(funnel_windows.breakdown_attribution, 6) as {{ dbt.type_int() }})
                                <= funnel_windows.step_count
                        else false
                    end
                )
                then
                    'breakdown_attribution ''' || funnel_windows.breakdown_attribution
                    || ''' is not one of first_touch, last_touch, step_1 … step_'
                    || cast(funnel_windows.step_count as {{ dbt.type_string() }})
            when
                funnel_windows.order_type = 'unordered'
                and coalesce(funnel_windows.breakdown_attribution, 'first_touch')
                not in ('first_touch', 'last_touch', 'step_1')
                then 'an unordered funnel breaks down by first_touch, last_touch or step_1 only'
            when filter_problems.problem is not null
                then 'step_filter: ' || filter_problems.problem
            when funnel_windows.order_type = 'unordered' and unordered_filters.step_filters > 1
                then 'steps of an unordered funnel with the same event_name must have the same step_filter'
        end as problem
    from written
    inner join funnel_windows
        on written.funnel_name = funnel_windows.funnel_name
    left join filter_problems
        on written.step_filter = filter_problems.filter_text
    left join unordered_filters
        on
            written.funnel_name = unordered_filters.funnel_name
            and written.event_name = unordered_filters.event_name
),

-- A funnel with problems reports its first invalid step (whichever row the engine reads first).
reported as (
    select
        *,
        min(case when problem is not null then step_number end) over (partition by funnel_name) as problem_step,
        first_value(problem) over (
            partition by funnel_name
            order by case when problem is null then 1 else 0 end, step_number
        ) as first_problem
    from checked
),

final as (
    select
        funnel_name,
        -- Unordered funnels name their steps by how many distinct steps are done, as PostHog does.
        case
            when order_type = 'unordered' and step_number = 1 then 'Completed 1 step'
            when order_type = 'unordered'
                then 'Completed ' || cast(step_number as {{ dbt.type_string() }}) || ' steps'
            else step_name
        end as step_name,
        event_name,
        step_filter,
        order_type,
        breakdown_attribution,
        conversion_window_unit,
        step_number,
        cast(count(*) over (partition by funnel_name) as {{ dbt.type_int() }}) as total_steps,
        conversion_window_interval,
        -- Whole seconds: the same number on every engine.
        cast(round(window_seconds) as {{ dbt.type_bigint() }}) as window_seconds,
        cast(round(window_seconds) / 3600.0 as {{ dbt.type_numeric() }}) as conversion_window_hours
    from reported
    where
        problem is null
        or {{ fail_query(
            "'funnel_definitions.csv, funnel ' || funnel_name || ' step ' || cast(problem_step as "
            ~ dbt.type_string() ~ ") || ': ' || first_problem"
        ) }} is null
)

select * from final
