-- One row per landed conversion report (pixel, capi and webhook copies are all kept here; the 48 h
-- dedup rule lives in the conversion facts). Identity fields are PII: trimmed only, never shown in marts.
with source as (
    select * from {{ source('raw', 'conversions') }}
),

renamed as (
    select
        {{ clean_string('event_id') }} as event_id,
        {{ clean_string('person_id') }} as person_id,
        -- Absent from a warehouse ingested before anonymous visitors could land: read as not given.
        {{
            staging_optional_column(source('raw', 'conversions'), 'anonymous_id', clean_string('anonymous_id'))
        }} as anonymous_id,
        {{ clean_lower('conversion_type') }} as conversion_type,
        {{ clean_lower('conversion_source') }} as conversion_source,
        upper({{ clean_string('currency') }}) as currency,
        {{ staging_attribution_columns() }}
        {{ staging_device_columns() }}
        {{ clean_string('meta_pixel_id') }} as meta_pixel_id,
        {{ clean_string('order_id') }} as order_id,
        {{ clean_string('email') }} as email,
        {{ clean_string('phone') }} as phone,
        {{ clean_string('first_name') }} as first_name,
        {{ clean_string('last_name') }} as last_name,
        {{ clean_string('date_of_birth') }} as date_of_birth,
        {{ clean_string('gender') }} as gender,
        {{ clean_string('state') }} as state,
        {{ clean_string('zip') }} as zip,
        {{ clean_string('external_id') }} as external_id,
        {{ staging_client_columns() }}
        {{ staging_consent_columns(source('raw', 'conversions')) }}
        -- A conversion without a value (signups, renders) is worth 0 in its currency.
        coalesce(value_cents, 0) as value_cents,
        conversion_time,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at
    from source
)

select * from renamed
