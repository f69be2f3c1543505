"""marts.meta_capi_events end to end: demo data -> dbt build -> `convopt export-meta` (dry run, fake Graph API)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from fake_graph_api import FakeGraphAPI
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.dbt_runner import run_dbt
from pipelines.generate import GeneratorConfig, generate_dataset
from pipelines.ingest import ingest_paths
from pipelines.meta.export import export_meta

pytestmark = pytest.mark.dbt


# Conversions written here, next to the generated ones: an hour old (inside Meta's window), purchases
# from capi (the optimization rule for capi sends them). BAD_EMAIL and BAD_PHONE cannot be normalized.
BAD_EMAIL, BAD_PHONE = "jane.doe-at-example.com", "555-CALL-NOW"
WEBSITE = {
    "event_source_url": "https://shop.example/checkout",
    "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
}


def write_handmade_conversions(path: Path) -> None:
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    base = {
        "person_id": "handmade-person",
        "conversion_type": "purchase",
        "conversion_source": "capi",
        "value_cents": 4999,
        "currency": "USD",
        "conversion_time": now_ms - 3_600_000,
        "meta_pixel_id": "1234567890",
    }
    rows = [
        # Two identity values that cannot be normalized, one that can: em and ph are dropped.
        {
            **base,
            "event_id": "hand-dropped",
            "email": BAD_EMAIL,
            "phone": BAD_PHONE,
            "first_name": "Jane",
            **WEBSITE,
        },
        # A website event Meta would reject: no client_user_agent.
        {
            **base,
            "event_id": "hand-no-agent",
            "email": "jane@example.com",
            "event_source_url": WEBSITE["event_source_url"],
        },
        # Padded with a tab and a line break: normalized like the bare value.
        {**base, "event_id": "hand-padded", "email": "\tJane@Example.com\n", **WEBSITE},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # Data ending today, so that part of it is inside Meta's 7-day window at build and export time.
    root = tmp_path_factory.mktemp("meta_capi")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=13)
    generate_dataset(landing, GeneratorConfig(persons=300, seed=11, start=start, days=14))
    write_handmade_conversions(landing / "conversions_handmade.jsonl")
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


def handmade(warehouse: Path, event_id: str) -> dict:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        table = con.sql(
            "select * from marts.meta_capi_events where event_id = ?", params=[event_id]
        ).to_arrow_table()
    (row,) = table.to_pylist()
    return row


def test_values_that_cannot_be_normalized_are_counted_and_never_sent(built: dict) -> None:
    row = handmade(built["warehouse"], "hand-dropped")
    user_data = json.loads(row["payload"])["user_data"]

    assert row["status"] == "ready"
    assert (row["dropped_user_data_fields"], row["dropped_user_data_field_names"]) == (2, "em,ph")
    assert "em" not in user_data and "ph" not in user_data and "fn" in user_data
    assert BAD_EMAIL not in row["payload"] and "CALL" not in row["payload"]
    ((conversion_event_count,),) = query(
        built["warehouse"],
        "select dropped_user_data_fields from marts.conversion_event where event_id = 'hand-dropped'",
    )
    assert conversion_event_count == 2


def test_padded_email_hashes_like_the_bare_one(built: dict) -> None:
    row = handmade(built["warehouse"], "hand-padded")
    user_data = json.loads(row["payload"])["user_data"]

    assert row["dropped_user_data_fields"] == 0
    assert user_data["em"] == [hashlib.sha256(b"jane@example.com").hexdigest()]


def test_website_event_without_user_agent_is_skipped_logged_once_and_never_sent(built: dict) -> None:
    row = handmade(built["warehouse"], "hand-no-agent")
    assert row["status"] == "skipped"
    assert row["status_reason"] == (
        "website event without client_user_agent (Meta requires both for action_source website)"
    )
    # A real export to the fake Graph API, on a copy (the other tests read the built warehouse).
    warehouse = built["root"] / "export_copy.duckdb"
    shutil.copy(built["warehouse"], warehouse)
    server = FakeGraphAPI().start()
    try:
        summary = export_meta(
            warehouse, dry_run=False, access_token="test-token", graph_base_url=server.base_url
        )
        again = export_meta(
            warehouse, dry_run=False, access_token="test-token", graph_base_url=server.base_url
        )
        sent_event_ids = {event_id for request in server.requests for event_id in request.event_ids}
    finally:
        server.stop()

    assert summary.ok and summary.sent > 0 and summary.skipped > 0
    assert summary.dropped_user_data_fields >= 2  # hand-dropped was sent without em and ph
    assert (again.sent, again.skipped, again.expired) == (0, 0, 0)
    assert "hand-no-agent" not in sent_event_ids and "hand-dropped" in sent_event_ids
    log = query(
        warehouse,
        "select status, error_message from raw.meta_delivery_log where conversion_id = "
        f"'{row['conversion_id']}'",
    )
    assert log == [("skipped", row["status_reason"])]


def test_a_user_data_value_that_is_not_an_array_of_sha256_hashes_fails_the_hash_test(built: dict) -> None:
    """assert_meta_capi_user_data_hashes_are_sha256 on payloads altered after the build: an email sent as a
    string instead of an array, a phone hash in upper case. Both are reported by conversion and field; the
    untouched payloads are not."""
    root = built["root"]
    warehouse = root / "hashes_copy.duckdb"
    shutil.copy(built["warehouse"], warehouse)
    with duckdb.connect(str(warehouse)) as con:
        picked = con.execute(
            "select conversion_id from marts.meta_capi_events "
            "where json_type(payload, '$.user_data.em') = 'ARRAY' and json_type(payload, '$.user_data.ph') = 'ARRAY' "
            "order by conversion_id limit 2"
        ).fetchall()
        assert len(picked) == 2
        (as_string,), (upper_case,) = picked
        con.execute(
            "update marts.meta_capi_events set payload = json_merge_patch(payload, "
            "json_object('user_data', json_object('em', json_extract_string(payload, '$.user_data.em[0]')))) "
            "where conversion_id = ?",
            [as_string],
        )
        con.execute(
            "update marts.meta_capi_events set payload = json_merge_patch(payload, "
            "json_object('user_data', json_object('ph', [upper(json_extract_string(payload, '$.user_data.ph[0]'))]))) "
            "where conversion_id = ?",
            [upper_case],
        )
    target = root / "target-hashes"
    result = run_dbt(
        ["test", "--select", "assert_meta_capi_user_data_hashes_are_sha256"],
        warehouse=warehouse,
        target_path=target,
        capture=True,
    )
    assert result.returncode != 0
    results = json.loads((target / "run_results.json").read_text())["results"]
    (outcome,) = [r for r in results if r["unique_id"].startswith("test.")]  # the on-run hooks are results too
    assert (outcome["status"], outcome["failures"]) == ("fail", 2)
    compiled = next((target / "compiled").rglob("assert_meta_capi_user_data_hashes_are_sha256.sql")).read_text()
    failing = sorted((row[0], row[1], row[2]) for row in query(warehouse, compiled))
    assert failing == sorted([(as_string, "em", "VARCHAR"), (upper_case, "ph", "ARRAY")])
