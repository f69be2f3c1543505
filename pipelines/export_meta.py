"""Exactly-once delivery of ``marts.meta_capi_events`` to Meta's Conversions API (``convopt export-meta``).

What a run does, in order:

1. Opens the warehouse for writing and keeps the connection for the whole run. DuckDB allows one writer
   process, so two exports can never interleave and send the same conversion twice; a ``dbt build`` or
   ``convopt ingest`` started meanwhile gets a clear "locked" error. A dry run opens the file read-only.
2. Recovers a request that a killed run left in flight (see *In-flight journal*): its events get an
   ``unknown`` row, so the possible double count stays visible, and are sent again below.
3. Selects the rows not yet delivered (no ``sent`` row in ``raw.meta_delivery_log``), records
   ``expired``/``skipped`` rows once, and records as ``failed`` the ready rows that cannot be sent as
   they are (payload not a JSON object, event_id differing from the payload's, pixel_id not numeric, event
   larger than the request bound). A ready event older than Meta's window (7 days, 62 for
   ``physical_store``, less a 10-minute margin) is recorded ``expired`` instead of being sent, because Meta
   rejects the whole request for it.
4. Sends the rest per pixel in batches of at most ``batch_size`` (≤ 1000, Meta's limit) events and at most
   ``max_request_bytes`` of request body (default 2,000,000 bytes, our own bound: Meta documents only the
   1000-event limit, and smaller bodies keep each request well inside the read timeout). Every request
   outcome is appended to the log in its own transaction before the next request starts, so a crash or kill
   between requests loses nothing and duplicates nothing.
5. Prints a summary: sent, failed, expired, skipped, unknown, and the identity fields left out of the sent
   events because their values could not be normalized (``meta_capi_events.dropped_user_data_fields``).

Log semantics (``raw.meta_delivery_log``, append-only, one row per event per request, or per recorded
status): a conversion is *delivered* once it has a ``sent`` row. Otherwise its state is its rows:
``failed`` with ``is_retryable = false`` is final (Meta rejected that event; it is sent again only with
``retry_failed`` / ``--retry-failed``); ``failed`` with ``is_retryable = true`` (server error, throttling,
retries exhausted, a batch rejected before it was split, token/pixel rejected) and ``unknown`` (the request
may have reached Meta but its response did not arrive) are sent again by the next run, with the same
event_id. ``attempt`` counts the requests that carried the event so far, across runs (a status recorded
without a request repeats the count, 0 if there was none). ``batch_id`` is ``<run_id>/<pixel_id>/<n>``; the halves of a split batch are
``<n>.1`` and ``<n>.2``.

Retry policy: 429, 5xx, Graph codes 1, 2, 4, 17, 32, 613 and ``is_transient`` errors, and connection errors
are retried with exponential backoff and jitter (``RetryPolicy``; ``Retry-After`` respected up to the cap)
up to ``max_attempts`` requests. A request whose outcome is unknown (read timeout, connection dropped after
the request was written) is logged ``unknown`` and retried with the same body. Other 4xx errors are not
retried: Meta rejects a whole batch for one invalid event, so the batch is split in halves until the
invalid events are isolated and recorded ``failed`` with Meta's message, code and subcode; every valid event
is still delivered. Token errors (401, codes 102/190) stop the run; permission and unknown-pixel errors
(403, code 10, 200-299, 803, 100/33) stop that pixel. Their events stay retryable.

The access token comes from ``META_ACCESS_TOKEN`` (the CLI reads it; the Python API takes it as an
argument). It goes only into the request body sent to Meta: never into logs, the log table, dry-run files,
the in-flight journal, reprs or exception messages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines.warehouse import connect, ensure_raw_schema

log = logging.getLogger(__name__)

TOKEN_ENV = "META_ACCESS_TOKEN"
TEST_EVENT_CODE_ENV = "META_TEST_EVENT_CODE"
GRAPH_BASE_URL_ENV = "META_GRAPH_BASE_URL"
API_VERSION_ENV = "META_API_VERSION"
DEFAULT_GRAPH_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"
DEFAULT_DRY_RUN_DIR = Path("reports/meta_dry_run")
DRY_RUN_REQUESTS_FILE = "requests.jsonl"
DRY_RUN_EVENTS_FILE = "events.parquet"

MAX_EVENTS_PER_REQUEST = 1000  # Meta's documented limit for `data`
MAX_REQUEST_BYTES = 2_000_000  # our bound on one request body, access_token included
TOKEN_RESERVE_BYTES = 1024  # room kept in every body for `,"access_token":"…"`
EVENT_MAX_AGE_SECONDS = 7 * 86_400
PHYSICAL_STORE_MAX_AGE_SECONDS = 62 * 86_400
EXPIRY_MARGIN_SECONDS = 600  # an event this close to Meta's window is treated as already outside it

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)
THROTTLING_CODES = frozenset({4, 17, 32, 613})
TRANSIENT_CODES = frozenset({1, 2}) | THROTTLING_CODES
TOKEN_ERROR_CODES = frozenset({102, 190})
PIXEL_ERROR_CODES = frozenset({10, 803, *range(200, 300)})

NO_TOKEN_MESSAGE = (
    f"no Meta access token: set {TOKEN_ENV} to a Conversions API access token, "
    "or pass --dry-run to write the request bodies without sending them"
)
INFLIGHT_SUFFIX = ".export-meta-inflight.json"


class ExportUsageError(ValueError):
    """A problem the user fixes (missing token, bad option, missing or inconsistent input table)."""


class Outcome(StrEnum):
    """How one HTTP request to the Graph API ended."""

    SENT = "sent"  # 2xx with events_received
    INVALID = "invalid"  # 4xx about the events: split the batch, no retry
    TRANSIENT = "transient"  # not processed (429, 5xx, throttling, connect error): retry
    UNKNOWN = "unknown"  # may or may not have been processed (timeout, dropped connection): retry
    REJECTED_PIXEL = "rejected_pixel"  # permission / unknown pixel: stop this pixel
    REJECTED_TOKEN = "rejected_token"  # bad or expired token: stop the run


@dataclass(frozen=True)
class GraphResponse:
    """The outcome of one ``POST /{version}/{pixel_id}/events``, with what Meta said."""

    outcome: Outcome
    http_status: int | None = None
    events_received: int | None = None
    fbtrace_id: str | None = None
    error_type: str | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    error_message: str | None = None
    retry_after_seconds: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and "equal jitter" (half fixed, half random)."""

    max_attempts: int = 5
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0

    def delay(self, retry_no: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry_no`` (1 = the first retry)."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (retry_no - 1))
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay_seconds))
        return wait


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify_response(status: int, content: bytes, retry_after: str | None = None) -> GraphResponse:
    """Turn a Graph API HTTP response into an Outcome plus Meta's fields (success body or error envelope)."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    retry_after_seconds = None
    if retry_after:
        try:
            retry_after_seconds = max(0.0, float(retry_after))
        except ValueError:
            retry_after_seconds = None
    if 200 <= status < 300:
        if isinstance(body, dict) and isinstance(body.get("events_received"), int):
            messages = body.get("messages") or []
            return GraphResponse(
                Outcome.SENT,
                status,
                events_received=body["events_received"],
                fbtrace_id=body.get("fbtrace_id"),
                error_message=json.dumps(messages, ensure_ascii=False) if messages else None,
            )
        # A 2xx that is not Meta's success body: we cannot tell whether the events were processed.
        return GraphResponse(Outcome.UNKNOWN, status, error_message="2xx response without events_received")
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code, subcode = _int_or_none(error.get("code")), _int_or_none(error.get("error_subcode"))
    fields = {
        "http_status": status,
        "fbtrace_id": error.get("fbtrace_id"),
        "error_type": error.get("type"),
        "error_code": code,
        "error_subcode": subcode,
        "error_message": error.get("message") or f"HTTP {status} without a Graph error body",
        "retry_after_seconds": retry_after_seconds,
    }
    if status == 429 or status >= 500 or code in TRANSIENT_CODES or error.get("is_transient") is True:
        outcome = Outcome.TRANSIENT
    elif status == 401 or code in TOKEN_ERROR_CODES:
        outcome = Outcome.REJECTED_TOKEN
    elif status == 403 or code in PIXEL_ERROR_CODES or (code == 100 and subcode == 33):
        outcome = Outcome.REJECTED_PIXEL
    elif 400 <= status < 500:
        outcome = Outcome.INVALID
    else:  # 1xx/3xx: not the Graph API we expect (wrong base URL, a proxy); nothing was processed
        outcome = Outcome.REJECTED_PIXEL
    return GraphResponse(outcome, **fields)


class GraphClient:
    """A small Conversions API client on httpx: one ``post_events`` call per request body.

    The token is held privately and added to the body at send time only; ``transport`` lets tests
    route requests to a fake server or an ``httpx.MockTransport``.
    """

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = DEFAULT_GRAPH_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ExportUsageError(f"graph base URL must be http(s)://host[:port], not {base_url!r}")
        if not api_version or "/" in api_version:
            raise ExportUsageError(f"api version must look like v24.0, not {api_version!r}")
        self.base_url = str(url).rstrip("/")
        self.api_version = api_version
        self._token = access_token
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "convopt-export-meta"},
        )

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r}, api_version={self.api_version!r})"

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def redact(self, text: str) -> str:
        """``text`` with the access token (if it appears at all) replaced."""
        return text.replace(self._token, "[redacted]") if self._token else text

    def post_events(self, pixel_id: str, body: bytes) -> GraphResponse:
        """Send one request body (``build_request_body``) to ``/{version}/{pixel_id}/events``."""
        content = body[:-1] + b',"access_token":' + json.dumps(self._token).encode() + b"}"
        try:
            response = self._http.post(
                f"/{self.api_version}/{pixel_id}/events",
                content=content,
                headers={"Content-Type": "application/json"},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left this machine: safe to retry, nothing can have been counted.
            return GraphResponse(
                Outcome.TRANSIENT, error_type=type(exc).__name__, error_message=self.redact(str(exc))
            )
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise ExportUsageError(f"cannot send to {self.base_url}: {self.redact(str(exc))}") from None
        except httpx.TransportError as exc:
            # Written (at least partly) but no response: Meta may or may not have processed it.
            return GraphResponse(
                Outcome.UNKNOWN, error_type=type(exc).__name__, error_message=self.redact(str(exc)) or None
            )
        result = classify_response(
            response.status_code, response.content, response.headers.get("retry-after")
        )
        if result.error_message and self._token in result.error_message:
            result = GraphResponse(**{**result.__dict__, "error_message": self.redact(result.error_message)})
        return result


def build_request_body(payloads: Sequence[bytes], test_event_code: str | None = None) -> bytes:
    """The request body without the token: ``{"data":[…payloads…]}`` plus ``test_event_code`` if any.

    Payloads are inserted byte for byte, so the dry-run files show exactly what is sent.
    """
    body = b'{"data":[' + b",".join(payloads) + b"]"
    if test_event_code:
        body += b',"test_event_code":' + json.dumps(test_event_code).encode()
    return body + b"}"


def body_overhead_bytes(test_event_code: str | None) -> int:
    """Bytes of a request body that are not event payloads (envelope, test code, token reserve)."""
    return len(build_request_body([], test_event_code)) + TOKEN_RESERVE_BYTES


def plan_batches(
    payload_bytes: Sequence[int], *, batch_size: int, max_request_bytes: int, overhead: int
) -> list[range]:
    """Greedy, order-keeping split into consecutive batches within the event-count and byte bounds.

    Each event costs its payload length plus one separator byte; a single event that cannot fit even alone
    must be rejected by the caller before planning.
    """
    batches: list[range] = []
    start, used = 0, overhead
    for i, size in enumerate(payload_bytes):
        cost = size + 1
        if i > start and (i - start >= batch_size or used + cost > max_request_bytes):
            batches.append(range(start, i))
            start, used = i, overhead
        used += cost
    if start < len(payload_bytes):
        batches.append(range(start, len(payload_bytes)))
    return batches


@dataclass
class ExportSummary:
    """What one run did. Counts are conversions (events), not log rows."""

    run_id: str
    dry_run: bool
    as_of: dt.datetime | None = None
    test_event_code: str | None = None
    sent: int = 0  # delivered in this run (dry run: would be sent)
    failed: int = 0  # rejected for good (Meta validation error or not sendable as it is)
    failed_retryable: int = 0  # not delivered for a transient reason; the next run sends them again
    unknown: int = 0  # last request's outcome unknown; the next run sends them again
    unknown_then_resent: int = 0  # sent in this run after an earlier attempt whose outcome was unknown
    expired: int = 0
    skipped: int = 0
    not_attempted: int = 0  # left out because the token or the pixel was rejected
    # Identity fields left out of the sent events because their values could not be normalized
    # (meta_capi_events.dropped_user_data_fields summed over the events sent; dry run: would send).
    dropped_user_data_fields: int = 0
    requests: int = 0  # HTTP requests made (dry run: request bodies written)
    pixels: int = 0
    not_found: list[str] = field(default_factory=list)  # --conversion-id values absent from the mart
    already_delivered: list[str] = field(default_factory=list)  # --conversion-id values sent before
    failure_reasons: Counter[str] = field(default_factory=Counter)
    aborted: str | None = None
    dry_run_files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything ready was delivered (or, in a dry run, would be sent)."""
        pending = (
            self.failed + self.failed_retryable + self.unknown + self.not_attempted + len(self.not_found)
        )
        return pending == 0 and self.aborted is None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def print_summary(summary: ExportSummary, console: Console) -> None:
    """The final table a person reads, plus the failure reasons and what to do next."""
    title = "Meta export (dry run: nothing sent)" if summary.dry_run else "Meta export"
    table = Table(title=f"{title} — run {summary.run_id}", show_header=False)
    rows = [
        ("would send" if summary.dry_run else "sent", summary.sent),
        ("failed (rejected by Meta or not sendable)", summary.failed),
        ("failed (transient, retried next run)", summary.failed_retryable),
        ("outcome unknown (resent next run)", summary.unknown),
        ("unknown, then resent", summary.unknown_then_resent),
        ("expired", summary.expired),
        ("skipped", summary.skipped),
        ("not attempted", summary.not_attempted),
        ("identity fields dropped (not normalizable, not sent)", summary.dropped_user_data_fields),
        ("requests" if not summary.dry_run else "request bodies", summary.requests),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    if summary.not_found:
        console.print(
            "[red]not in marts.meta_capi_events[/red] (not eligible, or the model is not built yet): "
            + ", ".join(summary.not_found)
        )
    if summary.already_delivered:
        console.print("already delivered, not sent again: " + ", ".join(summary.already_delivered))
    if summary.aborted:
        console.print(f"[red]stopped:[/red] {summary.aborted}")
    for reason, count in summary.failure_reasons.most_common(20):
        console.print(f"[yellow]{count} x[/yellow] {reason}")
    if summary.failed and not summary.dry_run:
        console.print("failed events are not resent automatically: fix them, then run with --retry-failed")
    for path in summary.dry_run_files:
        console.print(f"wrote {path}")


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _utc(value: dt.datetime | dt.date | None) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def inflight_journal_path(warehouse: Path) -> Path:
    """The small file that names the request in flight; it sits next to the warehouse file."""
    return warehouse.with_name(warehouse.name + INFLIGHT_SUFFIX)


DRY_RUN_EVENTS_SCHEMA = pa.schema(
    [
        ("batch_no", pa.int32()),
        ("pixel_id", pa.string()),
        ("conversion_id", pa.string()),
        ("event_id", pa.string()),
        ("payload", pa.string()),
    ]
)
LOG_SCHEMA = pa.schema(
    [
        ("conversion_id", pa.string()),
        ("event_id", pa.string()),
        ("pixel_id", pa.string()),
        ("batch_id", pa.string()),
        ("attempt", pa.int32()),
        ("status", pa.string()),
        ("events_received", pa.int32()),
        ("fbtrace_id", pa.string()),
        ("error_type", pa.string()),
        ("error_code", pa.int32()),
        ("error_subcode", pa.int32()),
        ("error_message", pa.string()),
        ("http_status", pa.int32()),
        ("test_event_code", pa.string()),
        ("requested_at", pa.timestamp("us", tz="UTC")),
        ("recorded_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
        ("is_retryable", pa.bool_()),
        ("as_of", pa.timestamp("us", tz="UTC")),
    ]
)
ADDED_LOG_COLUMNS = {"run_id": "varchar", "is_retryable": "boolean", "as_of": "timestamp with time zone"}


def _append_log(
    con: duckdb.DuckDBPyConnection, columns: dict[str, list[Any]], *, only_new: bool = False
) -> None:
    """Append rows to raw.meta_delivery_log in one transaction (``only_new``: skip rows already there)."""
    n = len(columns["conversion_id"])
    if n == 0:
        return
    data = {name: columns.get(name, [None] * n) for name in LOG_SCHEMA.names}
    con.register("_meta_log_rows", pa.table(data, schema=LOG_SCHEMA))
    try:
        con.execute("begin transaction")
        where = (
            """
            where not exists (
                select 1 from raw.meta_delivery_log as l
                where l.batch_id = r.batch_id and l.conversion_id = r.conversion_id and l.attempt = r.attempt
            )"""
            if only_new
            else ""
        )
        con.execute(f"insert into raw.meta_delivery_log by name select r.* from _meta_log_rows as r {where}")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_meta_log_rows")


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    ((found,),) = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(found)


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


def _log_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return _columns(con, "raw", "meta_delivery_log")


def _prepare_log_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create raw.* if missing and add the columns newer than an existing log table."""
    ensure_raw_schema(con)
    for name, typ in ADDED_LOG_COLUMNS.items():
        con.execute(f"alter table raw.meta_delivery_log add column if not exists {name} {typ}")


def _recover_inflight(con: duckdb.DuckDBPyConnection, journal: Path) -> int:
    """Record as ``unknown`` the request a killed run left in flight; returns the number of events."""
    if not journal.exists():
        return 0
    try:
        entry = json.loads(journal.read_text())
        rows = entry["rows"]
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable in-flight journal %s", journal)
        journal.unlink(missing_ok=True)
        return 0
    n = len(rows)
    requested_at = dt.datetime.fromisoformat(entry["requested_at"])
    as_of = dt.datetime.fromisoformat(entry["as_of"]) if entry.get("as_of") else None
    _append_log(
        con,
        {
            "conversion_id": [r["conversion_id"] for r in rows],
            "event_id": [r["event_id"] for r in rows],
            "pixel_id": [entry["pixel_id"]] * n,
            "batch_id": [entry["batch_id"]] * n,
            "attempt": [r["attempt"] for r in rows],
            "status": ["unknown"] * n,
            "error_type": ["process_ended"] * n,
            "error_message": ["the export process ended while this request was in flight; outcome unknown"]
            * n,
            "test_event_code": [entry.get("test_event_code")] * n,
            "requested_at": [requested_at] * n,
            "recorded_at": [dt.datetime.now(dt.UTC)] * n,
            "run_id": [entry["run_id"]] * n,
            "is_retryable": [True] * n,
            "as_of": [as_of] * n,
        },
        only_new=True,
    )
    journal.unlink()
    log.warning("recorded %d events of an interrupted request (batch %s) as unknown", n, entry["batch_id"])
    return n


def _select_sql(con: duckdb.DuckDBPyConnection, *, conversion_ids: bool, since: bool, limit: bool) -> str:
    """The rows this run handles, each with its disposition (send / expired / skipped / invalid)."""
    # A mart built before dropped_user_data_fields existed (or a hand-made one) counts none.
    dropped = (
        "coalesce(e.dropped_user_data_fields, 0)"
        if "dropped_user_data_fields" in _columns(con, "marts", "meta_capi_events")
        else "0"
    )
    if _table_exists(con, "raw", "meta_delivery_log"):
        retryable = "coalesce(is_retryable, false)" if "is_retryable" in _log_columns(con) else "false"
        state_from = f"""
        select
            conversion_id,
            bool_or(status = 'sent') as is_sent,
            bool_or(status = 'expired') as has_expired_row,
            bool_or(status = 'skipped') as has_skipped_row,
            bool_or(status = 'failed' and not {retryable}) as has_final_failure,
            bool_or(status = 'unknown') as had_unknown,
            max(attempt) as last_attempt
        from raw.meta_delivery_log
        group by conversion_id"""
    else:
        state_from = """
        select
            null::varchar as conversion_id, false as is_sent, false as has_expired_row,
            false as has_skipped_row, false as has_final_failure, false as had_unknown, 0 as last_attempt
        where false"""
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
    with delivery_state as ({state_from}
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
            pixel_id is null or not regexp_full_match(pixel_id, '[0-9]+') as is_bad_pixel
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
            end as reason
        from parsed
    )

    select * from candidates
    {limit_clause}
    order by pixel_id nulls last, event_time, conversion_id
    """


class _Abort(Exception):
    """Stop sending to one pixel (``whole_run`` False) or altogether."""

    def __init__(self, message: str, *, whole_run: bool) -> None:
        super().__init__(message)
        self.whole_run = whole_run


class _Sender:
    """Sends the planned batches of one run and appends every request outcome to the log."""

    def __init__(
        self,
        *,
        con: duckdb.DuckDBPyConnection,
        client: GraphClient,
        rows: dict[str, list[Any]],
        summary: ExportSummary,
        journal: Path,
        retry: RetryPolicy,
        rng: random.Random,
        sleep: Callable[[float], None],
    ) -> None:
        self.con, self.client, self.summary, self.journal = con, client, summary, journal
        self.retry, self.rng, self.sleep = retry, rng, sleep
        self.conversion_id: list[str] = rows["conversion_id"]
        self.event_id: list[str] = rows["event_id"]
        self.payload: list[bytes] = rows["payload_bytes"]
        self.attempts: list[int] = rows["last_attempt"]  # updated as requests are made
        self.had_unknown: list[bool] = rows["had_unknown"]
        self.dropped: list[int] = rows["dropped_user_data_fields"]
        self.settled: set[int] = set()  # rows whose outcome in this run is counted in the summary

    def deliver(self, pixel_id: str, indices: Sequence[int], batch_id: str) -> None:
        """Send one batch; if Meta rejects it for an invalid event, split it until every valid event is in."""
        response = self._send_with_retries(pixel_id, indices, batch_id)
        if response.outcome is Outcome.INVALID and len(indices) > 1:
            middle = len(indices) // 2
            self.deliver(pixel_id, indices[:middle], f"{batch_id}.1")
            self.deliver(pixel_id, indices[middle:], f"{batch_id}.2")

    def _send_with_retries(self, pixel_id: str, indices: Sequence[int], batch_id: str) -> GraphResponse:
        s = self.summary
        body = build_request_body([self.payload[i] for i in indices], s.test_event_code)
        for request_no in range(1, self.retry.max_attempts + 1):
            for i in indices:
                self.attempts[i] += 1
            requested_at = dt.datetime.now(dt.UTC)
            self._write_journal(pixel_id, indices, batch_id, requested_at)
            response = self.client.post_events(pixel_id, body)
            s.requests += 1
            status, retryable = self._row_status(response, len(indices))
            self._record(pixel_id, indices, batch_id, requested_at, response, status, retryable)
            self.journal.unlink(missing_ok=True)
            log.info(
                "pixel %s batch %s (%d events, request %d): %s, HTTP %s",
                pixel_id,
                batch_id,
                len(indices),
                request_no,
                response.outcome.value,
                response.http_status,
            )
            if response.outcome is Outcome.UNKNOWN:
                for i in indices:
                    self.had_unknown[i] = True
            if (
                response.outcome in (Outcome.TRANSIENT, Outcome.UNKNOWN)
                and request_no < self.retry.max_attempts
            ):
                self.sleep(self.retry.delay(request_no, self.rng, response.retry_after_seconds))
                continue
            break
        self._count_final(response, indices)
        if response.outcome is Outcome.REJECTED_TOKEN:
            raise _Abort(f"Meta rejected the access token: {self._reason(response)}", whole_run=True)
        if response.outcome is Outcome.REJECTED_PIXEL:
            raise _Abort(
                f"Meta rejected requests for pixel {pixel_id}: {self._reason(response)}", whole_run=False
            )
        return response

    @staticmethod
    def _row_status(response: GraphResponse, n_events: int) -> tuple[str, bool | None]:
        if response.outcome is Outcome.SENT:
            return "sent", None
        if response.outcome is Outcome.UNKNOWN:
            return "unknown", True
        if response.outcome is Outcome.INVALID and n_events == 1:
            return "failed", False
        return "failed", True

    @staticmethod
    def _reason(response: GraphResponse) -> str:
        code = (
            f"code {response.error_code}"
            if response.error_code is not None
            else f"HTTP {response.http_status}"
        )
        if response.error_subcode is not None:
            code += f"/{response.error_subcode}"
        return f"{code}: {response.error_message}"

    def _count_final(self, response: GraphResponse, indices: Sequence[int]) -> None:
        s, n = self.summary, len(indices)
        if response.outcome is not Outcome.INVALID or n == 1:
            self.settled.update(indices)
        if response.outcome is Outcome.SENT:
            if response.events_received != n:
                log.warning("Meta reported events_received=%s for %d events", response.events_received, n)
            s.sent += n
            s.unknown_then_resent += sum(self.had_unknown[i] for i in indices)
            s.dropped_user_data_fields += sum(self.dropped[i] for i in indices)
        elif response.outcome is Outcome.INVALID:
            if n == 1:
                s.failed += 1
                s.failure_reasons[self._reason(response)] += 1
        elif response.outcome is Outcome.UNKNOWN:
            s.unknown += n
            s.failure_reasons[f"outcome unknown after {self.retry.max_attempts} requests"] += n
        else:
            s.failed_retryable += n
            s.failure_reasons[f"{self._reason(response)} (will be retried)"] += n

    def _record(
        self,
        pixel_id: str,
        indices: Sequence[int],
        batch_id: str,
        requested_at: dt.datetime,
        response: GraphResponse,
        status: str,
        retryable: bool | None,
    ) -> None:
        n, s = len(indices), self.summary
        message = response.error_message
        if response.outcome is Outcome.INVALID and n > 1:
            message = f"batch of {n} rejected, splitting it to isolate the invalid events: {message}"
        _append_log(
            self.con,
            {
                "conversion_id": [self.conversion_id[i] for i in indices],
                "event_id": [self.event_id[i] for i in indices],
                "pixel_id": [pixel_id] * n,
                "batch_id": [batch_id] * n,
                "attempt": [self.attempts[i] for i in indices],
                "status": [status] * n,
                "events_received": [response.events_received] * n,
                "fbtrace_id": [response.fbtrace_id] * n,
                "error_type": [response.error_type] * n,
                "error_code": [response.error_code] * n,
                "error_subcode": [response.error_subcode] * n,
                "error_message": [message] * n,
                "http_status": [response.http_status] * n,
                "test_event_code": [s.test_event_code] * n,
                "requested_at": [requested_at] * n,
                "recorded_at": [dt.datetime.now(dt.UTC)] * n,
                "run_id": [s.run_id] * n,
                "is_retryable": [retryable] * n,
                "as_of": [s.as_of] * n,
            },
        )

    def _write_journal(
        self, pixel_id: str, indices: Sequence[int], batch_id: str, requested_at: dt.datetime
    ) -> None:
        """Name the request about to be sent, durably, so a kill during it is recorded as unknown later."""
        s = self.summary
        entry = {
            "run_id": s.run_id,
            "pixel_id": pixel_id,
            "batch_id": batch_id,
            "requested_at": requested_at.isoformat(),
            "test_event_code": s.test_event_code,
            "as_of": s.as_of.isoformat() if s.as_of else None,
            "rows": [
                {
                    "conversion_id": self.conversion_id[i],
                    "event_id": self.event_id[i],
                    "attempt": self.attempts[i],
                }
                for i in indices
            ],
        }
        tmp = self.journal.with_name(self.journal.name + ".tmp")
        with tmp.open("w") as fh:
            json.dump(entry, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.journal)


def _write_dry_run(out: Path, bodies: Iterable[bytes], events: pa.Table) -> list[Path]:
    """requests.jsonl (one body per line, no token) and events.parquet (one row per event)."""
    out.mkdir(parents=True, exist_ok=True)
    requests_path, events_path = out / DRY_RUN_REQUESTS_FILE, out / DRY_RUN_EVENTS_FILE
    tmp = requests_path.with_name(requests_path.name + ".tmp")
    with tmp.open("wb") as fh:
        for body in bodies:
            fh.write(body + b"\n")
    os.replace(tmp, requests_path)
    tmp = events_path.with_name(events_path.name + ".tmp")
    pq.write_table(events.cast(DRY_RUN_EVENTS_SCHEMA), tmp)
    os.replace(tmp, events_path)
    return [requests_path, events_path]


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
    out: Path = DEFAULT_DRY_RUN_DIR,
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

    ``dry_run`` writes the request bodies under ``out`` and records nothing. ``since`` keeps events whose
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
            _prepare_log_table(con)
            _recover_inflight(con, journal)
        if not _table_exists(con, "marts", "meta_capi_events"):
            raise ExportUsageError(
                f"{warehouse} has no table marts.meta_capi_events: run `dbt build` (or `convopt run`) first"
            )
        ids = sorted(set(conversion_ids))
        since_utc = _utc(since)
        params: dict[str, Any] = {
            "now": int(clock()),
            "margin": EXPIRY_MARGIN_SECONDS,
            "max_event_bytes": max_request_bytes - overhead - 1,
            "retry_failed": retry_failed,
        }
        if ids:
            params["conversion_ids"] = ids
        if since_utc is not None:
            params["since"] = int(since_utc.timestamp())
        if limit is not None:
            params["limit"] = limit
        sql = _select_sql(con, conversion_ids=bool(ids), since=since_utc is not None, limit=limit is not None)
        rows = con.sql(sql, params=params).to_arrow_table()
        _check_unique(rows)
        if ids:
            _explain_requested(con, ids, summary)
        # A dry run never turns the payloads into Python objects: its files are written from Arrow.
        data = {
            name: rows.column(name).to_pylist()
            for name in rows.column_names
            if not (dry_run and name == "payload")
        }
        _record_unsendable(con, data, summary)
        send_idx = [i for i, d in enumerate(data["disposition"]) if d == "send"]
        data["payload_size"] = pc.fill_null(pc.binary_length(rows.column("payload")), 0).to_pylist()
        if not dry_run:
            data["payload_bytes"] = [p.encode() if p is not None else b"" for p in data["payload"]]
        plan = _plan(
            data, send_idx, batch_size=batch_size, max_request_bytes=max_request_bytes, overhead=overhead
        )
        summary.pixels = len({pixel for pixel, _ in plan})
        if dry_run:
            _dry_run(out, rows, data, plan, summary)
            return summary
        assert client is not None
        _send_all(
            con, client, data, plan, summary, journal, retry, rng or random.Random(), sleep, progress, console
        )
        return summary
    finally:
        con.close()
        if client is not None:
            client.close()


def _check_unique(rows: pa.Table) -> None:
    ids = rows.column("conversion_id")
    if len(ids) != len(ids.unique()):
        raise ExportUsageError(
            "marts.meta_capi_events has several rows for one conversion_id: fix the model "
            "(its unique test) before exporting, or a conversion could be sent twice"
        )


def _explain_requested(con: duckdb.DuckDBPyConnection, ids: list[str], summary: ExportSummary) -> None:
    """Tell which requested conversion ids are not in the mart, and which were delivered before."""
    in_mart = con.execute(
        "select conversion_id from marts.meta_capi_events where conversion_id in (select unnest(?))", [ids]
    ).fetchall()
    summary.not_found = sorted(set(ids) - {r[0] for r in in_mart})
    if _table_exists(con, "raw", "meta_delivery_log"):
        delivered = con.execute(
            "select distinct conversion_id from raw.meta_delivery_log "
            "where status = 'sent' and conversion_id in (select unnest(?))",
            [ids],
        ).fetchall()
        summary.already_delivered = sorted(r[0] for r in delivered)


def _record_unsendable(
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
    _append_log(
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


def _plan(
    data: dict[str, list[Any]], send_idx: list[int], *, batch_size: int, max_request_bytes: int, overhead: int
) -> list[tuple[str, list[int]]]:
    """(pixel_id, row indices) per request, in order: rows are sorted by pixel, so each pixel is one run."""
    plan: list[tuple[str, list[int]]] = []
    start = 0
    while start < len(send_idx):
        pixel = data["pixel_id"][send_idx[start]]
        end = start
        while end < len(send_idx) and data["pixel_id"][send_idx[end]] == pixel:
            end += 1
        group = send_idx[start:end]
        sizes = [data["payload_size"][i] for i in group]
        for r in plan_batches(
            sizes, batch_size=batch_size, max_request_bytes=max_request_bytes, overhead=overhead
        ):
            plan.append((pixel, group[r.start : r.stop]))
        start = end
    return plan


def _dry_run(
    out: Path,
    rows: pa.Table,
    data: dict[str, list[Any]],
    plan: list[tuple[str, list[int]]],
    summary: ExportSummary,
) -> None:
    """The request bodies and events the plan would send, built from the Arrow rows (same bytes as sent)."""
    order = pa.array([i for _, idx in plan for i in idx], type=pa.int64())
    events = pa.table(
        {
            "batch_no": pa.array(
                [batch_no for batch_no, (_, idx) in enumerate(plan, start=1) for _ in idx], type=pa.int32()
            ),
            **{
                name: rows.column(name).take(order).cast(pa.string())
                for name in ("pixel_id", "conversion_id", "event_id", "payload")
            },
        }
    )
    # Each body is build_request_body(payloads): its envelope around the payloads joined by commas,
    # here joined by Arrow (a list per request over the payloads in plan order).
    envelope = build_request_body([], summary.test_event_code)
    prefix, suffix = envelope[: len(b'{"data":[')], envelope[len(b'{"data":[') :]
    offsets = [0]
    for _, idx in plan:
        offsets.append(offsets[-1] + len(idx))
    payloads = events.column("payload").combine_chunks().cast(pa.large_string())
    joined = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), payloads),
        pa.scalar(",", pa.large_string()),
    )
    bodies = (prefix + body.as_buffer().to_pybytes() + suffix for body in joined)
    summary.sent = len(events)
    summary.dropped_user_data_fields = sum(
        data["dropped_user_data_fields"][i] for _, idx in plan for i in idx
    )
    summary.requests = len(plan)
    summary.dry_run_files = _write_dry_run(out, bodies, events)


def _send_all(
    con: duckdb.DuckDBPyConnection,
    client: GraphClient,
    data: dict[str, list[Any]],
    plan: list[tuple[str, list[int]]],
    summary: ExportSummary,
    journal: Path,
    retry: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], None],
    progress: bool,
    console: Console | None,
) -> None:
    sender = _Sender(
        con=con, client=client, rows=data, summary=summary, journal=journal, retry=retry, rng=rng, sleep=sleep
    )
    total = sum(len(idx) for _, idx in plan)
    bar = Progress(
        TextColumn("[bold]export-meta[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        disable=not progress,
    )
    skip_pixels: set[str] = set()
    with bar:
        task = bar.add_task("events", total=total)
        per_pixel_no: Counter[str] = Counter()
        for n, (pixel, idx) in enumerate(plan):
            if pixel in skip_pixels:
                summary.not_attempted += len(idx)
                bar.advance(task, len(idx))
                continue
            per_pixel_no[pixel] += 1
            try:
                sender.deliver(pixel, idx, f"{summary.run_id}/{pixel}/{per_pixel_no[pixel]}")
            except _Abort as stop:
                summary.aborted = str(stop)
                summary.not_attempted += sum(i not in sender.settled for i in idx)
                log.error("%s", stop)
                if stop.whole_run:
                    summary.not_attempted += sum(len(rest) for _, rest in plan[n + 1 :])
                    break
                skip_pixels.add(pixel)
            bar.advance(task, len(idx))
