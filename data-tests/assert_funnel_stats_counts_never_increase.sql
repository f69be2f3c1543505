-- Along a funnel's steps, the persons reaching a step never exceed those reaching the step before it,
-- in every group of funnel_stats (period, campaign). Returns the offending step rows.
with funnel_stats as (
    select * from {{ ref('funnel_stats') }}
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
