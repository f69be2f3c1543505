-- Every funnel's steps are numbered 1, 2, …, n: no gap, no duplicate, nothing below 1.
-- Returns the funnels that break this.
with funnel_definitions as (
    select * from {{ ref('funnel_definitions') }}
),

per_funnel as (
    select
        funnel_name,
        count(*) as n_steps,
        count(distinct step_number) as n_distinct_steps,
        min(step_number) as first_step,
        max(step_number) as last_step
    from funnel_definitions
    group by funnel_name
)

select *
from per_funnel
where
    first_step <> 1
    or last_step <> n_steps
    or n_distinct_steps <> n_steps
