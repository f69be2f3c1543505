-- One row per landed behavioural event, typed and tidied; no rows dropped (dedup happens downstream,
-- incrementally, in int_events_deduplicated).
with source as (
    select * from {{ source('raw', 'events') }}
),

renamed as (
    select
        {{ clean_string('event_id') }} as event_id,
        {{ clean_string('person_id') }} as person_id,
        {{ clean_lower('event_name') }} as event_name,
        {{ clean_lower('source') }} as source,
        {{ clean_string('campaign_id') }} as campaign_id,
        {{ clean_string('ad_set_id') }} as ad_set_id,
        {{ clean_string('ad_id') }} as ad_id,
        {{ clean_lower('utm_source') }} as utm_source,
        {{ clean_lower('utm_medium') }} as utm_medium,
        {{ clean_string('utm_campaign') }} as utm_campaign,
        {{ clean_string('utm_content') }} as utm_content,
        {{ clean_string('utm_term') }} as utm_term,
        {{ clean_string('fbclid') }} as fbclid,
        {{ clean_lower('device_type') }} as device_type,
        {{ clean_string('browser') }} as browser,
        {{ clean_string('os') }} as os,
        {{ country_code('country') }} as country,
        {{ clean_string('city') }} as city,
        {{ clean_string('event_source_url') }} as event_source_url,
        {{ clean_string('client_ip_address') }} as client_ip_address,
        {{ clean_string('client_user_agent') }} as client_user_agent,
        {{ clean_string('fbp') }} as fbp,
        {{ clean_string('fbc') }} as fbc,
        {{ clean_string('properties') }} as properties,
        event_time,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at
    from source
)

select * from renamed
