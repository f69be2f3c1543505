-- Warns (never fails) with the number of conversions that have a positive value but no exchange
-- rate to value it in the reporting currency; rpt_unvalued_conversions lists them with the reason.
{{ config(severity='warn') }}

select
    id,
    reason
from {{ ref('rpt_unvalued_conversions') }}
