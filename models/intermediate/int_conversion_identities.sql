{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='conversion_key',
        on_schema_change='fail',
    )
}}

-- One row per landed conversion copy (as stg_conversions), with the clear identity fields (PII)
-- replaced by their Meta-normalized SHA-256 hashes. Nothing downstream of this model sees PII:
-- of a value that could not be normalized only the field's name is kept (dropped_user_data_*).
-- Incremental: the copies of every (conversion_type, event_id) with a copy loaded since the last
-- run are recomputed (a new copy can bring the country the others lack) and replace that key's rows.
{#- When each Meta field's clear value was there (the hash being null then means it was dropped). #}
{%- set present = {
    'em': 'hashed.email is not null',
    'ph': 'hashed.phone is not null',
    'fn': 'hashed.first_name is not null',
    'ln': 'hashed.last_name is not null',
    'db': 'hashed.date_of_birth is not null',
    'ge': 'hashed.gender is not null',
    'ct': 'hashed.city is not null',
    'st': 'hashed.state is not null',
    'zp': 'hashed.zip is not null',
    'country': 'hashed.country is not null',
    'external_id': 'hashed.external_id is not null',
} %}

with staged_conversions as (
    select * from {{ ref('stg_conversions') }}
),

conversions as (
    {{ rows_of_changed_keys('staged_conversions', ['conversion_type', 'event_id'], '_loaded_at') }}
),

key_countries as (
    -- A country reported by a copy of each (conversion_type, event_id): copies of one conversion
    -- agree on it in practice; if they do not, the alphabetically first (deterministic).
    select
        conversion_type,
        event_id,
        min(country) as key_country
    from conversions
    group by conversion_type, event_id
),

with_matching_country as (
    -- The conversion's country for phone and ZIP normalization: this copy's, else the first one
    -- another copy of the same conversion reported (a pixel copy often has no country).
    select
        conversions.*,
        coalesce(conversions.country, key_countries.key_country) as matching_country
    from conversions
    left join key_countries
        on
            conversions.conversion_type = key_countries.conversion_type
            and conversions.event_id = key_countries.event_id
),

normalized_country as (
    select
        *,
        {{ meta_normalize_country('matching_country') }} as matching_country_code
    from with_matching_country
),

country_rules as (
    -- The conversion country's codes, looked up once per copy for the phone and ZIP rules.
    select
        *,
        {{ meta_calling_code_of_alpha2('matching_country_code') }} as matching_calling_code,
        {{ meta_trunk_prefix_of_alpha2('matching_country_code') }} as matching_trunk_prefix
    from normalized_country
),

hashed as (
    select
        {{ uuid_from_columns(['conversion_type', 'event_id']) }} as conversion_key,
        event_id,
        person_id,
        campaign_id,
        ad_set_id,
        ad_id,
        order_id,
        meta_pixel_id,
        conversion_type,
        conversion_source,
        currency,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        fbclid,
        fbc,
        fbp,
        client_ip_address,
        client_user_agent,
        event_source_url,
        device_type,
        browser,
        os,
        country,
        city,
        properties,
        {{ meta_hashed_user_data('em', 'email') }} as em_sha256,
        {{ meta_hash_normalized(
            'phone',
            meta_phone_with_calling_code('phone', 'matching_calling_code', 'matching_trunk_prefix')
        ) }} as ph_sha256,
        {{ meta_hashed_user_data('fn', 'first_name') }} as fn_sha256,
        {{ meta_hashed_user_data('ln', 'last_name') }} as ln_sha256,
        {{ meta_hashed_user_data('db', 'date_of_birth') }} as db_sha256,
        {{ meta_hashed_user_data('ge', 'gender') }} as ge_sha256,
        {{ meta_hashed_user_data('ct', 'city') }} as ct_sha256,
        {{ meta_hashed_user_data('st', 'state') }} as st_sha256,
        {{ meta_hash_normalized('zip', meta_zip_for_country('zip', 'matching_country_code')) }} as zp_sha256,
        -- This copy's own country, normalized above when it is the matching country (not again).
        {{ meta_hash_normalized(
            'country', 'case when country is not null then matching_country_code end'
        ) }} as country_sha256,
        {{ meta_hashed_user_data('external_id', 'external_id') }} as external_id_sha256,
        value_cents,
        conversion_time,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at,
        -- The clear values, only to tell which could not be normalized (not selected below).
        email,
        phone,
        first_name,
        last_name,
        date_of_birth,
        gender,
        state,
        zip,
        external_id
    from country_rules
),

final as (
    select
        hashed.conversion_key,
        hashed.event_id,
        hashed.person_id,
        hashed.campaign_id,
        hashed.ad_set_id,
        hashed.ad_id,
        hashed.order_id,
        hashed.meta_pixel_id,
        hashed.conversion_type,
        hashed.conversion_source,
        hashed.currency,
        hashed.utm_source,
        hashed.utm_medium,
        hashed.utm_campaign,
        hashed.utm_content,
        hashed.utm_term,
        hashed.fbclid,
        hashed.fbc,
        hashed.fbp,
        hashed.client_ip_address,
        hashed.client_user_agent,
        hashed.event_source_url,
        hashed.device_type,
        hashed.browser,
        hashed.os,
        hashed.country,
        hashed.city,
        hashed.properties,
        hashed.em_sha256,
        hashed.ph_sha256,
        hashed.fn_sha256,
        hashed.ln_sha256,
        hashed.db_sha256,
        hashed.ge_sha256,
        hashed.ct_sha256,
        hashed.st_sha256,
        hashed.zp_sha256,
        hashed.country_sha256,
        hashed.external_id_sha256,
        {{ meta_dropped_user_data_names(present, 'hashed.') }} as dropped_user_data_field_names,
        hashed.value_cents,
        {{ meta_dropped_user_data_count(present, 'hashed.') }} as dropped_user_data_fields,
        hashed.conversion_time,
        hashed._load_id,
        hashed._source_file,
        hashed._source_row,
        hashed._loaded_at
    from hashed
)

select * from final
