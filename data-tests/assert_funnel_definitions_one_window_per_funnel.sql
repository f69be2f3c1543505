-- The conversion window is a property of the funnel: every step of a funnel carries the same one.
-- Returns the funnels with more than one window.
with funnel_definitions as (
    select * from {{ ref('funnel_definitions') }}
)

select
    funnel_name,
    count(distinct conversion_window_hours) as n_windows
from funnel_definitions
group by funnel_name
having count(distinct conversion_window_hours) > 1
