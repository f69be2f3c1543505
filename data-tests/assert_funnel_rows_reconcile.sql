-- The funnel marts agree with each other:
--   * every conversion_funnel row has exactly completed_steps rows in conversion_funnel_step, 1 … n;
--   * funnel_stats' grand total (all_time × all campaigns) counts every conversion_funnel row not
--     excluded once per funnel, reached and converted persons included.
-- Returns one row per disagreement.
-- On an incremental build the first check reads the funnel rows whose content changed since the last
-- build that tested every row (`updated_at`: a funnel's steps change only with its winning attempt,
-- which moves it; test_scope, macros/test_scope.sql), and their steps. The grand totals are counts
-- per funnel: they are always compared whole.
with funnels as (
    select * from {{ ref('conversion_funnel') }}
),

touched_funnels as (
    select * from funnels
    where {{ test_scope('updated_at') }}
),

funnel_steps as (
    select * from {{ ref('conversion_funnel_step') }}
    where conversion_funnel_id in (select touched_funnels.id from touched_funnels)
),

funnel_stats as (
    select * from {{ ref('funnel_stats') }}
),

steps_per_funnel as (
    select
        conversion_funnel_id,
        count(*) as n_steps,
        max(step_number) as last_step_number
    from funnel_steps
    group by conversion_funnel_id
),

step_mismatches as (
    select
        'steps' as check_name,
        touched_funnels.funnel_name,
        touched_funnels.person_id
    from touched_funnels
    left join steps_per_funnel
        on touched_funnels.id = steps_per_funnel.conversion_funnel_id
    where
        steps_per_funnel.n_steps is null
        or steps_per_funnel.n_steps <> touched_funnels.completed_steps
        or steps_per_funnel.last_step_number <> touched_funnels.completed_steps
),

funnel_totals as (
    select
        funnel_name,
        count(*) as persons_entered,
        sum(case when is_converted then 1 else 0 end) as persons_converted
    from funnels
    where not is_excluded
    group by funnel_name
),

grand_totals as (
    select
        funnel_name,
        persons_entered,
        persons_converted
    from funnel_stats
    where
        period_type = 'all_time'
        and campaign_scope = 'all'
        and step_number = 1
),

total_mismatches as (
    select
        'totals' as check_name,
        coalesce(funnel_totals.funnel_name, grand_totals.funnel_name) as funnel_name,
        cast(null as {{ dbt.type_string() }}) as person_id
    from funnel_totals
    full outer join grand_totals
        on funnel_totals.funnel_name = grand_totals.funnel_name
    where
        funnel_totals.funnel_name is null
        or grand_totals.funnel_name is null
        or funnel_totals.persons_entered <> grand_totals.persons_entered
        or funnel_totals.persons_converted <> grand_totals.persons_converted
)

select * from step_mismatches
union all
select * from total_mismatches
