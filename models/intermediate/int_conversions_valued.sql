{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='conversion_key',
        on_schema_change='fail',
    )
}}

{#-
    The deduplicated conversions (int_conversions_deduplicated) with their value in the reporting
    currency: the conversion set every fact reads (conversion_event, attribution, funnels, the Meta
    events). Incremental as the deduplication: the keys with a conversion loaded since the last run
    are revalued and replace their rows (delete+insert on conversion_key); a full refresh gives the
    same rows. A change of the exchange-rate seed or of var `reporting_currency` needs
    `--full-refresh`.
-#}
{%- set reporting_currency = var('reporting_currency') -%}

with deduplicated as (
    select * from {{ ref('int_conversions_deduplicated') }}
),

exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),

{% if is_incremental() %}
    changed_keys as (
        select distinct conversion_key
        from deduplicated
        where last_loaded_at >= {{ last_run_watermark('last_loaded_at') }}
    ),

    changed_conversions as (
        select deduplicated.*
        from deduplicated
        inner join changed_keys
            on deduplicated.conversion_key = changed_keys.conversion_key
    ),
{% else %}
    changed_conversions as (
        select * from deduplicated
    ),
{% endif %}

reporting_rates as (
    select
        rate_date,
        units_per_usd
    from exchange_rates
    where currency = '{{ reporting_currency }}'
),

valued as (
    -- Reporting-currency value: cross rate through USD on the conversion's UTC day; 0 is 0 in any
    -- currency and a value already in the reporting currency is itself (no rate needed for either);
    -- null when a rate is missing (listed in rpt_unvalued_conversions, flagged by a test).
    select
        changed_conversions.*,
        case
            when changed_conversions.value_cents = 0 then 0
            when changed_conversions.currency = '{{ reporting_currency }}' then changed_conversions.value_cents
            else {{ convert_cents(
                'changed_conversions.value_cents',
                'conversion_rates.units_per_usd',
                'reporting_rates.units_per_usd'
            ) }}
        end as value_cents_reporting
    from changed_conversions
    left join exchange_rates as conversion_rates
        on
            changed_conversions.currency = conversion_rates.currency
            and {{ utc_date('changed_conversions.conversion_time') }} = conversion_rates.rate_date
    left join reporting_rates
        on {{ utc_date('changed_conversions.conversion_time') }} = reporting_rates.rate_date
),

final as (
    select
        id,
        conversion_key,
        event_id,
        person_id,
        campaign_id,
        ad_set_id,
        ad_id,
        order_id,
        meta_pixel_id,
        conversion_type,
        conversion_source,
        reported_by_sources,
        currency,
        cast('{{ reporting_currency }}' as {{ dbt.type_string() }}) as reporting_currency,
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
        em_sha256,
        ph_sha256,
        fn_sha256,
        ln_sha256,
        db_sha256,
        ge_sha256,
        ct_sha256,
        st_sha256,
        zp_sha256,
        country_sha256,
        external_id_sha256,
        dropped_user_data_field_names,
        value_cents,
        value_cents_reporting,
        copies_count,
        dropped_user_data_fields,
        conversion_time,
        created_at,
        last_loaded_at
    from valued
)

select * from final
