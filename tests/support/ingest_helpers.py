"""Records and landing files for the ingest tests, and the raw tables read back.

``record(stream, n, **overrides)`` is a valid record of a stream with some fields changed (``MISSING``
leaves a field out); the ``write_*`` functions put records in a landing file of the format its name says.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl

MISSING = object()  # a field left out of the record entirely
NOON = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
NOON_MS = int(NOON.timestamp() * 1000)

BASE = {
    "events": {
        "event_id": "e",
        "person_id": "p1",
        "event_name": "ad_click",
        "event_time": "2026-03-01T12:00:00Z",
        "source": "pixel",
    },
    "conversions": {
        "event_id": "c",
        "person_id": "p1",
        "conversion_type": "purchase",
        "conversion_source": "capi",
        "value_cents": 1999,
        "currency": "USD",
        "conversion_time": "2026-03-01T12:00:00Z",
    },
    "ad_spend": {
        "date": "2026-03-01",
        "campaign_id": "cmp1",
        "spend_cents": 1000,
        "currency": "USD",
        "impressions": 100,
        "clicks": 10,
    },
    "adjustments": {
        "adjustment_id": "a",
        "conversion_event_id": "c1",
        "conversion_type": "purchase",
        "adjustment_type": "refund",
        "amount_cents": 1999,
        "currency": "USD",
        "adjusted_at": "2026-03-05T12:00:00Z",
    },
    "identities": {
        "anonymous_id": "anon-cookie",
        "person_id": "p1",
        "observed_at": "2026-03-01T12:00:00Z",
        "source": "signup",
    },
}


def record(stream: str, n: int = 1, **overrides: object) -> dict:
    """A valid record of ``stream`` with ``overrides`` (MISSING drops a field)."""
    row = {**BASE[stream], **overrides}
    if stream in ("events", "conversions") and "event_id" not in overrides:
        row["event_id"] = f"{row['event_id']}{n}"
    if stream == "adjustments" and "adjustment_id" not in overrides:
        row["adjustment_id"] = f"{row['adjustment_id']}{n}"
    if stream == "identities" and "anonymous_id" not in overrides:
        row["anonymous_id"] = f"{row['anonymous_id']}{n}"
    return {k: v for k, v in row.items() if v is not MISSING}


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = fieldnames or list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_events(path: Path, rows: list[dict]) -> Path:
    """Write records in the format the file name's extension says."""
    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    if path.suffix == ".csv":
        return write_csv(path, rows)
    pl.DataFrame(rows).write_parquet(path)
    return path


def rows(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple]:
    return con.execute(query).fetchall()


def count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"select count(*) from {table}").fetchall()[0][0]
