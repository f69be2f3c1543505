-- seeds/channel_mapping.csv must end in a row that matches everything (`%`, `%`, has_click_id empty),
-- tried last, so every touchpoint and conversion gets a channel from the seed. Returns one row if not.
with channel_mapping as (
    select * from {{ ref('channel_mapping') }}
),

last_match_order as (
    select max(match_order) as match_order
    from channel_mapping
),

last_row as (
    select
        channel_mapping.utm_source_pattern,
        channel_mapping.utm_medium_pattern,
        channel_mapping.has_click_id
    from channel_mapping
    inner join last_match_order
        on channel_mapping.match_order = last_match_order.match_order
),

catch_all as (
    select count(*) as catch_all_rows
    from last_row
    where
        utm_source_pattern = '%'
        and utm_medium_pattern = '%'
        and has_click_id is null
)

select catch_all_rows
from catch_all
where catch_all_rows = 0
