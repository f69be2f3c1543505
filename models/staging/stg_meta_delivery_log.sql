-- Every delivery attempt of a conversion to Meta's Conversions API, as `convopt export-meta` logged it:
-- one row per conversion per request, or per status recorded without a request (expired, skipped, not
-- sendable). A view like every staging model, so rows an export appends after the build are read at
-- once. The table exists before any export: the on-run-start hook creates it when it is missing
-- (macros/prepare_meta_delivery_log.sql).
with source as (
    select * from {{ source('raw_meta', 'meta_delivery_log') }}
),

renamed as (
    select
        conversion_id,
        event_id,
        pixel_id,
        batch_id,
        run_id,
        status,
        fbtrace_id,
        error_type,
        error_message,
        test_event_code,
        attempt,
        events_received,
        error_code,
        error_subcode,
        http_status,
        is_retryable,
        requested_at,
        recorded_at,
        as_of as window_reference_at
    from source
)

select * from renamed
