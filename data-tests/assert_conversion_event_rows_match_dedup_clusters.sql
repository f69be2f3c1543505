-- conversion_event has exactly one row per dedup cluster of the landed conversions, counted here
-- independently of the models: one per distinct (conversion_type, event_id), plus one per extra
-- cluster of a key whose copies span more than the window. Extra clusters are found by stepping
-- from anchor to anchor (the next anchor is the earliest copy more than the window after the
-- current one) rather than from copy to copy as int_conversions_deduplicated does.
-- Rejected rows never reach raw, so raw is the population. Fails with the two counts.
-- On an incremental build both counts are taken over the keys with a copy loaded since the last build
-- that tested every row (test_scope, macros/test_scope.sql): only those keys' clusters can have changed.
-- The stepping subquery reads only the copies of spanning keys (under 0.5 % of copies): over all
-- copies, Spark decorrelates it into a join of every anchor time with every copy (924 anchors x
-- 643k copies at 10M events: more than 20 minutes and gigabytes of spill, not finished).
{%- set window_hours = var('dedup_window_hours') %}

with recursive landed_copies as (
    select
        {{ clean_lower('conversion_type') }} as conversion_type,
        {{ clean_string('event_id') }} as event_id,
        conversion_time,
        _loaded_at
    from {{ source('raw', 'conversions') }}
),

touched_keys as (
    select distinct
        conversion_type,
        event_id
    from landed_copies
    where {{ test_scope('_loaded_at') }}
),

raw_copies as (
    select
        landed_copies.conversion_type,
        landed_copies.event_id,
        landed_copies.conversion_time
    from landed_copies
    inner join touched_keys
        on
            landed_copies.conversion_type = touched_keys.conversion_type
            and landed_copies.event_id = touched_keys.event_id
),

key_spans as (
    select
        conversion_type,
        event_id,
        min(conversion_time) as first_conversion_time,
        max(conversion_time) as last_conversion_time
    from raw_copies
    group by conversion_type, event_id
),

spanning_keys as (
    select
        conversion_type,
        event_id,
        first_conversion_time
    from key_spans
    where last_conversion_time > {{ dbt.dateadd('hour', window_hours, 'first_conversion_time') }}
),

spanning_copies as (
    select
        raw_copies.conversion_type,
        raw_copies.event_id,
        raw_copies.conversion_time
    from raw_copies
    inner join spanning_keys
        on
            raw_copies.conversion_type = spanning_keys.conversion_type
            and raw_copies.event_id = spanning_keys.event_id
),

anchors as (
    select
        conversion_type,
        event_id,
        first_conversion_time as anchor_time
    from spanning_keys

    union all

    select
        anchors.conversion_type,
        anchors.event_id,
        (
            select min(later_copies.conversion_time)
            from spanning_copies as later_copies
            where
                later_copies.conversion_type = anchors.conversion_type
                and later_copies.event_id = anchors.event_id
                and later_copies.conversion_time > {{ dbt.dateadd('hour', window_hours, 'anchors.anchor_time') }}
        ) as anchor_time
    from anchors
    where anchors.anchor_time is not null
),

expected as (
    select
        (select count(*) from key_spans)
        + (select count(anchors.anchor_time) from anchors)
        - (select count(*) from spanning_keys) as expected_conversions
),

actual as (
    select count(*) as actual_conversions
    from {{ ref('conversion_event') }} as conversions
    inner join touched_keys
        on
            conversions.conversion_type = touched_keys.conversion_type
            and conversions.event_id = touched_keys.event_id
),

final as (
    select
        expected.expected_conversions,
        actual.actual_conversions
    from expected
    cross join actual
    where expected.expected_conversions <> actual.actual_conversions
)

select * from final
