-- Warns (never fails) with the number of adjustments whose conversion has not landed;
-- rpt_unmatched_adjustments lists them with the reason. They apply once their conversion lands.
{{ config(severity='warn') }}

select
    adjustment_id,
    reason
from {{ ref('rpt_unmatched_adjustments') }}
