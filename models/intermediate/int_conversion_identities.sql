{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='conversion_key',
        on_schema_change='append_new_columns',
    )
}}

-- One row per landed conversion copy (as stg_conversions), with the clear identity fields (PII)
-- replaced by their Meta-normalized SHA-256 hashes. Nothing downstream of this model sees PII:
-- of a value that could not be normalized only the field's name is kept (dropped_user_data_*).
-- Incremental: the copies of every (conversion_type, event_id) with a copy loaded since the last
-- run are recomputed (a new copy can bring the country the others lack) and replace that key's rows.
{#-
    Fields whose hash depends on the value alone: each distinct value is normalized and hashed once
    (in `<field>_hashes`) and joined back, instead of once per copy (a person's values repeat across
    conversions and copies; names, cities, dates and genders take few values).
-#}
{%- set value_fields = {
    'em': 'email',
    'fn': 'first_name',
    'ln': 'last_name',
    'db': 'date_of_birth',
    'ge': 'gender',
    'ct': 'city',
    'st': 'state',
    'external_id': 'external_id',
} %}
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

{#-
    Neither the staged copies nor, on a full build, the copies to hash are held as a CTE in memory: each
    step reads the staging view for the columns it needs (about 2.5 times less memory at 1M copies than
    holding them, and no more CPU). An incremental run holds its few changed copies.
#}
with staged_conversions as {{ not_materialized_cte_hint() }} (
    select * from {{ ref('stg_conversions') }}
),

conversions as {% if not is_incremental() %}{{ not_materialized_cte_hint() }}{% endif %} (
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

country_values as (
    -- Each distinct country text normalized once, with its country's codes for the phone and ZIP rules.
    select
        normalized_values.country_value,
        normalized_values.country_code,
        {{ meta_calling_code_of_alpha2('normalized_values.country_code') }} as calling_code,
        {{ meta_trunk_prefix_of_alpha2('normalized_values.country_code') }} as trunk_prefix
    from (
        select
            distinct_values.country_value,
            {{ meta_normalize_country('distinct_values.country_value') }} as country_code
        from (
            select distinct country as country_value
            from conversions
            where country is not null
        ) as distinct_values
    ) as normalized_values
),

{#-
    The conversion's country for phone and ZIP normalization is this copy's, else the first one another
    copy of the same conversion reported (a pixel copy often has no country). Joined twice: to the narrow
    copy_countries below and to the copies themselves in `hashed`, so the wide copies are held in memory
    once, not once per step.
-#}
{%- set matching_country_joins -%}
    left join key_countries
        on
            __copies__.conversion_type = key_countries.conversion_type
            and __copies__.event_id = key_countries.event_id
    left join country_values as matching_countries
        on coalesce(__copies__.country, key_countries.key_country) = matching_countries.country_value
{%- endset %}

copy_countries as (
    -- Per copy, only what the phone, ZIP and country hashes depend on.
    select
        conversions.phone,
        conversions.zip,
        conversions.country,
        matching_countries.country_code as matching_country_code,
        matching_countries.calling_code as matching_calling_code,
        matching_countries.trunk_prefix as matching_trunk_prefix
    from conversions
    {{ matching_country_joins | replace('__copies__', 'conversions') }}
    where conversions.phone is not null or conversions.zip is not null or conversions.country is not null
),

-- noqa: disable=LT02
{%- for field, column_name in value_fields.items() %}

{{ field }}_hashes as (
    select
        distinct_values.{{ field }}_value,
        {{ meta_hashed_user_data(field, 'distinct_values.' ~ field ~ '_value') }} as {{ field }}_sha256
    from (
        select distinct {{ column_name }} as {{ field }}_value
        from conversions
        where {{ column_name }} is not null
    ) as distinct_values
),
{%- endfor %}
-- noqa: enable=LT02

ph_hashes as (
    -- The phone's hash depends on the conversion country's codes too: once per distinct triple.
    select
        distinct_values.ph_value,
        distinct_values.ph_calling_code,
        distinct_values.ph_trunk_prefix,
        {{ meta_hash_normalized(
            'distinct_values.ph_value',
            meta_phone_with_calling_code(
                'distinct_values.ph_value', 'distinct_values.ph_calling_code', 'distinct_values.ph_trunk_prefix'
            )
        ) }} as ph_sha256
    from (
        select distinct
            phone as ph_value,
            matching_calling_code as ph_calling_code,
            matching_trunk_prefix as ph_trunk_prefix
        from copy_countries
        where phone is not null
    ) as distinct_values
),

zp_hashes as (
    -- The ZIP's hash depends on the conversion country: once per distinct pair.
    select
        distinct_values.zp_value,
        distinct_values.zp_country_code,
        {{ meta_hash_normalized(
            'distinct_values.zp_value',
            meta_zip_for_country('distinct_values.zp_value', 'distinct_values.zp_country_code')
        ) }} as zp_sha256
    from (
        select distinct
            zip as zp_value,
            matching_country_code as zp_country_code
        from copy_countries
        where zip is not null
    ) as distinct_values
),

country_hashes as (
    -- This copy's own country, normalized once per distinct value above (not again).
    select
        distinct_values.country_value,
        distinct_values.country_code,
        {{ meta_hash_normalized('distinct_values.country_value', 'distinct_values.country_code') }}
            as country_sha256
    from (
        select distinct
            country as country_value,
            matching_country_code as country_code
        from copy_countries
        where country is not null
    ) as distinct_values
),

state_ldu_codes as (
    -- Meta's Limited Data Use number of each distinct state value (seed us_states; null for a state
    -- Meta documents no number for, or a value that is no US state). The state is normalized in a
    -- projection, then joined as a column: on Spark the normalization calls `reflect`, which is
    -- nondeterministic, and Spark refuses a nondeterministic join condition.
    select
        normalized_values.state_value,
        us_states.meta_ldu_state_code
    from (
        select
            distinct_values.state_value,
            {{ meta_normalize_state('distinct_values.state_value') }} as normalized_state
        from (
            select distinct state as state_value
            from conversions
            where state is not null
        ) as distinct_values
    ) as normalized_values
    inner join {{ ref('us_states') }} as us_states
        on normalized_values.normalized_state = lower(us_states.state_code)
    where us_states.meta_ldu_state_code is not null
),

hashed as (
    select
        {{ uuid_from_columns(['copies.conversion_type', 'copies.event_id']) }} as conversion_key,
        copies.event_id,
        copies.person_id,
        copies.campaign_id,
        copies.ad_set_id,
        copies.ad_id,
        copies.order_id,
        copies.meta_pixel_id,
        copies.conversion_type,
        copies.conversion_source,
        copies.currency,
        copies.utm_source,
        copies.utm_medium,
        copies.utm_campaign,
        copies.utm_content,
        copies.utm_term,
        copies.fbclid,
        copies.fbc,
        copies.fbp,
        copies.client_ip_address,
        copies.client_user_agent,
        copies.event_source_url,
        copies.device_type,
        copies.browser,
        copies.os,
        copies.country,
        copies.city,
        copies.properties,
        copies.consent_ads,
        -- Only a state of the United States (or of a conversion whose country is unknown) has a number.
        case
            when coalesce(matching_countries.country_code, 'us') = 'us'
                then state_ldu_codes.meta_ldu_state_code
        end as ldu_state_code,
        copies.opt_out,
        copies.limited_data_use,
        em_hashes.em_sha256,
        ph_hashes.ph_sha256,
        fn_hashes.fn_sha256,
        ln_hashes.ln_sha256,
        db_hashes.db_sha256,
        ge_hashes.ge_sha256,
        ct_hashes.ct_sha256,
        st_hashes.st_sha256,
        zp_hashes.zp_sha256,
        country_hashes.country_sha256,
        external_id_hashes.external_id_sha256,
        copies.value_cents,
        copies.conversion_time,
        copies._load_id,
        copies._source_file,
        copies._source_row,
        copies._loaded_at,
        copies.anonymous_id,
        -- The clear values, only to tell which could not be normalized (not selected below).
        copies.email,
        copies.phone,
        copies.first_name,
        copies.last_name,
        copies.date_of_birth,
        copies.gender,
        copies.state,
        copies.zip,
        copies.external_id
    from conversions as copies
    {{ matching_country_joins | replace('__copies__', 'copies') }}
    left join state_ldu_codes
        on copies.state = state_ldu_codes.state_value
    left join em_hashes
        on copies.email = em_hashes.em_value
    left join fn_hashes
        on copies.first_name = fn_hashes.fn_value
    left join ln_hashes
        on copies.last_name = ln_hashes.ln_value
    left join db_hashes
        on copies.date_of_birth = db_hashes.db_value
    left join ge_hashes
        on copies.gender = ge_hashes.ge_value
    left join ct_hashes
        on copies.city = ct_hashes.ct_value
    left join st_hashes
        on copies.state = st_hashes.st_value
    left join external_id_hashes
        on copies.external_id = external_id_hashes.external_id_value
    -- Codes are never empty ('' is a trunk prefix: '-' stands for null there).
    left join ph_hashes
        on
            copies.phone = ph_hashes.ph_value
            and coalesce(matching_countries.calling_code, '') = coalesce(ph_hashes.ph_calling_code, '')
            and coalesce(matching_countries.trunk_prefix, '-') = coalesce(ph_hashes.ph_trunk_prefix, '-')
    left join zp_hashes
        on
            copies.zip = zp_hashes.zp_value
            and coalesce(matching_countries.country_code, '') = coalesce(zp_hashes.zp_country_code, '')
    left join country_hashes
        on
            copies.country = country_hashes.country_value
            and coalesce(matching_countries.country_code, '') = coalesce(country_hashes.country_code, '')
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
        hashed.consent_ads,
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
        hashed.ldu_state_code,
        {{ meta_dropped_user_data_count(present, 'hashed.') }} as dropped_user_data_fields,
        hashed.opt_out,
        hashed.limited_data_use,
        hashed.conversion_time,
        hashed._load_id,
        hashed._source_file,
        hashed._source_row,
        hashed._loaded_at,
        hashed.anonymous_id
    from hashed
)

select * from final
