"""For the export-meta tests: a hand-made marts.meta_capi_events, export runs against the fake Graph API
(tests/support/fake_graph_api.py), and raw.meta_delivery_log read back."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
from fake_graph_api import FakeGraphAPI

from pipelines.meta.export import export_meta
from pipelines.meta.graph_client import RetryPolicy
from pipelines.meta.results import ExportSummary
from pipelines.warehouse import ensure_raw_schema

TOKEN = "EAAFakeTok3n-ZZQ9-do-not-leak-7f3c9e21"
PIXEL = "1234567890"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_seconds=0.001, max_delay_seconds=0.01)
TIMEOUT = httpx.Timeout(10.0)
# A "slow" answer comes well after the short read timeout; a normal answer comes well within it.
SHORT_READ_TIMEOUT, SLOW_ANSWER_SECONDS = httpx.Timeout(10.0, read=0.8), 2.5
HOUR = 3600


def event_row(
    n: int,
    *,
    pixel_id: str = PIXEL,
    status: str = "ready",
    status_reason: str | None = None,
    age_seconds: int = 2 * HOUR,
    padding: int = 0,
) -> dict[str, Any]:
    """One row of marts.meta_capi_events, with the payload exactly as the dbt model would write it."""
    event_time = int(time.time()) - age_seconds - n  # older rows first when sorted by event_time
    event = {
        "event_name": "Purchase",
        "event_time": event_time,
        "event_id": f"evt-{n:05d}",
        "action_source": "website",
        "event_source_url": "https://shop.example/checkout",
        "user_data": {"em": [f"{n:064x}"], "client_user_agent": "Mozilla/5.0"},
        "custom_data": {"currency": "USD", "value": 29.99, "note": "x" * padding},
    }
    return {
        "conversion_id": f"conv-{n:05d}",
        "event_id": event["event_id"],
        "pixel_id": pixel_id,
        "event_name": "Purchase",
        "event_time": event_time,
        "action_source": "website",
        "status": status,
        "status_reason": status_reason,
        "payload": json.dumps(event, separators=(",", ":")),
    }


def make_warehouse(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A warehouse with the raw schema and a hand-made marts.meta_capi_events."""
    con = duckdb.connect(str(path))
    ensure_raw_schema(con)
    con.execute("create schema if not exists marts")
    con.execute(
        """
        create or replace table marts.meta_capi_events (
            conversion_id varchar, event_id varchar, pixel_id varchar, event_name varchar, event_time bigint,
            action_source varchar, status varchar, status_reason varchar, payload varchar
        )
        """
    )
    if rows:
        table = pa.Table.from_pylist(rows)
        con.register("_rows", table)
        con.execute("insert into marts.meta_capi_events by name select * from _rows")
    con.close()
    return path


def run_export(warehouse: Path, fake: FakeGraphAPI, **options: Any) -> ExportSummary:
    settings: dict[str, Any] = {
        "dry_run": False,
        "access_token": TOKEN,
        "graph_base_url": fake.base_url,
        "retry": FAST_RETRY,
        "timeout": TIMEOUT,
        "rng": random.Random(1),
    }
    settings.update(options)
    return export_meta(warehouse, **settings)


def log_rows(warehouse: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        table = con.sql("select * from raw.meta_delivery_log order by recorded_at, batch_id, conversion_id")
        return table.to_arrow_table().to_pylist()


def sent_counts(warehouse: Path) -> Counter[str]:
    return Counter(r["conversion_id"] for r in log_rows(warehouse) if r["status"] == "sent")


def statuses_of(warehouse: Path, conversion_id: str) -> list[str]:
    rows = [r for r in log_rows(warehouse) if r["conversion_id"] == conversion_id]
    return [r["status"] for r in sorted(rows, key=lambda r: (r["attempt"], r["recorded_at"]))]
