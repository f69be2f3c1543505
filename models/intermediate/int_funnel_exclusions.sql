-- The funnel exclusion steps as the funnel models use them: one row per exclusion, its event name in the
-- form events are matched on (trimmed, lower case). An exclusion covers the intervals between steps
-- from_step → from_step + 1, …, to_step - 1 → to_step (step numbers as in the funnel definitions). An
-- exclusion may have a property filter (exclusion_filter, same grammar as step filters: macros/funnel_filters.sql). An
-- invalid row stops the build with a message naming the funnel, the event and the field: an unknown
-- funnel, an empty event name, from_step < 1, to_step <= from_step or beyond the funnel's last step, and
-- for an unordered funnel anything but the whole funnel (1 → last step).
{%- set has_filter_column = true -%}
{%- if execute -%}
    {%- set has_filter_column = 'exclusion_filter' in (adapter.get_columns_in_relation(ref('funnel_exclusions'))
        | map(attribute='name') | map('lower') | list) -%}
{%- endif %}

with funnel_exclusions as (
    select * from {{ ref('funnel_exclusions') }}
),

funnel_definitions as (
    select * from {{ ref('int_funnel_definitions') }}
),

funnels as (
    select
        funnel_name,
        max(order_type) as order_type,
        max(total_steps) as total_steps
    from funnel_definitions
    group by funnel_name
),

written as (
    select
        funnel_exclusions.funnel_name,
        {{ clean_lower('funnel_exclusions.event_name') }} as event_name,
        cast(funnel_exclusions.from_step as {{ dbt.type_int() }}) as from_step,
        cast(funnel_exclusions.to_step as {{ dbt.type_int() }}) as to_step,
        {% if has_filter_column -%}
            {{ clean_string('cast(funnel_exclusions.exclusion_filter as ' ~ dbt.type_string() ~ ')') }}
        {%- else -%}
            cast(null as {{ dbt.type_string() }})
        {%- endif %} as exclusion_filter
    from funnel_exclusions
),

-- Each exclusion filter's conditions, parsed and checked (macros/funnel_filters.sql), and its first problem.
filter_problems as (
    select
        filter_text,
        min(problem) as problem
    from ({{ funnel_filter_clauses('select distinct exclusion_filter as filter_text from written') }}) as clauses
    where problem is not null
    group by filter_text
),

checked as (
    select
        written.funnel_name,
        written.event_name,
        written.from_step,
        written.to_step,
        written.exclusion_filter,
        case
            when funnels.funnel_name is null
                then 'funnel_name is not a funnel of the funnel definitions'
            when written.event_name is null
                then 'event_name is empty'
            when written.from_step is null or written.to_step is null
                then 'from_step and to_step are required'
            when written.from_step < 1
                then 'from_step must be 1 or more'
            when written.to_step <= written.from_step
                then 'to_step must be greater than from_step'
            when written.to_step > funnels.total_steps
                then 'to_step is beyond the last step of the funnel'
            when funnels.order_type = 'unordered' and (written.from_step <> 1 or written.to_step <> funnels.total_steps)
                then 'an unordered funnel can only exclude over the whole funnel (from_step 1, to_step its last step)'
            when filter_problems.problem is not null
                then 'exclusion_filter: ' || filter_problems.problem
        end as problem
    from written
    left join funnels
        on written.funnel_name = funnels.funnel_name
    left join filter_problems
        on written.exclusion_filter = filter_problems.filter_text
),

final as (
    select
        funnel_name,
        event_name,
        from_step,
        to_step,
        exclusion_filter
    from checked
    where
        problem is null
        or {{ fail_query(
            "'funnel_exclusions.csv, funnel ' || coalesce(funnel_name, '') || ' event '"
            ~ " || coalesce(event_name, '') || ': ' || problem"
        ) }} is null
)

select * from final
