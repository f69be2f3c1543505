{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='conversion_key',
        on_schema_change='fail',
    )
}}

-- One row per landed conversion copy (as stg_conversions), with the clear identity fields (PII)
-- replaced by their Meta-normalized SHA-256 hashes. Nothing downstream of this model sees PII.
-- Incremental: the copies of every (conversion_type, event_id) with a copy loaded since the last
-- run are recomputed (a new copy can bring the country the others lack) and replace that key's rows.
{%- set long_ago = "cast('1970-01-01 00:00:00+00' as " ~ dbt.type_timestamp() ~ ")" %}

with staged_conversions as (
    select * from {{ ref('stg_conversions') }}
),

{% if is_incremental() %}
    changed_keys as (
        select distinct
            conversion_type,
            event_id
        from staged_conversions
        where _loaded_at >= (
            select coalesce(max(previous_run._loaded_at), {{ long_ago }})
            from {{ this }} as previous_run
        )
    ),

    conversions as (
        select staged_conversions.*
        from staged_conversions
        inner join changed_keys
            on
                staged_conversions.conversion_type = changed_keys.conversion_type
                and staged_conversions.event_id = changed_keys.event_id
    ),
{% else %}
    conversions as (
        select * from staged_conversions
    ),
{% endif %}

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

country_rules as (
    -- The conversion country's codes, looked up once per copy for the phone and ZIP rules.
    select
        *,
        {{ meta_normalize_country('matching_country') }} as matching_country_code,
        {{ meta_calling_code('matching_country') }} as matching_calling_code,
        {{ meta_trunk_prefix('matching_country') }} as matching_trunk_prefix
    from with_matching_country
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
        {{ meta_hashed_user_data('country', 'country') }} as country_sha256,
        {{ meta_hashed_user_data('external_id', 'external_id') }} as external_id_sha256,
        value_cents,
        conversion_time,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at
    from country_rules
)

select * from hashed
