{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='conversion_key',
        on_schema_change='fail',
    )
}}

{#-
    The conversion facts: one row per conversion (deduplicated in int_conversions_deduplicated),
    valued in the reporting currency and carrying its Meta delivery state. Incremental: the keys
    whose conversions changed since the last run (a copy loaded) or that Meta accepted since
    (a new `sent` row in the delivery log) are recomputed and replace their rows.
-#}
{%- set reporting_currency = var('reporting_currency') -%}

with deduplicated as (
    select * from {{ ref('int_conversions_deduplicated') }}
),

exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),

delivery_log as (
    select * from {{ source('raw_meta', 'meta_delivery_log') }}
),

{% if is_incremental() %}
    changed_keys as (
        select conversion_key
        from deduplicated
        where
            last_loaded_at >= {{ last_run_watermark('last_loaded_at') }}

        union

        select deduplicated.conversion_key
        from deduplicated
        inner join delivery_log
            on deduplicated.id = delivery_log.conversion_id
        where
            delivery_log.status = 'sent'
            and delivery_log.recorded_at >= {{ last_run_watermark('optimized_at') }}
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

sent_deliveries as (
    -- Accepted deliveries, latest first. Meta returns no per-event id: the trace id of the
    -- request that delivered the conversion is what Meta support can look up.
    select
        delivery_log.conversion_id,
        delivery_log.fbtrace_id,
        delivery_log.recorded_at,
        row_number() over (
            partition by delivery_log.conversion_id
            order by
                delivery_log.recorded_at desc,
                delivery_log.requested_at desc,
                delivery_log.batch_id desc,
                delivery_log.attempt desc
        ) as recency
    from delivery_log
    inner join changed_conversions
        on delivery_log.conversion_id = changed_conversions.id
    where delivery_log.status = 'sent'
),

latest_deliveries as (
    select
        conversion_id,
        fbtrace_id as meta_conversion_id,
        recorded_at as optimized_at
    from sent_deliveries
    where recency = 1
),

reporting_rates as (
    select
        rate_date,
        units_per_usd
    from exchange_rates
    where currency = '{{ reporting_currency }}'
),

valued as (
    -- Reporting-currency value: cross rate through USD on the conversion's UTC day; 0 is 0 in any
    -- currency (no rate needed); null when a rate is missing (flagged by a test).
    select
        changed_conversions.*,
        case
            when changed_conversions.value_cents = 0 then 0
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
        valued.id,
        valued.conversion_key,
        valued.event_id,
        valued.person_id,
        valued.campaign_id,
        valued.ad_set_id,
        valued.ad_id,
        valued.order_id,
        valued.meta_pixel_id,
        latest_deliveries.meta_conversion_id,
        valued.conversion_type,
        valued.conversion_source,
        valued.reported_by_sources,
        valued.currency,
        cast('{{ reporting_currency }}' as {{ dbt.type_string() }}) as reporting_currency,
        valued.utm_source,
        valued.utm_medium,
        valued.utm_campaign,
        valued.utm_content,
        valued.utm_term,
        valued.fbclid,
        valued.fbc,
        valued.fbp,
        valued.client_ip_address,
        valued.client_user_agent,
        valued.event_source_url,
        valued.device_type,
        valued.browser,
        valued.os,
        valued.country,
        valued.city,
        valued.properties,
        valued.em_sha256,
        valued.ph_sha256,
        valued.fn_sha256,
        valued.ln_sha256,
        valued.db_sha256,
        valued.ge_sha256,
        valued.ct_sha256,
        valued.st_sha256,
        valued.zp_sha256,
        valued.country_sha256,
        valued.external_id_sha256,
        valued.dropped_user_data_field_names,
        valued.value_cents,
        valued.value_cents_reporting,
        valued.copies_count,
        valued.dropped_user_data_fields,
        latest_deliveries.conversion_id is not null as is_optimized,
        valued.conversion_time,
        valued.created_at,
        valued.last_loaded_at,
        latest_deliveries.optimized_at
    from valued
    left join latest_deliveries
        on valued.id = latest_deliveries.conversion_id
)

select * from final
