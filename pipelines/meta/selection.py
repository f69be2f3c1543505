"""Which rows of ``marts.meta_capi_events`` a run handles, and what happens to each: send, or record once.

A row is handled while the conversion is not delivered (no ``sent`` row in the delivery log). Ready rows
are sent, unless they cannot be sent as they are (payload not a JSON object, event_id differing from the
payload's, pixel_id not numeric, event larger than the request bound, an ``app`` event without
``app_data``): those are recorded ``failed``. A
ready event older than Meta's window (7 days, 62 for ``physical_store``, less a 10-minute margin) is
recorded ``expired`` instead of being sent, because Meta rejects the whole request for it. Rows the model
marked ``expired`` or ``skipped`` are recorded once with that status.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.meta.delivery_log import (
    DELIVERY_STATE_COLUMNS,
    append_log,
    delivery_state_relation,
    table_columns,
)
from pipelines.meta.results import ExportSummary, ExportUsageError

EVENT_MAX_AGE_SECONDS = 7 * 86_400
PHYSICAL_STORE_MAX_AGE_SECONDS = 62 * 86_400
EXPIRY_MARGIN_SECONDS = 600  # an event this close to Meta's window is treated as already outside it


def select_rows(
    con: duckdb.DuckDBPyConnection,
    *,
    conversion_ids: list[str],
    since: dt.datetime | None,
    limit: int | None,
    now: int,
    max_event_bytes: int,
    retry_failed: bool,
) -> pa.Table:
    """The rows this run handles (``_select_sql``): those to send first, sorted by pixel, then the others;
    raises if a conversion appears twice."""
    params: dict[str, Any] = {
        "now": now,
        "margin": EXPIRY_MARGIN_SECONDS,
        "max_event_bytes": max_event_bytes,
        "retry_failed": retry_failed,
    }
    if conversion_ids:
        params["conversion_ids"] = conversion_ids
    if since is not None:
        params["since"] = int(since.timestamp())
    if limit is not None:
        params["limit"] = limit
    sql = _select_sql(
        con, conversion_ids=bool(conversion_ids), since=since is not None, limit=limit is not None
    )
    rows = con.sql(sql, params=params).to_arrow_table()
    _check_unique(rows)
    return rows


def _check_unique(rows: pa.Table) -> None:
    ids = rows.column("conversion_id").combine_chunks()  # one hash table, not one per chunk
    if len(ids) != len(ids.unique()):
        raise ExportUsageError(
            "marts.meta_capi_events has several rows for one conversion_id: fix the model "
            "(its unique test) before exporting, or a conversion could be sent twice"
        )


def explain_requested(con: duckdb.DuckDBPyConnection, ids: list[str], summary: ExportSummary) -> None:
    """Tell which requested conversion ids are not in the mart, and which were delivered before."""
    in_mart = con.execute(
        "select conversion_id from marts.meta_capi_events where conversion_id in (select unnest(?))", [ids]
    ).fetchall()
    summary.not_found = sorted(set(ids) - {r[0] for r in in_mart})
    delivered = con.execute(
        f"select conversion_id from {delivery_state_relation(con)} as s "
        "where s.is_sent and s.conversion_id in (select unnest(?))",
        [ids],
    ).fetchall()
    summary.already_delivered = sorted(r[0] for r in delivered)


def record_unsendable(
    con: duckdb.DuckDBPyConnection, data: dict[str, list[Any]], summary: ExportSummary
) -> None:
    """Count (and, outside a dry run, record once) the expired, skipped and not-sendable rows."""
    dispositions = Counter(data["disposition"])
    summary.expired, summary.skipped = dispositions["expired"], dispositions["skipped"]
    summary.failed += dispositions["invalid"]
    summary.failure_reasons.update(
        f"not sendable: {reason}"
        for reason, disposition in zip(data["reason"], data["disposition"], strict=True)
        if disposition == "invalid"
    )
    idx = [i for i, d in enumerate(data["disposition"]) if d != "send"]
    if summary.dry_run or not idx:
        return
    n, now = len(idx), dt.datetime.now(dt.UTC)
    status = ["failed" if data["disposition"][i] == "invalid" else data["disposition"][i] for i in idx]
    append_log(
        con,
        {
            "conversion_id": [data["conversion_id"][i] for i in idx],
            "event_id": [data["event_id"][i] for i in idx],
            "pixel_id": [data["pixel_id"][i] for i in idx],
            "batch_id": [f"{summary.run_id}/not-sent"] * n,
            "attempt": [data["last_attempt"][i] for i in idx],
            "status": status,
            "error_type": ["convopt_validation" if st == "failed" else None for st in status],
            "error_message": [data["reason"][i] for i in idx],
            "test_event_code": [summary.test_event_code] * n,
            "recorded_at": [now] * n,
            "run_id": [summary.run_id] * n,
            "is_retryable": [False if st == "failed" else None for st in status],
            "as_of": [summary.as_of] * n,
        },
    )


def _select_sql(con: duckdb.DuckDBPyConnection, *, conversion_ids: bool, since: bool, limit: bool) -> str:
    """The rows this run handles, each with its disposition (send / expired / skipped / invalid)."""
    # A mart built before dropped_user_data_fields existed (or a hand-made one) counts none.
    dropped = (
        "coalesce(e.dropped_user_data_fields, 0)"
        if "dropped_user_data_fields" in table_columns(con, "marts", "meta_capi_events")
        else "0"
    )
    state_columns = ", ".join(DELIVERY_STATE_COLUMNS)
    filters = []
    if conversion_ids:
        filters.append("e.conversion_id in (select unnest($conversion_ids))")
    if since:
        filters.append("e.event_time >= $since")
    extra = "".join(f"\n            and {f}" for f in filters)
    limit_clause = (
        "qualify disposition <> 'send' or row_number() over "
        "(partition by disposition = 'send' order by event_time, conversion_id) <= $limit"
        if limit
        else ""
    )
    return f"""
    with delivery_state as (
        select {state_columns} from {delivery_state_relation(con)} as state
    ),

    pending as (
        select
            e.conversion_id,
            e.event_id,
            e.pixel_id,
            e.action_source,
            e.status,
            e.status_reason,
            e.payload,
            e.event_time,
            {dropped} as dropped_user_data_fields,
            coalesce(s.had_unknown, false) as had_unknown,
            coalesce(s.last_attempt, 0) as last_attempt
        from marts.meta_capi_events as e
        left join delivery_state as s
            on s.conversion_id = e.conversion_id
        where not coalesce(s.is_sent, false)
            and (
                (e.status = 'ready' and not coalesce(s.has_expired_row, false)
                    and ($retry_failed or not coalesce(s.has_final_failure, false)))
                or (e.status = 'expired' and not coalesce(s.has_expired_row, false))
                or (e.status = 'skipped' and not coalesce(s.has_skipped_row, false))
            ){extra}
    ),

    checked as (
        -- Each check once per row: parsing a payload is the costly part of this query. A payload
        -- whose event_id can be read is valid JSON and an object: parsed once; only the others are
        -- parsed again to tell why not (try() gives null for invalid JSON instead of an error).
        select
            *,
            try(json_extract_string(payload, '$.event_id')) as payload_event_id,
            event_time < $now + $margin - case
                when action_source = 'physical_store' then {PHYSICAL_STORE_MAX_AGE_SECONDS}
                else {EVENT_MAX_AGE_SECONDS}
            end as is_outside_window,
            pixel_id is null or not regexp_full_match(pixel_id, '[0-9]+') as is_bad_pixel,
            -- Meta rejects an app event without app_data (and with it the whole request).
            case
                when action_source = 'app'
                    then not coalesce(try(json_exists(payload, '$.app_data')), false)
                else false
            end as is_app_without_app_data
        from pending
    ),

    validated as (
        select
            *,
            case
                when payload_event_id is not null then true
                else coalesce(json_valid(payload), false)
            end as is_json
        from checked
    ),

    parsed as (
        select
            *,
            case
                when payload_event_id is not null then 'OBJECT'
                when is_json then json_type(payload)
            end as payload_type
        from validated
    ),

    candidates as (
        select
            conversion_id,
            event_id,
            pixel_id,
            action_source,
            status,
            case
                when is_json and (payload like '%' || chr(10) || '%' or payload like '%' || chr(13) || '%')
                    then json(payload)::varchar  -- one line per request in the dry-run JSONL
                else payload
            end as payload,
            event_time,
            dropped_user_data_fields,
            had_unknown,
            last_attempt,
            case
                when status = 'expired' then 'expired'
                when status = 'skipped' then 'skipped'
                when is_outside_window then 'expired'
                when is_bad_pixel then 'invalid'
                when not is_json then 'invalid'
                when payload_type <> 'OBJECT' then 'invalid'
                when payload_event_id is distinct from event_id then 'invalid'
                when strlen(payload) > $max_event_bytes then 'invalid'
                when is_app_without_app_data then 'invalid'
                else 'send'
            end as disposition,
            case
                when status in ('expired', 'skipped') then status_reason
                when is_outside_window
                    then 'event_time is outside Meta''s window at send time (Meta rejects the whole request)'
                when is_bad_pixel then 'pixel_id is missing or not numeric'
                when not is_json then 'payload is not valid JSON'
                when payload_type <> 'OBJECT' then 'payload is not a JSON object'
                when payload_event_id is distinct from event_id
                    then 'payload event_id differs from the event_id column'
                when strlen(payload) > $max_event_bytes
                    then 'payload is larger than the request byte bound (' || strlen(payload) || ' bytes)'
                when is_app_without_app_data
                    then 'app event without app_data (Meta requires it for action_source app and rejects the '
                        || 'whole request)'
            end as reason
        from parsed
    )

    select * from candidates
    {limit_clause}
    -- The rows to send first, by pixel: a dry run writes them as they come, without copying them.
    order by disposition <> 'send', pixel_id nulls last, event_time, conversion_id
    """
