-- Along a funnel's steps, the persons reaching a step never exceed those reaching the step before it,
-- in every group of funnel_stats (period, campaign). Returns the offending step rows. On an incremental
-- build it checks the periods the build's runs rewrote since the last tested build (every group of a
-- touched period_date, and the all_time groups: test_scope_funnel_periods, macros/test_scope.sql).
with funnel_stats as (
    select * from {{ ref('funnel_stats') }}
    where {{ test_scope_keys('period_date', test_scope_funnel_periods()) }}
),

with_previous as (
    select
        funnel_name,
        period_type,
        period_date,
        campaign_scope,
        campaign_id,
        step_number,
        persons_reached,
        lag(persons_reached) over (
            partition by funnel_name, period_type, period_date, campaign_scope, campaign_id
            order by step_number
        ) as previous_persons_reached
    from funnel_stats
)

select *
from with_previous
where persons_reached > previous_persons_reached
