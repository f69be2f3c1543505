"""`convopt serve` as a client sees it: a real server process on a free loopback port, a real HTTP client,
a warehouse built by `convopt run` (a copy of the session's demo warehouse, so the tests may write)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import duckdb
import httpx
import pytest
from api_server import REPO, free_port, running_server, start_server
from fake_graph_api import FakeGraphAPI
from rich.console import Console

from pipelines.api import conversion_id, publish_snapshot
from pipelines.api.collect import MAX_BATCH_ROWS, MAX_BODY_BYTES
from pipelines.run import RunOptions, run_pipeline

pytestmark = pytest.mark.dbt

# The feature document's REST example, as written there.
DOCUMENT_EXAMPLE = {
    "person_id": "uuid...",
    "conversion_type": "purchase",
    "conversion_source": "capi",
    "value_cents": 2999,
    "campaign_id": "campaign_123",
}
TOKEN, READ_TOKEN = "t0ken-for-writing-" + "x" * 16, "t0ken-for-reading-" + "y" * 16


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def site(demo_run: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A private copy of the demo warehouse with its snapshot, an empty landing folder, a server on both."""
    root = tmp_path_factory.mktemp("api")
    warehouse = root / "warehouse.duckdb"
    shutil.copy2(demo_run["warehouse"], warehouse)
    publish_snapshot(warehouse)
    landing = root / "landing"
    landing.mkdir()
    with running_server(warehouse, landing, log=root / "serve.log") as server:
        yield {"root": root, "warehouse": warehouse, "landing": landing, "server": server}


def _run(site: dict, **options) -> None:
    log = io.StringIO()
    result = run_pipeline(
        RunOptions(
            warehouse=site["warehouse"],
            landing=[site["landing"]],
            out=site["root"] / "reports",
            target_path=site["root"] / "target",
            skip_report=True,
            **options,
        ),
        console=Console(file=log, width=160),
    )
    summary = "\n".join(f"{s.name}: {s.status} {s.detail}" for s in result.stages)
    assert result.exit_code == 0, summary + "\n" + log.getvalue()[-3000:]


def _api_lines(landing: Path, stream: str = "conversions") -> list[dict]:
    files = sorted(landing.glob(f"api/{stream}-api-*.jsonl")) + sorted(
        landing.glob(f".api-open/{stream}-api-*.jsonl")
    )
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line]


def test_the_documents_example_needs_a_currency_and_is_then_accepted(site: dict) -> None:
    with site["server"].client() as client:
        refused = client.post("/api/conversions", json=DOCUMENT_EXAMPLE)
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["row"] == 1
        assert error["errors"] == [
            {
                "field": "currency",
                "rule": "currency_required",
                "message": "currency: is required when value_cents > 0, got null",
            }
        ]
        accepted = client.post("/api/conversions", json={**DOCUMENT_EXAMPLE, "currency": "USD"})
    assert accepted.status_code == 201
    body = accepted.json()
    assert body["status"] == "accepted"
    uuid.UUID(body["event_id"])  # named by the server when the row has none
    assert body["id"] == conversion_id("purchase", body["event_id"])
    (written,) = [row for row in _api_lines(site["landing"]) if row["event_id"] == body["event_id"]]
    assert written["conversion_time"].endswith("Z")  # the receive time, as the server filled it in


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"value_cents": "29.99"}, "value_cents", "type"),
        ({"value_cents": -5}, "value_cents", "min_value"),
        ({"conversion_type": "refund"}, "conversion_type", "allowed"),
        ({"conversion_source": "fax"}, "conversion_source", "allowed"),
        ({"currency": "XYZ"}, "currency", "iso_4217"),
        ({"conversion_time": "2026-12-01 10:00:00"}, "conversion_time", "type"),
        ({"properties": [1, 2]}, "properties", "type"),
        ({"person_id": None}, "person_id", "person_or_anonymous"),  # nor an anonymous_id
    ],
)
def test_a_bad_row_is_refused_naming_its_field_and_rule(
    site: dict, change: dict, field: str, rule: str
) -> None:
    row = {**DOCUMENT_EXAMPLE, "currency": "USD", "event_id": f"bad-{uuid.uuid4()}", **change}
    with site["server"].client() as client:
        response = client.post("/api/conversions", json=row)
    assert response.status_code == 422
    errors = response.json()["error"]["errors"]
    assert [(e["field"], e["rule"]) for e in errors] == [(field, rule)]
    assert row["event_id"] not in {r["event_id"] for r in _api_lines(site["landing"])}


def test_bodies_that_are_not_rows_are_refused_without_a_stack_trace(site: dict) -> None:
    with site["server"].client() as client:
        invalid = client.post(
            "/api/conversions", content=b'{"person_id": "p", ', headers={"content-type": "application/json"}
        )
        assert invalid.status_code == 400
        assert invalid.json()["error"]["message"].startswith("request body is not valid JSON")
        too_big = client.post("/api/conversions", content=b" " * (MAX_BODY_BYTES + 1))
        assert too_big.status_code == 413
        too_many = client.post("/api/conversions", json=[{}] * (MAX_BATCH_ROWS + 1))
        assert too_many.status_code == 413 and f"at most {MAX_BATCH_ROWS:,}" in too_many.text
        not_object = client.post("/api/conversions", json=[42])
        assert not_object.status_code == 422
        assert not_object.json()["rows"][0]["errors"][0]["rule"] == "json_object"
        twice = client.post(
            "/api/conversions",
            content=b'{"person_id": "p", "currency": "USD", "currency": "EUR"}',
            headers={"content-type": "application/json"},
        )
        assert twice.status_code == 422  # as `convopt ingest` refuses such a line
        assert twice.json()["error"]["errors"][0] == {
            "field": "currency",
            "rule": "repeated_key",
            "message": "currency: expected each field once per JSON object, got it twice",
        }
        bad_limit = client.get("/api/conversions", params={"limit": 0})
        assert bad_limit.status_code == 422
        bad_cursor = client.get("/api/conversions", params={"cursor": "not-a-cursor"})
        assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["field"] == "cursor"
    for response in (invalid, too_big, too_many, not_object, twice, bad_limit, bad_cursor):
        assert "Traceback" not in response.text and 'File "' not in response.text


def test_a_batch_accepts_its_good_rows_and_lists_the_rejected(site: dict) -> None:
    good = [{**DOCUMENT_EXAMPLE, "currency": "EUR", "event_id": f"batch-{uuid.uuid4()}"} for _ in range(3)]
    bad = {**good[0], "event_id": "batch-bad", "conversion_type": "refund"}
    ndjson = "\n".join(json.dumps(r) for r in [good[0], bad, good[1], good[2]]) + "\n"
    with site["server"].client() as client:
        response = client.post(
            "/api/conversions", content=ndjson, headers={"content-type": "application/x-ndjson"}
        )
        as_array = client.post("/api/conversions", json=[good[2], bad])
    assert response.status_code == 207
    body = response.json()
    assert (body["accepted"], body["replayed"], body["rejected"]) == (3, 0, 1)
    assert [r["status"] for r in body["rows"]] == ["accepted", "rejected", "accepted", "accepted"]
    assert body["rows"][1]["errors"][0] == {
        "field": "conversion_type",
        "rule": "allowed",
        "message": "conversion_type: expected one of purchase, signup, video_render, subscription, got 'refund'",
    }
    assert as_array.status_code == 207
    assert [r["status"] for r in as_array.json()["rows"]] == ["replayed", "rejected"]
    written = [r["event_id"] for r in _api_lines(site["landing"])]
    assert all(written.count(r["event_id"]) == 1 for r in good) and "batch-bad" not in written


def test_a_replay_returns_the_same_answer_and_adds_no_row(site: dict) -> None:
    row = {**DOCUMENT_EXAMPLE, "currency": "USD", "event_id": f"  replay-{uuid.uuid4()}  "}
    with site["server"].client() as client:
        first = client.post("/api/conversions", json=row)
        again = client.post("/api/conversions", json=row)
        same_key = client.post(
            "/api/conversions", json={**row, "conversion_type": "PURCHASE", "value_cents": 5}
        )
    assert first.status_code == 201 and again.status_code == 200 and same_key.status_code == 200
    assert first.json()["id"] == again.json()["id"] == same_key.json()["id"]
    assert first.json()["event_id"] == again.json()["event_id"] == row["event_id"].strip()
    assert again.json()["status"] == "replayed"
    assert [r["event_id"] for r in _api_lines(site["landing"])].count(row["event_id"]) == 1


def test_identity_fields_are_never_answered_in_clear(site: dict) -> None:
    secret = "jane.doe+secret@example.com"
    row = {**DOCUMENT_EXAMPLE, "currency": "USD", "email": secret, "phone": "x" * 65}
    with site["server"].client() as client:
        response = client.post("/api/conversions", json=row)
        listed = client.get("/api/conversions", params={"limit": 5})
    assert response.status_code == 422  # the phone is too long; the e-mail is fine
    assert response.json()["error"]["errors"][0]["field"] == "phone"
    assert "x" * 65 not in response.text and secret not in response.text
    columns = set(listed.json()["data"][0])
    assert not columns & {"email", "phone", "city", "client_ip_address", "em_sha256", "ph_sha256"}


def test_tokens_guard_the_api_and_a_token_is_needed_beyond_loopback(site: dict) -> None:
    env = {"CONVOPT_API_TOKEN": TOKEN, "CONVOPT_API_READ_TOKEN": READ_TOKEN}
    with running_server(
        site["warehouse"], site["root"] / "landing-auth", env=env, log=site["root"] / "auth.log"
    ) as server:
        with server.client() as anonymous:
            missing = anonymous.get("/api/conversions")
            docs = anonymous.get("/docs")
            schema = anonymous.get("/openapi.json")
        with server.client("wrong") as wrong:
            bad = wrong.get("/api/conversions")
        with server.client(READ_TOKEN) as reader:
            read = reader.get("/api/conversions", params={"limit": 1})
            write = reader.post("/api/conversions", json={**DOCUMENT_EXAMPLE, "currency": "USD"})
        with server.client(TOKEN) as writer:
            written = writer.post("/api/conversions", json={**DOCUMENT_EXAMPLE, "currency": "USD"})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert bad.status_code == 401
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert schema.status_code == 200 and "/api/conversions/{conversion_id}/optimize" in schema.json()["paths"]
    assert read.status_code == 200 and write.status_code == 403 and written.status_code == 201
    refused = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port())]
        + ["--warehouse", str(site["warehouse"]), "--landing", str(site["root"] / "landing-open")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("CONVOPT_API_")},
    )
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in refused.stderr


def test_reads_answer_from_the_snapshot_while_a_build_holds_the_warehouse(
    site: dict, warehouse_held_open
) -> None:
    with site["server"].client() as client:
        before = client.get("/api/conversions", params={"limit": 3})
        with warehouse_held_open(site["warehouse"]):  # as `dbt build` does: one writing process
            started = time.monotonic()
            during = client.get("/api/conversions", params={"limit": 3})
            summary = client.get("/api/conversions", params={"summary": "true"})
            elapsed = time.monotonic() - started
    assert during.status_code == 200 and summary.status_code == 200
    assert during.json() == before.json()
    assert during.headers["convopt-build-id"] == before.headers["convopt-build-id"]
    dt.datetime.fromisoformat(during.headers["convopt-build-finished-at"])
    assert elapsed < 5


def test_a_failed_build_leaves_the_last_good_snapshot(site: dict, monkeypatch) -> None:
    with site["server"].client() as client:
        before = client.get("/api/conversions", params={"limit": 1}).headers["convopt-build-id"]
        monkeypatch.setenv("CONVOPT_TARGET", "no_such_target")  # dbt fails at once: no such profile target
        result = run_pipeline(
            RunOptions(
                warehouse=site["warehouse"],
                landing=[],
                out=site["root"] / "reports",
                target_path=site["root"] / "target",
                skip_ingest=True,
                skip_report=True,
            ),
            console=Console(file=io.StringIO()),
        )
        assert [s.status for s in result.stages][:2] == ["skipped", "failed"]
        after = client.get("/api/conversions", params={"limit": 1})
    assert after.status_code == 200 and after.headers["convopt-build-id"] == before


def test_round_trip_post_run_get_with_funnel_summary_and_optimize(site: dict) -> None:
    person = f"api-person-{uuid.uuid4()}"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    landed, signed_up = now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)
    pixel = "1234567890"
    purchase = {
        "event_id": f"rt-{uuid.uuid4()}",
        "person_id": person,
        "conversion_type": "purchase",
        "conversion_source": "capi",
        "value_cents": 4999,
        "currency": "USD",
        "campaign_id": "campaign_123",
        "utm_campaign": "summer_sale",
        "meta_pixel_id": pixel,
        "email": "Round.Trip@Example.com",
        "event_source_url": "https://shop.example/checkout",
        "client_user_agent": "Mozilla/5.0",
        "conversion_time": _iso(now - dt.timedelta(minutes=30)),
    }
    events = [
        {
            "event_id": f"rt-lp-{uuid.uuid4()}",
            "person_id": person,
            "event_name": "landing_page_view",
            "event_time": _iso(landed),
        },
        {
            "event_id": f"rt-su-{uuid.uuid4()}",
            "person_id": person,
            "event_name": "signup",
            "event_time": _iso(signed_up),
        },
    ]
    with site["server"].client() as client:
        assert client.post("/api/events", json=events).status_code == 201
        posted = client.post("/api/conversions", json=purchase).json()
        assert client.get(f"/api/conversions/{posted['id']}").status_code == 404  # not built yet
        build_before = client.get("/api/conversions", params={"limit": 1}).headers["convopt-build-id"]

        _run(site)  # ingest (seals the server's open files) → dbt build → snapshot → export dry run

        got = client.get(f"/api/conversions/{posted['id']}")
        listed = client.get("/api/conversions", params={"person_id": person, "conversion_type": "purchase"})
        summary = client.get("/api/conversions", params={"summary": "true", "person_id": person})
        funnels = client.get("/api/funnels", params={"person_id": person})
        dry = client.post(f"/api/conversions/{posted['id']}/optimize")
    assert got.status_code == 200, got.text
    assert got.headers["convopt-build-id"] != build_before
    row = got.json()["data"]
    assert (row["id"], row["event_id"], row["person_id"], row["value_cents"]) == (
        posted["id"],
        purchase["event_id"],
        person,
        4999,
    )
    assert [r["id"] for r in listed.json()["data"]] == [posted["id"]]
    assert summary.json()["data"]["total_conversions"] == 1
    assert summary.json()["data"]["purchases"] == 1
    by_name = {f["funnel_name"]: f for f in funnels.json()["data"]}
    signup_funnel = by_name["signup_to_purchase"]
    assert [s["event_name"] for s in signup_funnel["steps"]] == ["landing_page_view", "signup"]
    assert signup_funnel["completed_steps"] == 2
    assert dry.status_code == 200 and dry.json()["data"]["outcome"] == "would_send"
    assert dry.json()["dry_run"] is True
    # Exactly once through the export's delivery log, with a token and a (fake) Graph API.
    fake = FakeGraphAPI().start()
    env = {"META_ACCESS_TOKEN": "EAAfake", "META_GRAPH_BASE_URL": fake.base_url}
    try:
        with (
            running_server(
                site["warehouse"], site["root"] / "landing-meta", env=env, log=site["root"] / "meta.log"
            ) as server,
            server.client() as client,
        ):
            sent = client.post(f"/api/conversions/{posted['id']}/optimize")
            again = client.post(
                "/api/conversions/optimize", json={"conversion_ids": [posted["id"], "no-such-id"]}
            )
    finally:
        fake.stop()
    assert sent.status_code == 200, sent.text
    assert sent.json()["data"]["outcome"] == "sent" and sent.json()["dry_run"] is False
    assert [o["outcome"] for o in again.json()["data"]] == ["already_delivered", "not_found"]
    assert fake.accepted[purchase["event_id"]] == 1
    with duckdb.connect(str(site["warehouse"]), read_only=True) as con:
        statuses = con.execute(
            "select status from raw.meta_delivery_log where conversion_id = ?", [posted["id"]]
        ).fetchall()
    assert statuses == [("sent",)]


def test_nothing_acknowledged_is_lost_on_kill_9(site: dict) -> None:
    landing = site["root"] / "landing-kill"
    server = start_server(site["warehouse"], landing, log=site["root"] / "kill.log")
    acknowledged: dict[str, str] = {}
    stop = threading.Event()

    def post_until_stopped(worker: int) -> None:
        with server.client(timeout=5) as client:
            n = 0
            while not stop.is_set():
                event_id = f"kill-{worker}-{n}"
                n += 1
                row = {
                    **DOCUMENT_EXAMPLE,
                    "person_id": f"kill-{worker}",
                    "currency": "USD",
                    "event_id": event_id,
                }
                try:
                    response = client.post("/api/conversions", json=row)
                except httpx.HTTPError:
                    return  # the server is gone: this row was never acknowledged
                if response.status_code == 201:
                    acknowledged[event_id] = response.json()["id"]

    workers = [threading.Thread(target=post_until_stopped, args=(w,)) for w in range(8)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:  # under load, whatever the machine's speed
        time.sleep(0.05)
    server.kill_9()  # while the workers are still posting
    stop.set()
    for w in workers:
        w.join()
    assert len(acknowledged) >= 40
    # A restarted server knows the keys the killed one accepted.
    with (
        running_server(site["warehouse"], landing, log=site["root"] / "kill.log") as again,
        again.client() as client,
    ):
        replay_id = next(iter(acknowledged))
        replay = client.post(
            "/api/conversions",
            json={**DOCUMENT_EXAMPLE, "person_id": "kill-0", "currency": "USD", "event_id": replay_id},
        )
        assert replay.status_code == 200 and replay.json()["id"] == acknowledged[replay_id]
    _run({**site, "landing": landing})
    with duckdb.connect(str(site["warehouse"]), read_only=True) as con:
        found = dict(
            con.execute(
                "select event_id, count(*) from marts.conversion_event where event_id like 'kill-%' group by event_id"
            ).fetchall()
        )
        ids = dict(
            con.execute(
                "select event_id, id from marts.conversion_event where event_id like 'kill-%'"
            ).fetchall()
        )
    missing = set(acknowledged) - set(found)
    assert not missing, f"{len(missing)} acknowledged conversions lost"
    assert all(found[e] == 1 for e in acknowledged)
    assert all(ids[e] == acknowledged[e] for e in acknowledged)  # the id the API answered is the warehouse's
