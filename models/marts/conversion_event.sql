{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='conversion_key',
        on_schema_change='fail',
    )
}}

{#-
    The conversion facts: one row per conversion (deduplicated in int_conversions_deduplicated,
    valued in the reporting currency in int_conversions_valued) with its Meta delivery state
    (int_meta_delivery_state). Incremental: the keys whose conversions changed since the last run
    (a copy loaded) or that Meta accepted since (a new `sent` row in the delivery log) are
    recomputed and replace their rows.
-#}

with conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

delivery_state as (
    select * from {{ ref('int_meta_delivery_state') }}
),

{% if is_incremental() %}
    changed_keys as (
        select conversion_key
        from conversions
        where
            last_loaded_at > {{ last_run_watermark('last_loaded_at') }}

        union

        -- last_sent_at is the latest `sent` row's recorded_at: at or after the watermark exactly
        -- when the conversion has a `sent` row recorded since the last run.
        select conversions.conversion_key
        from conversions
        inner join delivery_state
            on conversions.id = delivery_state.conversion_id
        where
            delivery_state.last_sent_at >= {{ last_run_watermark('optimized_at') }}
    ),

    changed_conversions as (
        select conversions.*
        from conversions
        inner join changed_keys
            on conversions.conversion_key = changed_keys.conversion_key
    ),
{% else %}
    changed_conversions as (
        select * from conversions
    ),
{% endif %}

final as (
    select
        changed_conversions.id,
        changed_conversions.conversion_key,
        changed_conversions.event_id,
        changed_conversions.person_id,
        changed_conversions.campaign_id,
        changed_conversions.ad_set_id,
        changed_conversions.ad_id,
        changed_conversions.order_id,
        changed_conversions.meta_pixel_id,
        delivery_state.sent_fbtrace_id as meta_conversion_id,
        changed_conversions.conversion_type,
        changed_conversions.conversion_source,
        changed_conversions.reported_by_sources,
        changed_conversions.currency,
        changed_conversions.reporting_currency,
        changed_conversions.utm_source,
        changed_conversions.utm_medium,
        changed_conversions.utm_campaign,
        changed_conversions.utm_content,
        changed_conversions.utm_term,
        changed_conversions.fbclid,
        changed_conversions.fbc,
        changed_conversions.fbp,
        changed_conversions.client_ip_address,
        changed_conversions.client_user_agent,
        changed_conversions.event_source_url,
        changed_conversions.device_type,
        changed_conversions.browser,
        changed_conversions.os,
        changed_conversions.country,
        changed_conversions.city,
        changed_conversions.properties,
        changed_conversions.em_sha256,
        changed_conversions.ph_sha256,
        changed_conversions.fn_sha256,
        changed_conversions.ln_sha256,
        changed_conversions.db_sha256,
        changed_conversions.ge_sha256,
        changed_conversions.ct_sha256,
        changed_conversions.st_sha256,
        changed_conversions.zp_sha256,
        changed_conversions.country_sha256,
        changed_conversions.external_id_sha256,
        changed_conversions.dropped_user_data_field_names,
        changed_conversions.value_cents,
        changed_conversions.value_cents_reporting,
        changed_conversions.net_value_cents_reporting,
        changed_conversions.refunded_value_cents_reporting,
        changed_conversions.is_refunded,
        changed_conversions.is_charged_back,
        changed_conversions.is_restated,
        changed_conversions.adjustments_count,
        changed_conversions.last_adjusted_at,
        changed_conversions.copies_count,
        changed_conversions.dropped_user_data_fields,
        coalesce(delivery_state.is_sent, false) as is_optimized,
        changed_conversions.conversion_time,
        changed_conversions.created_at,
        changed_conversions.last_loaded_at,
        delivery_state.last_sent_at as optimized_at
    from changed_conversions
    left join delivery_state
        on changed_conversions.id = delivery_state.conversion_id
)

select * from final
