-- One row per landed behavioural event, typed and tidied; no rows dropped (dedup happens downstream,
-- incrementally, in int_events_deduplicated).
with source as (
    select * from {{ source('raw', 'events') }}
),

renamed as (
    select
        {{ clean_string('event_id') }} as event_id,
        {{ clean_string('person_id') }} as person_id,
        -- Absent from a warehouse ingested before anonymous visitors could land: read as not given.
        {{
            staging_optional_column(source('raw', 'events'), 'anonymous_id', clean_string('anonymous_id'))
        }} as anonymous_id,
        {{ clean_lower('event_name') }} as event_name,
        {{ clean_lower('source') }} as source,
        {{ staging_attribution_columns() }}
        {{ staging_device_columns() }}
        {{ staging_client_columns() }}
        {{ staging_consent_columns(source('raw', 'events')) }}
        {{ staging_optional_column(source('raw', 'events'), 'state', clean_string('state')) }} as state,
        event_time,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at
    from source
)

select * from renamed
