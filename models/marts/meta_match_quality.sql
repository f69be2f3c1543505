{#-
    What Meta can match, per UTC day of the event, Meta event name and action_source: of the events
    convopt would send (not skipped), the share carrying each identifier Meta matches on, the share a
    pixel also reported (Meta deduplicates the two on event_name + event_id), the delay from the event
    to its delivery, and the skipped and expired events by reason. Rebuilt in full on every build from
    meta_capi_events, the conversions' identifiers and the delivery log (a few rows per day and event).
-#}

with meta_events as (
    select * from {{ ref('meta_capi_events') }}
),

conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

delivery_state as (
    select * from {{ ref('int_meta_delivery_state') }}
),

events_with_identifiers as (
    -- Identifiers as the payload carries them (a skipped-for-consent event carries none, but skipped
    -- events are not counted as sendable).
    select
        meta_events.event_name,
        meta_events.action_source,
        meta_events.status,
        meta_events.status_reason,
        {{ utc_date('meta_events.conversion_time') }} as event_date,
        meta_events.status <> 'skipped' as is_sendable,
        conversions.em_sha256 is not null as has_em,
        conversions.ph_sha256 is not null as has_ph,
        conversions.external_id_sha256 is not null as has_external_id,
        conversions.fbp is not null as has_fbp,
        conversions.fbc is not null or conversions.fbclid is not null as has_fbc,
        conversions.client_ip_address is not null as has_client_ip_address,
        conversions.client_user_agent is not null as has_client_user_agent,
        coalesce(conversions.reported_by_sources like '%pixel%', false) as has_pixel_copy,
        coalesce(delivery_state.is_sent, false) as is_sent,
        case
            when delivery_state.is_sent
                then {{ seconds_between('meta_events.conversion_time', 'delivery_state.first_sent_at') }}
        end as send_latency_seconds
    from meta_events
    left join conversions
        on meta_events.conversion_id = conversions.id
    left join delivery_state
        on meta_events.conversion_id = delivery_state.conversion_id
),

final as (
    select
        event_name,
        action_source,
        {%- for identifier in ['em', 'ph', 'external_id', 'fbp', 'fbc', 'client_ip_address', 'client_user_agent'] %}
            {{ round_decimal(safe_divide(
                'sum(case when is_sendable and has_' ~ identifier ~ ' then 1 else 0 end)',
                'sum(case when is_sendable then 1 else 0 end)',
            ), 4) }} as share_with_{{ identifier }},
        {%- endfor %}
        {{ round_decimal(safe_divide(
            'sum(case when is_sendable and has_pixel_copy then 1 else 0 end)',
            'sum(case when is_sendable then 1 else 0 end)',
        ), 4) }} as pixel_overlap_share,
        {{ median('send_latency_seconds') }} as median_send_latency_seconds,
        {{ percentile('send_latency_seconds', 0.95) }} as p95_send_latency_seconds,
        cast(count(*) as {{ dbt.type_bigint() }}) as events,
        cast(sum(case when is_sendable then 1 else 0 end) as {{ dbt.type_bigint() }}) as sendable_events,
        cast(sum(case when is_sent then 1 else 0 end) as {{ dbt.type_bigint() }}) as sent_events,
        cast(sum(case when status = 'skipped' then 1 else 0 end) as {{ dbt.type_bigint() }}) as skipped_events,
        cast(
            sum(case when status_reason like 'consent_ads%' then 1 else 0 end) as {{ dbt.type_bigint() }}
        ) as skipped_consent_events,
        cast(
            sum(
                case
                    when
                        status_reason like 'rule for %'
                        or status_reason like 'conversion_source %'
                        or status_reason like 'value_cents %'
                        then 1
                    else 0
                end
            ) as {{ dbt.type_bigint() }}
        ) as skipped_rule_events,
        cast(
            sum(
                case
                    when status_reason like 'website event without %' or status_reason like 'app event without %'
                        then 1
                    else 0
                end
            ) as {{ dbt.type_bigint() }}
        ) as skipped_missing_field_events,
        cast(sum(case when status = 'expired' then 1 else 0 end) as {{ dbt.type_bigint() }}) as expired_events,
        cast(
            sum(case when status = 'expired' and status_reason like '%days before%' then 1 else 0 end)
            as {{ dbt.type_bigint() }}
        ) as expired_too_old_events,
        cast(
            sum(case when status = 'expired' and status_reason like '%in the future%' then 1 else 0 end)
            as {{ dbt.type_bigint() }}
        ) as expired_future_events,
        event_date
    from events_with_identifiers
    group by event_date, event_name, action_source
)

select * from final
