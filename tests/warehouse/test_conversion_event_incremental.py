"""conversion_event built incrementally in two batches equals a full refresh, row for row.

Raw conversions are loaded in two batches with `dbt build` after each. The second batch carries a
late duplicate of a first-batch conversion (it must update that row, not add one), a new
conversion, an exact re-send, a copy that re-anchors a key (earlier than every known copy, more
than 48 h before them), and a Meta delivery-log row. The table after the two incremental builds
must equal the table after `dbt build --full-refresh` (EXCEPT both ways).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pytest

from pipelines.contract import IDENTITY_FIELDS, column_names
from pipelines.warehouse import connect, ensure_raw_schema

pytestmark = pytest.mark.dbt

PROJECT_DIR = Path(__file__).resolve().parents[2]
SELECTION = [
    "--select",
    "+conversion_event",
    "--exclude",
    "test_type:unit",
    "--indirect-selection",
    "cautious",
]


def run_dbt(args: Sequence[str], warehouse: Path, target: Path) -> None:
    """Run ``dbt <args>`` on the project in a child process (which releases the DuckDB file)."""
    beside = Path(sys.executable).parent / "dbt"
    env = {
        **os.environ,
        "CONVOPT_WAREHOUSE": str(warehouse),
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    command = [str(beside) if beside.exists() else "dbt", *args, "--project-dir", str(PROJECT_DIR)]
    result = subprocess.run(command, cwd=PROJECT_DIR, env=env, text=True, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def conversion(event_id: str, source: str, time: str, **fields: object) -> dict[str, object]:
    return {
        "event_id": event_id,
        "person_id": f"person-{event_id}",
        "conversion_type": "purchase",
        "conversion_source": source,
        "conversion_time": time,
        **fields,
    }


def load(con: duckdb.DuckDBPyConnection, load_id: str, loaded_at: str, rows: list[dict[str, object]]) -> None:
    """Append rows to raw.conversions as the loader would (with lineage columns)."""
    names = column_names("conversions")
    lineage = ["_load_id", "_source_file", "_source_row", "_loaded_at"]
    placeholders = ", ".join("?" * (len(names) + len(lineage)))
    for number, row in enumerate(rows, start=1):
        values = [row.get(name) for name in names] + [load_id, f"{load_id}.jsonl", number, loaded_at]
        con.execute(
            f"insert into raw.conversions ({', '.join(names + lineage)}) values ({placeholders})", values
        )


BATCH_1 = [
    conversion("late-dup", "pixel", "2025-03-01 10:00:00+00", value_cents=0, email="Late.Dup@Example.com"),
    conversion("plain", "capi", "2025-03-01 11:00:00+00", value_cents=1250, currency="EUR", campaign_id="c7"),
    conversion("resend", "webhook", "2025-03-02 09:00:00+00", value_cents=4999, currency="GBP"),
    conversion("reanchor", "pixel", "2025-03-05 10:00:00+00", value_cents=900, currency="USD"),
    conversion("reanchor", "capi", "2025-03-05 11:00:00+00", value_cents=900, currency="USD", ad_id="a1"),
    conversion("two-clusters", "pixel", "2025-03-01 08:00:00+00", value_cents=300, currency="BRL"),
    conversion("two-clusters", "pixel", "2025-03-04 08:00:00+00", value_cents=300, currency="BRL"),
]
BATCH_2 = [
    # A late CAPI copy of `late-dup`, 3 h after the pixel copy: fills campaign and value.
    conversion(
        "late-dup",
        "capi",
        "2025-03-01 13:00:00+00",
        value_cents=2999,
        currency="EUR",
        campaign_id="c1",
        phone="(202) 555-0123",
        country="US",
    ),
    conversion("new-one", "pixel", "2025-03-03 12:00:00+00", value_cents=100, currency="CAD"),
    conversion("resend", "webhook", "2025-03-02 09:00:00+00", value_cents=4999, currency="GBP"),
    # 72 h before the known copies of `reanchor`: the key now has two clusters, ids change.
    conversion("reanchor", "capi", "2025-03-02 10:00:00+00", value_cents=900, currency="USD"),
    # A copy of the second cluster of `two-clusters`, within 48 h of its anchor.
    conversion(
        "two-clusters", "capi", "2025-03-05 07:00:00+00", value_cents=300, currency="BRL", ad_set_id="s2"
    ),
]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("conversion_event")
    warehouse, target = root / "warehouse.duckdb", root / "target"
    con = connect(warehouse)
    ensure_raw_schema(con)
    load(con, "load-1", "2025-03-06 00:00:00+00", BATCH_1)
    con.close()
    run_dbt(["build", *SELECTION], warehouse, target)

    con = connect(warehouse)
    plain_id = con.execute("select id from marts.conversion_event where event_id = 'plain'").fetchone()[0]
    load(con, "load-2", "2025-03-07 00:00:00+00", BATCH_2)
    con.execute(
        """
        insert into raw.meta_delivery_log (conversion_id, event_id, batch_id, attempt, status, fbtrace_id,
            recorded_at)
        values (?, 'plain', 'batch-1', 1, 'sent', 'trace-xyz', timestamptz '2025-03-06 12:00:00+00')
        """,
        [plain_id],
    )
    con.close()
    run_dbt(["build", *SELECTION], warehouse, target)
    compiled = (target / "run" / "convopt" / "models" / "marts" / "conversion_event.sql").read_text()

    con = connect(warehouse)
    con.execute("create schema if not exists scratch")
    con.execute("create table scratch.incremental as select * from marts.conversion_event")
    con.close()
    run_dbt(["build", "--full-refresh", *SELECTION], warehouse, target)
    return {"warehouse": warehouse, "compiled": compiled}  # type: ignore[dict-item]


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_second_build_was_incremental(builds: dict) -> None:
    # dbt ran the incremental statement (replace the changed keys' rows), not a table rebuild.
    statement = " ".join(builds["compiled"].split())
    assert 'delete from "warehouse"."marts"."conversion_event" where ( conversion_key) in (' in statement


def test_incremental_equals_full_refresh(builds: dict) -> None:
    only_incremental = query(
        builds["warehouse"], "select * from scratch.incremental except select * from marts.conversion_event"
    )
    only_full_refresh = query(
        builds["warehouse"], "select * from marts.conversion_event except select * from scratch.incremental"
    )
    assert only_incremental == []
    assert only_full_refresh == []
    ((incremental_rows,),) = query(builds["warehouse"], "select count(*) from scratch.incremental")
    ((full_rows,),) = query(builds["warehouse"], "select count(*) from marts.conversion_event")
    assert incremental_rows == full_rows == 8


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_late_duplicate_updates_its_conversion(builds: dict) -> None:
    rows = query(
        builds["warehouse"],
        """
        select conversion_source, reported_by_sources, copies_count, campaign_id, value_cents, currency,
            conversion_time, em_sha256, ph_sha256
        from scratch.incremental where event_id = 'late-dup'
        """,
    )
    assert len(rows) == 1
    source, sources, copies, campaign, value, currency, time, email_hash, phone_hash = rows[0]
    assert (source, sources, copies, campaign) == ("pixel", "capi,pixel", 2, "c1")
    assert (value, currency) == (2999, "EUR")
    assert time.isoformat().startswith("2025-03-01T10:00:00")
    # The kept pixel copy's email and the late CAPI copy's phone, Meta-normalized, as hashlib hashes them.
    assert email_hash == sha256("late.dup@example.com")
    assert phone_hash == sha256("12025550123")


def test_resend_and_reanchor_and_second_cluster(builds: dict) -> None:
    resend = query(
        builds["warehouse"], "select copies_count from scratch.incremental where event_id = 'resend'"
    )
    assert resend == [(2,)]
    reanchor = query(
        builds["warehouse"],
        """
        select id = conversion_key, copies_count, reported_by_sources
        from scratch.incremental where event_id = 'reanchor' order by conversion_time
        """,
    )
    assert reanchor == [(True, 1, "capi"), (False, 2, "capi,pixel")]
    clusters = query(
        builds["warehouse"],
        """
        select copies_count, ad_set_id from scratch.incremental
        where event_id = 'two-clusters' order by conversion_time
        """,
    )
    assert clusters == [(1, None), (2, "s2")]


def test_delivery_log_marks_conversion_optimized(builds: dict) -> None:
    rows = query(
        builds["warehouse"],
        "select event_id, meta_conversion_id from scratch.incremental where is_optimized order by event_id",
    )
    assert rows == [("plain", "trace-xyz")]


def test_no_clear_pii_in_the_mart(builds: dict) -> None:
    columns = {
        name
        for (name,) in query(
            builds["warehouse"],
            "select column_name from information_schema.columns where table_name = 'conversion_event'",
        )
    }
    assert not columns & IDENTITY_FIELDS
