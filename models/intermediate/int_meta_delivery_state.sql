{{ config(materialized='view') }}

{#-
    The Meta delivery state of each conversion that has a row in the delivery log: THE definition
    that conversion_event (is_optimized, meta_conversion_id, optimized_at), the report's
    delivery status and `convopt export-meta` (what is still to send) read. A view over the log's
    staging view, so it is always current: an export sees what the previous export appended
    without a build in between.
-#}

with delivery_log as (
    select * from {{ ref('stg_meta_delivery_log') }}
),

ranked as (
    -- Latest row first. Ties on recorded_at (one transaction) are broken by the request, its batch
    -- and attempt, so the latest row is the same on every engine and every run.
    select
        delivery_log.*,
        row_number() over (
            partition by delivery_log.conversion_id
            order by
                delivery_log.recorded_at desc,
                delivery_log.requested_at desc nulls last,
                delivery_log.batch_id desc,
                delivery_log.attempt desc
        ) as recency
    from delivery_log
),

sent_ranked as (
    -- Accepted deliveries, latest first. Meta returns no per-event id: the trace id of the request
    -- that delivered the conversion is what Meta support can look up.
    select
        delivery_log.conversion_id,
        delivery_log.fbtrace_id,
        row_number() over (
            partition by delivery_log.conversion_id
            order by
                delivery_log.recorded_at desc,
                delivery_log.requested_at desc nulls last,
                delivery_log.batch_id desc,
                delivery_log.attempt desc
        ) as recency
    from delivery_log
    where delivery_log.status = 'sent'
),

state as (
    -- A failed row counts as final unless the export marked it retryable; a row written before the
    -- flag existed (null) is final.
    select
        conversion_id,
        max(attempt) as last_attempt,
        bool_or(status = 'sent') as is_sent,
        bool_or(status = 'expired') as has_expired_row,
        bool_or(status = 'skipped') as has_skipped_row,
        bool_or(status = 'failed' and not coalesce(is_retryable, false)) as has_final_failure,
        bool_or(status = 'unknown') as had_unknown,
        min(case when status = 'sent' then recorded_at end) as first_sent_at,
        max(case when status = 'sent' then recorded_at end) as last_sent_at,
        max(recorded_at) as last_recorded_at
    from delivery_log
    group by conversion_id
),

final as (
    select
        state.conversion_id,
        ranked.status as latest_status,
        sent_ranked.fbtrace_id as sent_fbtrace_id,
        state.last_attempt,
        state.is_sent,
        state.has_expired_row,
        state.has_skipped_row,
        state.has_final_failure,
        state.had_unknown,
        state.first_sent_at,
        state.last_sent_at,
        state.last_recorded_at
    from state
    inner join ranked
        on
            state.conversion_id = ranked.conversion_id
            and ranked.recency = 1
    left join sent_ranked
        on
            state.conversion_id = sent_ranked.conversion_id
            and sent_ranked.recency = 1
)

select * from final
