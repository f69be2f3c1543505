-- One row per adjustment (refund, chargeback or restatement of a reported conversion), typed and
-- trimmed. A producer may send an adjustment again (a corrected amount, a retried export): the latest
-- load of an adjustment_id wins, as for ad spend restatements. conversion_key names the conversion's
-- (conversion_type, event_id) exactly as the conversion facts do.
with source as (
    select * from {{ source('raw', 'adjustments') }}
),

renamed as (
    select
        {{ clean_string('adjustment_id') }} as adjustment_id,
        {{ clean_string('conversion_event_id') }} as conversion_event_id,
        {{ clean_lower('conversion_type') }} as conversion_type,
        {{ clean_lower('adjustment_type') }} as adjustment_type,
        amount_cents,
        upper({{ clean_string('currency') }}) as currency,
        adjusted_at,
        {{ clean_string('reason') }} as reason,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at
    from source
),

ranked as (
    select
        *,
        {{ latest_load_rank(['adjustment_id']) }} as load_rank
    from renamed
),

final as (
    select
        adjustment_id,
        {{ uuid_from_columns(['conversion_type', 'conversion_event_id']) }} as conversion_key,
        conversion_event_id,
        conversion_type,
        adjustment_type,
        amount_cents,
        currency,
        adjusted_at,
        reason,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at
    from ranked
    where load_rank = 1
)

select * from final
