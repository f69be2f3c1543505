{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='conversion_key',
        on_schema_change='append_new_columns',
    )
}}

{#-
    The deduplicated conversions (int_conversions_deduplicated) with their value in the reporting
    currency, gross and net of refunds, chargebacks and restatements (stg_adjustments; the rules are
    the docs block conversion_adjustments): the conversion set every fact reads (conversion_event,
    attribution, funnels, the Meta events). Incremental as the deduplication: the keys with a
    conversion or an adjustment loaded since the last run are revalued and replace their rows
    (delete+insert on conversion_key); a full refresh gives the same rows. last_loaded_at is the
    latest load of either, so every model downstream sees an adjusted conversion as changed. A change
    of the exchange-rate seed or of var `reporting_currency` needs `--full-refresh`.
-#}
{%- set reporting_currency = var('reporting_currency') -%}

with deduplicated as {{ not_materialized_cte_hint() }} (
    select * from {{ ref('int_conversions_deduplicated') }}
),

exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),

adjustments as (
    select * from {{ ref('stg_adjustments') }}
),

{% if is_incremental() %}
    changed_keys as (
        select conversion_key
        from deduplicated
        where last_loaded_at > {{ last_run_watermark('last_loaded_at') }}

        union

        select conversion_key
        from adjustments
        where _loaded_at > {{ last_run_watermark('last_loaded_at') }}
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
        {{ reporting_cents(
            'changed_conversions.value_cents',
            'changed_conversions.currency',
            'conversion_rates.units_per_usd',
            'reporting_rates.units_per_usd'
        ) }} as value_cents_reporting
    from changed_conversions
    left join exchange_rates as conversion_rates
        on
            changed_conversions.currency = conversion_rates.currency
            and {{ utc_date('changed_conversions.conversion_time') }} = conversion_rates.rate_date
    left join reporting_rates
        on {{ utc_date('changed_conversions.conversion_time') }} = reporting_rates.rate_date
),

adjustment_owners as (
    -- Each adjustment of a revalued key with the conversion it belongs to: the key's latest conversion
    -- at or before the adjustment, else its first.
    select
        adjustments.adjustment_id,
        adjustments.adjustment_type,
        adjustments.amount_cents,
        adjustments.currency,
        adjustments.adjusted_at,
        adjustments._loaded_at,
        changed_conversions.id as conversion_id,
        changed_conversions.conversion_time,
        row_number() over (
            partition by adjustments.adjustment_id
            order by
                case when changed_conversions.conversion_time <= adjustments.adjusted_at then 0 else 1 end,
                case
                    when changed_conversions.conversion_time <= adjustments.adjusted_at
                        then changed_conversions.conversion_time
                end desc,
                changed_conversions.conversion_time asc,
                changed_conversions.id asc
        ) as owner_rank
    from adjustments
    inner join changed_conversions
        on adjustments.conversion_key = changed_conversions.conversion_key
),

valued_adjustments as (
    -- Amounts in the reporting currency at the rates of the conversion's day (a full refund nets to 0).
    select
        adjustment_owners.*,
        {{ reporting_cents(
            'adjustment_owners.amount_cents',
            'adjustment_owners.currency',
            'adjustment_rates.units_per_usd',
            'reporting_rates.units_per_usd'
        ) }} as amount_cents_reporting,
        row_number() over (
            partition by adjustment_owners.conversion_id, adjustment_owners.adjustment_type
            order by adjustment_owners.adjusted_at desc, adjustment_owners.adjustment_id desc
        ) as type_recency_rank
    from adjustment_owners
    left join exchange_rates as adjustment_rates
        on
            adjustment_owners.currency = adjustment_rates.currency
            and {{ utc_date('adjustment_owners.conversion_time') }} = adjustment_rates.rate_date
    left join reporting_rates
        on {{ utc_date('adjustment_owners.conversion_time') }} = reporting_rates.rate_date
    where adjustment_owners.owner_rank = 1
),

restatements as (
    -- The latest restatement of each conversion: the base its later refunds are taken from.
    select
        conversion_id,
        adjusted_at as restated_at,
        amount_cents_reporting as restated_value_cents_reporting
    from valued_adjustments
    where
        adjustment_type = 'restatement'
        and type_recency_rank = 1
),

conversion_adjustments as (
    select
        valued_adjustments.conversion_id,
        count(*) as adjustments_count,
        max(valued_adjustments.adjusted_at) as last_adjusted_at,
        max(valued_adjustments._loaded_at) as adjustments_loaded_at,
        max(case when valued_adjustments.adjustment_type in ('refund', 'chargeback') then 1 else 0 end)
        = 1 as is_refunded,
        max(case when valued_adjustments.adjustment_type = 'chargeback' then 1 else 0 end) = 1 as is_charged_back,
        max(restatements.restated_at) as restated_at,
        max(restatements.restated_value_cents_reporting) as restated_value_cents_reporting,
        -- Refunds and chargebacks after the base; null when one of them has no exchange rate.
        case
            when count(
                case
                    when
                        valued_adjustments.adjustment_type in ('refund', 'chargeback')
                        and valued_adjustments.amount_cents_reporting is null
                        then 1
                end
            ) > 0 then null
            else coalesce(sum(
                case
                    when
                        valued_adjustments.adjustment_type in ('refund', 'chargeback')
                        and (
                            restatements.restated_at is null
                            or valued_adjustments.adjusted_at > restatements.restated_at
                        )
                        then valued_adjustments.amount_cents_reporting
                end
            ), 0)
        end as refunded_value_cents_reporting
    from valued_adjustments
    left join restatements
        on valued_adjustments.conversion_id = restatements.conversion_id
    group by valued_adjustments.conversion_id
),

netted as (
    select
        valued.*,
        coalesce(conversion_adjustments.adjustments_count, 0) as adjustments_count,
        coalesce(conversion_adjustments.is_refunded, false) as is_refunded,
        coalesce(conversion_adjustments.is_charged_back, false) as is_charged_back,
        conversion_adjustments.restated_at is not null as is_restated,
        conversion_adjustments.last_adjusted_at,
        case
            when conversion_adjustments.conversion_id is null then 0
            else conversion_adjustments.refunded_value_cents_reporting
        end as refunded_value_cents_reporting,
        case
            when conversion_adjustments.restated_at is not null
                then conversion_adjustments.restated_value_cents_reporting
            else valued.value_cents_reporting
        end as base_value_cents_reporting,
        case
            when
                conversion_adjustments.adjustments_loaded_at is not null
                and conversion_adjustments.adjustments_loaded_at > valued.last_loaded_at
                then conversion_adjustments.adjustments_loaded_at
            else valued.last_loaded_at
        end as adjusted_last_loaded_at
    from valued
    left join conversion_adjustments
        on valued.id = conversion_adjustments.conversion_id
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
        consent_ads,
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
        cast(case
            when base_value_cents_reporting is null or refunded_value_cents_reporting is null then null
            when base_value_cents_reporting < refunded_value_cents_reporting then 0
            else base_value_cents_reporting - refunded_value_cents_reporting
        end as {{ dbt.type_bigint() }}) as net_value_cents_reporting,
        cast(refunded_value_cents_reporting as {{ dbt.type_bigint() }}) as refunded_value_cents_reporting,
        is_refunded,
        is_charged_back,
        is_restated,
        cast(adjustments_count as {{ dbt.type_int() }}) as adjustments_count,
        last_adjusted_at,
        ldu_state_code,
        copies_count,
        dropped_user_data_fields,
        opt_out,
        limited_data_use,
        conversion_time,
        created_at,
        adjusted_last_loaded_at as last_loaded_at
    from netted
)

select * from final
