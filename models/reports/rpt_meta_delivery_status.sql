-- The report dataset `meta_delivery_status`: conversions with a Meta event (meta_capi_events) per day of
-- conversion (reporting time zone) × conversion type × Meta event × delivery state. The state comes from
-- the delivery log (int_meta_delivery_state): `sent` once any request delivered the conversion, else
-- the status of its latest log row; a conversion never logged is `pending` when ready to send, else its
-- status in meta_capi_events (expired, skipped). A view: the state is as of the query, also after an
-- export that ran since the build. `convopt report` sums the days of its range. refunded_conversions
-- counts the conversions with a refund or chargeback: in a `sent` row, revenue Meta was told about that
-- the business no longer has (the Conversions API has no retraction; the refund is only visible here).
with capi_events as (
    select * from {{ ref('meta_capi_events') }}
),

delivery_state as (
    select * from {{ ref('int_meta_delivery_state') }}
),

conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

stated as (
    select
        {{ reporting_period_start('capi_events.conversion_time', 'day') }} as conversion_date,
        capi_events.conversion_type,
        capi_events.event_name,
        case
            when delivery_state.is_sent then 'sent'
            when delivery_state.latest_status is not null then delivery_state.latest_status
            when capi_events.status = 'ready' then 'pending'
            else capi_events.status
        end as delivery_state,
        coalesce(conversions.is_refunded, false) as is_refunded
    from capi_events
    left join delivery_state
        on capi_events.conversion_id = delivery_state.conversion_id
    left join conversions
        on capi_events.conversion_id = conversions.id
),

final as (
    select
        conversion_date,
        conversion_type,
        event_name,
        delivery_state,
        count(*) as conversions,
        count(case when is_refunded then 1 end) as refunded_conversions
    from stated
    group by
        conversion_date,
        conversion_type,
        event_name,
        delivery_state
)

select * from final
