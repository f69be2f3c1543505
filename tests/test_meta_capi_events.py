"""marts.meta_capi_events end to end: demo data -> dbt build -> `convopt export-meta --dry-run`."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.dbt_runner import run_dbt
from pipelines.generate import GeneratorConfig, generate_dataset
from pipelines.ingest import ingest_paths

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # Data ending today, so that part of it is inside Meta's 7-day window at build and export time.
    root = tmp_path_factory.mktemp("meta_capi")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=13)
    generate_dataset(landing, GeneratorConfig(persons=300, seed=11, start=start, days=14))
    ingest_paths([landing], warehouse=warehouse, progress=False)
    build = run_dbt(["build"], warehouse=warehouse, target_path=root / "target", capture=True)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]
    return {"root": root, "warehouse": warehouse}


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_every_status_occurs_and_only_ready_rows_lack_a_reason(built: dict) -> None:
    rows = dict(
        query(
            built["warehouse"],
            "select status, count(*) from marts.meta_capi_events "
            "where (status = 'ready') = (status_reason is null) group by status",
        )
    )
    assert set(rows) == {"ready", "expired", "skipped"}
    ((total,),) = query(built["warehouse"], "select count(*) from marts.meta_capi_events")
    assert sum(rows.values()) == total


def test_dry_run_export_writes_the_ready_payloads(built: dict) -> None:
    out = built["root"] / "dry_run"
    result = CliRunner().invoke(
        app,
        [
            "export-meta",
            "--dry-run",
            "--warehouse",
            str(built["warehouse"]),
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    requests = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    sent = [event for request in requests for event in request["data"]]
    ready = Counter(
        json.dumps(json.loads(payload), sort_keys=True)
        for (payload,) in query(
            built["warehouse"], "select payload from marts.meta_capi_events where status = 'ready'"
        )
    )
    # The exporter rechecks the window at send time with a 10-minute margin: at most a few fewer.
    assert 0 < len(sent) <= sum(ready.values())
    assert not Counter(json.dumps(event, sort_keys=True) for event in sent) - ready
    for event in sent:
        assert {"event_name", "event_time", "event_id", "action_source", "user_data"} <= event.keys()
        assert all(value is not None for value in event["user_data"].values())
        assert "access_token" not in json.dumps(event)
