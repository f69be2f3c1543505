-- Adjustments whose conversion has not landed, with the landing file, row and reason: the one place they
-- are listed (int_adjustments_unmatched finds them). They apply on the first run after their conversion
-- lands.
with unmatched as (
    select * from {{ ref('int_adjustments_unmatched') }}
)

select * from unmatched
