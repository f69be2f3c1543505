"""The delivery log ``raw.meta_delivery_log``: appending outcomes, delivery state, in-flight journal.

Log semantics (append-only, one row per event per request, or per recorded status): a conversion is
*delivered* once it has a ``sent`` row. Otherwise its state is its rows: ``failed`` with
``is_retryable = false`` is final (Meta rejected that event; it is sent again only with ``retry_failed`` /
``--retry-failed``); ``failed`` with ``is_retryable = true`` (server error, throttling, retries exhausted,
a batch rejected before it was split, token/pixel rejected) and ``unknown`` (the request may have reached
Meta but its response did not arrive) are sent again by the next run, with the same event_id. ``attempt``
counts the requests that carried the event so far, across runs (a status recorded without a request
repeats the count, 0 if there was none). ``batch_id`` is ``<run_id>/<pixel_id>/<n>``; the halves of a
split batch are ``<n>.1`` and ``<n>.2``.

In-flight journal: before each request, a small file next to the warehouse names the request and its
events; it is removed once the outcome is logged. A run killed meanwhile leaves it behind, and the next run
records those events as ``unknown`` (the possible double count stays visible), then resends that batch
first, on its own, with the same event_ids, if it is still inside the resend window (see
``pipelines.meta.export``).
The table itself is created with the other raw tables (``pipelines.warehouse``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.warehouse import ensure_raw_schema

log = logging.getLogger(__name__)

INFLIGHT_SUFFIX = ".export-meta-inflight.json"
DELIVERY_STATE_VIEW = ("intermediate", "int_meta_delivery_state")
DELIVERY_STATE_COLUMNS = (
    "conversion_id",
    "is_sent",
    "has_expired_row",
    "has_skipped_row",
    "has_final_failure",
    "had_unknown",
    "last_attempt",
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


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether the warehouse has this table or view."""
    ((found,),) = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(found)


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    """The column names of a table or view (empty if it does not exist)."""
    rows = con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return {r[0] for r in rows}


def prepare_log_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create raw.* if missing and add the columns newer than an existing log table."""
    ensure_raw_schema(con)
    for name, typ in ADDED_LOG_COLUMNS.items():
        con.execute(f"alter table raw.meta_delivery_log add column if not exists {name} {typ}")


def append_log(
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


def delivery_state_relation(con: duckdb.DuckDBPyConnection) -> str:
    """The Meta delivery state per conversion: a relation name or a parenthesized query to join on
    ``conversion_id``, with at least the ``DELIVERY_STATE_COLUMNS``.

    The dbt view ``intermediate.int_meta_delivery_state`` is the definition (one row per conversion, read
    live from the log through ``staging.stg_meta_delivery_log``). The inline query over
    raw.meta_delivery_log below is only for warehouses built before that view existed; with no log at all,
    no conversion has a state.
    """
    schema, view = DELIVERY_STATE_VIEW
    if table_exists(con, schema, view):
        return f"{schema}.{view}"
    if table_exists(con, "raw", "meta_delivery_log"):
        log_columns = table_columns(con, "raw", "meta_delivery_log")
        retryable = "coalesce(is_retryable, false)" if "is_retryable" in log_columns else "false"
        return f"""(
        select
            conversion_id,
            bool_or(status = 'sent') as is_sent,
            bool_or(status = 'expired') as has_expired_row,
            bool_or(status = 'skipped') as has_skipped_row,
            bool_or(status = 'failed' and not {retryable}) as has_final_failure,
            bool_or(status = 'unknown') as had_unknown,
            max(attempt) as last_attempt
        from raw.meta_delivery_log
        group by conversion_id
    )"""
    return """(
        select
            null::varchar as conversion_id, false as is_sent, false as has_expired_row,
            false as has_skipped_row, false as has_final_failure, false as had_unknown, 0 as last_attempt
        where false
    )"""


def inflight_journal_path(warehouse: Path) -> Path:
    """The small file that names the request in flight; it sits next to the warehouse file (the real
    one: symlinks and relative spellings are resolved, so every name of a warehouse has one journal)."""
    real = Path(warehouse).resolve()
    return real.with_name(real.name + INFLIGHT_SUFFIX)


def journal_candidates(warehouse: Path) -> list[Path]:
    """Journals a killed run may have left for this warehouse: the one beside the real file, and one
    beside the path as given (where versions that did not resolve symlinks wrote it)."""
    given = Path(warehouse).absolute()
    paths = [inflight_journal_path(warehouse), given.with_name(given.name + INFLIGHT_SUFFIX)]
    return list(dict.fromkeys(paths))


def write_inflight_journal(
    journal: Path,
    *,
    run_id: str,
    pixel_id: str,
    batch_id: str,
    requested_at: dt.datetime,
    test_event_code: str | None,
    as_of: dt.datetime | None,
    conversion_ids: Sequence[str],
    event_ids: Sequence[str],
    attempts: Sequence[int],
) -> None:
    """Name the request about to be sent, durably, so a kill during it is recorded as unknown later."""
    entry = {
        "run_id": run_id,
        "pixel_id": pixel_id,
        "batch_id": batch_id,
        "requested_at": requested_at.isoformat(),
        "test_event_code": test_event_code,
        "as_of": as_of.isoformat() if as_of else None,
        "rows": [
            {"conversion_id": conversion_id, "event_id": event_id, "attempt": attempt}
            for conversion_id, event_id, attempt in zip(conversion_ids, event_ids, attempts, strict=True)
        ],
    }
    tmp = journal.with_name(journal.name + ".tmp")
    with tmp.open("w") as fh:
        json.dump(entry, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, journal)


@dataclass
class InFlight:
    """The request a killed run left in flight: its batch, when it was sent, its events in order."""

    batch_id: str
    pixel_id: str
    requested_at: dt.datetime
    conversion_ids: list[str]


def recover_inflight(con: duckdb.DuckDBPyConnection, journal: Path) -> InFlight | None:
    """Record as ``unknown`` the request a killed run left in flight, and return it (None if none).

    A half-written journal (``.tmp``: the run was killed while naming the request, before sending it)
    is removed.
    """
    journal.with_name(journal.name + ".tmp").unlink(missing_ok=True)
    if not journal.exists():
        return None
    try:
        entry = json.loads(journal.read_text())
        rows = entry["rows"]
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable in-flight journal %s", journal)
        journal.unlink(missing_ok=True)
        return None
    n = len(rows)
    requested_at = dt.datetime.fromisoformat(entry["requested_at"])
    as_of = dt.datetime.fromisoformat(entry["as_of"]) if entry.get("as_of") else None
    append_log(
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
    return InFlight(entry["batch_id"], entry["pixel_id"], requested_at, [r["conversion_id"] for r in rows])


def first_unknown_requests(
    con: duckdb.DuckDBPyConnection, conversion_ids: Sequence[str]
) -> dict[str, dt.datetime]:
    """Per conversion: when the earliest request whose outcome is unknown was made (the earliest time
    Meta may have received the event)."""
    if not conversion_ids:
        return {}
    con.register("_unknown_ids", pa.table({"conversion_id": pa.array(list(conversion_ids), pa.string())}))
    try:
        rows = con.execute(
            "select l.conversion_id, min(l.requested_at) from raw.meta_delivery_log as l "
            "semi join _unknown_ids as i on l.conversion_id = i.conversion_id "
            "where l.status = 'unknown' and l.requested_at is not null group by l.conversion_id"
        ).fetchall()
    finally:
        con.unregister("_unknown_ids")
    return {conversion_id: at for conversion_id, at in rows}
