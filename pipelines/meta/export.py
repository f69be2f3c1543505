"""``convopt export-meta``: one run, from opening the warehouse to the summary of what was sent.

What a run does, in order:

1. Opens the warehouse for writing and keeps the connection for the whole run. DuckDB allows one writer
   process, so two exports can never interleave and send the same conversion twice; a ``dbt build`` or
   ``convopt ingest`` started meanwhile gets a clear "locked" error. A dry run opens the file read-only.
2. Recovers a request that a killed run left in flight (``delivery_log``): its events get an ``unknown``
   row, so the possible double count stays visible, and that batch is sent again first, on its own, with
   the same event_ids. An event is resent after an unknown outcome only while its earliest unknown
   request is younger than ``RESEND_WINDOW`` (47 h, inside Meta's 48-hour deduplication window); an
   older one is recorded ``failed`` with the reason and left to ``--retry-failed``.
3. Selects the rows not yet delivered and records ``expired``/``skipped`` rows once, and the ready rows
   that cannot be sent as they are as ``failed`` (``selection``).
4. Sends the rest per pixel in batches (``batching``), appending every request outcome to the log before
   the next request starts (``sender``); or, in a dry run, writes the request bodies (``dry_run``).
5. Returns the summary: sent, failed, expired, skipped, unknown, and the identity fields left out of the
   sent events because their values could not be normalized (``meta_capi_events.dropped_user_data_fields``).

The access token comes from ``META_ACCESS_TOKEN`` (the CLI reads it; the Python API takes it as an
argument). It goes only into the request body sent to Meta: never into logs, the log table, dry-run files,
the in-flight journal, reprs or exception messages.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb
import httpx
import pyarrow.compute as pc
from rich.console import Console

from pipelines.meta.batching import (
    MAX_EVENTS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    body_overhead_bytes,
    plan_requests,
)
from pipelines.meta.delivery_log import (
    InFlight,
    first_unknown_requests,
    inflight_journal_path,
    journal_candidates,
    prepare_log_table,
    recover_inflight,
    table_exists,
)
from pipelines.meta.dry_run import dry_run_dir, write_dry_run
from pipelines.meta.graph_client import (
    DEFAULT_API_VERSION,
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_TIMEOUT,
    GraphClient,
    RetryPolicy,
)
from pipelines.meta.results import ExportSummary, ExportUsageError
from pipelines.meta.selection import explain_requested, record_unsendable, select_rows
from pipelines.meta.sender import send_all
from pipelines.warehouse import connect

# Meta counts events with the same event_name and event_id received within 48 hours once. An event whose
# earlier request may have reached Meta (outcome unknown) is resent only while that request is younger
# than this, an hour short of 48 h so that the resend itself, retries and clock skew stay inside.
DEDUP_WINDOW = dt.timedelta(hours=48)
RESEND_WINDOW = DEDUP_WINDOW - dt.timedelta(hours=1)

TOKEN_ENV = "META_ACCESS_TOKEN"
TEST_EVENT_CODE_ENV = "META_TEST_EVENT_CODE"
GRAPH_BASE_URL_ENV = "META_GRAPH_BASE_URL"
API_VERSION_ENV = "META_API_VERSION"

NO_TOKEN_MESSAGE = (
    f"no Meta access token: set {TOKEN_ENV} to a Conversions API access token, "
    "or pass --dry-run to write the request bodies without sending them"
)


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _utc(value: dt.datetime | dt.date | None) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _hold_back_old_unknowns(
    con: duckdb.DuckDBPyConnection, data: dict[str, list], summary: ExportSummary, *, now: dt.datetime
) -> None:
    """Do not resend an event Meta may already have, once a resend could fall outside its dedup window.

    An event with an ``unknown`` request (a kill or a lost response) is resent with the same event_id
    only while its earliest unknown request is less than ``RESEND_WINDOW`` old; after that it is
    recorded ``failed`` (final) with the reason, and only ``--retry-failed`` sends it again.
    """
    candidates = [
        data["conversion_id"][i]
        for i, d in enumerate(data["disposition"])
        if d == "send" and data["had_unknown"][i]
    ]
    if not candidates or not table_exists(con, "raw", "meta_delivery_log"):
        return
    first = first_unknown_requests(con, candidates)
    for i, conversion_id in enumerate(data["conversion_id"]):
        at = first.get(conversion_id)
        if data["disposition"][i] == "send" and at is not None and now - at >= RESEND_WINDOW:
            hours = (now - at).total_seconds() / 3600
            data["disposition"][i] = "invalid"
            data["reason"][i] = (
                f"a request carrying it {hours:.0f} h ago has an unknown outcome: not resent, since Meta "
                "deduplicates the same event_id only within 48 h (check Events Manager; --retry-failed resends it)"
            )
            summary.unknown_too_old += 1


def _in_flight_first(
    data: dict[str, list], send_idx: list[int], in_flight: list[InFlight], summary: ExportSummary
) -> list[int]:
    """The rows of the request(s) a killed run left in flight that this run sends, in their order."""
    if not in_flight:
        return []
    position = {data["conversion_id"][i]: i for i in send_idx}
    first: list[int] = []
    for batch in in_flight:
        summary.in_flight_recovered += len(batch.conversion_ids)
        summary.in_flight_batch = batch.batch_id
        first.extend(position[c] for c in batch.conversion_ids if c in position)
    first = list(dict.fromkeys(first))
    summary.in_flight_resent = len(first)
    return first


def export_meta(
    warehouse: Path,
    *,
    dry_run: bool,
    access_token: str | None = None,
    test_event_code: str | None = None,
    conversion_ids: Sequence[str] = (),
    limit: int | None = None,
    since: dt.date | dt.datetime | None = None,
    as_of: dt.datetime | None = None,
    retry_failed: bool = False,
    batch_size: int = MAX_EVENTS_PER_REQUEST,
    max_request_bytes: int = MAX_REQUEST_BYTES,
    out: Path | None = None,
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL,
    api_version: str = DEFAULT_API_VERSION,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    progress: bool = False,
    console: Console | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> ExportSummary:
    """Send the not-yet-delivered rows of ``marts.meta_capi_events`` to Meta, exactly once (module docstring).

    ``dry_run`` writes the request bodies under ``out`` (default: :func:`~pipelines.meta.dry_run.dry_run_dir`,
    a folder of its own outside the reports) and records nothing. ``since`` keeps events whose
    event_time is on/after it (a date means 00:00 UTC). ``as_of`` is only recorded (the dbt model uses it for
    its 7-day window). ``retry_failed`` resends events Meta rejected before. Raises ExportUsageError for
    problems the user fixes; the returned summary says what was sent, failed, expired, skipped or unknown.
    """
    if not 1 <= batch_size <= MAX_EVENTS_PER_REQUEST:
        raise ExportUsageError(f"batch size must be between 1 and {MAX_EVENTS_PER_REQUEST}, not {batch_size}")
    if limit is not None and limit < 0:
        raise ExportUsageError(f"limit must be 0 or more, not {limit}")
    overhead = body_overhead_bytes(test_event_code)
    if max_request_bytes < overhead + 64:
        raise ExportUsageError(f"max request bytes must be at least {overhead + 64}, not {max_request_bytes}")
    if not dry_run and not access_token:
        raise ExportUsageError(NO_TOKEN_MESSAGE)
    retry = retry or RetryPolicy()
    if retry.max_attempts < 1:
        raise ExportUsageError("max attempts must be at least 1")
    started = dt.datetime.now(dt.UTC)
    summary = ExportSummary(
        run_id=new_run_id(started),
        dry_run=dry_run,
        as_of=_utc(as_of),
        test_event_code=test_event_code or None,
    )
    warehouse = Path(warehouse)
    journal = inflight_journal_path(warehouse)
    client: GraphClient | None = None
    in_flight: list[InFlight] = []
    con = connect(warehouse, read_only=dry_run)
    try:
        if not dry_run:
            client = GraphClient(  # checks the base URL before anything is written
                access_token or "",
                base_url=graph_base_url,
                api_version=api_version,
                timeout=timeout,
                transport=transport,
            )
            prepare_log_table(con)
            for stale in journal_candidates(warehouse):
                if (found := recover_inflight(con, stale)) is not None:
                    in_flight.append(found)
        if not table_exists(con, "marts", "meta_capi_events"):
            raise ExportUsageError(
                f"{warehouse} has no table marts.meta_capi_events: run `dbt build` (or `convopt run`) first"
            )
        ids = sorted(set(conversion_ids))
        since_utc = _utc(since)
        rows = select_rows(
            con,
            conversion_ids=ids,
            since=since_utc,
            limit=limit,
            now=int(clock()),
            max_event_bytes=max_request_bytes - overhead - 1,
            retry_failed=retry_failed,
        )
        if ids:
            explain_requested(con, ids, summary)
        # A dry run never turns the payloads into Python objects: its files are written from Arrow.
        data = {
            name: rows.column(name).to_pylist()
            for name in rows.column_names
            if not (dry_run and name == "payload")
        }
        if not retry_failed:
            _hold_back_old_unknowns(con, data, summary, now=dt.datetime.fromtimestamp(clock(), dt.UTC))
        record_unsendable(con, data, summary)
        send_idx = [i for i, d in enumerate(data["disposition"]) if d == "send"]
        data["payload_size"] = pc.fill_null(pc.binary_length(rows.column("payload")), 0).to_pylist()
        if not dry_run:
            data["payload_bytes"] = [p.encode() if p is not None else b"" for p in data["payload"]]
        # The batch a killed run left in flight goes first, on its own, in its order (same event_ids).
        first_idx = _in_flight_first(data, send_idx, in_flight, summary)
        first_set = set(first_idx)
        rest_idx = [i for i in send_idx if i not in first_set] if first_set else send_idx
        sizes = {"batch_size": batch_size, "max_request_bytes": max_request_bytes, "overhead": overhead}
        plan = plan_requests(data, first_idx, **sizes) + plan_requests(data, rest_idx, **sizes)
        summary.pixels = len({pixel for pixel, _ in plan})
        if dry_run:
            write_dry_run(dry_run_dir(warehouse, out), rows, data, plan, summary)
            return summary
        assert client is not None
        send_all(
            con, client, data, plan, summary, journal, retry, rng or random.Random(), sleep, progress, console
        )
        return summary
    finally:
        con.close()
        if client is not None:
            client.close()
