-- Nothing is lost or double counted by the dedup: the copies of all conversions add up to the
-- landed conversion rows. Fails with both totals.
with raw_conversions as (
    select count(*) as raw_rows
    from {{ source('raw', 'conversions') }}
),

conversion_copies as (
    select coalesce(sum(copies_count), 0) as copies
    from {{ ref('conversion_event') }}
),

final as (
    select
        raw_conversions.raw_rows,
        conversion_copies.copies
    from raw_conversions
    cross join conversion_copies
    where raw_conversions.raw_rows <> conversion_copies.copies
)

select * from final
