-- Warns (never fails) with the number of identity observations that link an anonymous id to another
-- person than its first observation did; rpt_identity_conflicts lists them with file, row and reason.
-- They change nothing: the first person keeps the anonymous id.
{{ config(severity='warn') }}

select
    anonymous_id,
    conflicting_person_id
from {{ ref('rpt_identity_conflicts') }}
