{{ config(materialized='view') }}

-- Adjustments (refunds, chargebacks, restatements) whose conversion is not in the warehouse, with the
-- reason (reported by rpt_unmatched_adjustments). They change nothing until their conversion lands; the next
-- run after it applies them (int_conversions_valued revalues every key with an adjustment loaded since,
-- and an adjustment loaded before its conversion is found when the conversion's key is revalued).
with adjustments as (
    select * from {{ ref('stg_adjustments') }}
),

conversions as (
    select * from {{ ref('int_conversions_deduplicated') }}
),

keys_of_same_event as (
    -- Keys with the adjustment's event_id under another conversion_type: a likely wrong type.
    select distinct
        conversion_type,
        event_id
    from conversions
),

unmatched as (
    select
        adjustments.adjustment_id,
        adjustments.conversion_key,
        adjustments.conversion_event_id,
        adjustments.conversion_type,
        adjustments.adjustment_type,
        adjustments.amount_cents,
        adjustments.currency,
        adjustments.adjusted_at,
        adjustments._source_file,
        adjustments._source_row,
        adjustments._loaded_at,
        case
            when
                exists (
                    select 1
                    from keys_of_same_event
                    where keys_of_same_event.event_id = adjustments.conversion_event_id
                )
                then concat(
                    'no ',
                    adjustments.conversion_type,
                    ' conversion with event_id ',
                    adjustments.conversion_event_id,
                    ' (a conversion of another type has this event_id: check conversion_type)'
                )
            else concat(
                'no ', adjustments.conversion_type, ' conversion with event_id ', adjustments.conversion_event_id,
                ' has landed'
            )
        end as reason
    from adjustments
    where not exists (
        select 1
        from conversions
        where conversions.conversion_key = adjustments.conversion_key
    )
)

select * from unmatched
