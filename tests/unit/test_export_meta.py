"""`convopt export-meta`: exactly-once delivery to a fake Graph API on 127.0.0.1 (tests/support/fake_graph_api.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_graph_api import FakeGraphAPI, block, drop, error, ok, slow
from rich.console import Console
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cli_output import print_export_summary
from pipelines.meta.batching import MAX_EVENTS_PER_REQUEST, plan_batches
from pipelines.meta.delivery_log import inflight_journal_path
from pipelines.meta.export import export_meta
from pipelines.meta.graph_client import GraphClient, Outcome, RetryPolicy, classify_response
from pipelines.meta.results import ExportSummary, ExportUsageError
from pipelines.warehouse import PROJECT_DIR, ensure_raw_schema

TOKEN = "EAAFakeTok3n-ZZQ9-do-not-leak-7f3c9e21"
PIXEL = "1234567890"
FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_seconds=0.001, max_delay_seconds=0.01)
TIMEOUT = httpx.Timeout(10.0)
# A "slow" answer comes well after the short read timeout; a normal answer comes well within it.
SHORT_READ_TIMEOUT, SLOW_ANSWER_SECONDS = httpx.Timeout(10.0, read=0.8), 2.5
HOUR = 3600


# -- fixtures and helpers ------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeGraphAPI]:
    server = FakeGraphAPI().start()
    yield server
    server.stop()


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


# -- the happy path and exactly-once -------------------------------------------------------------------


def test_ready_events_are_sent_and_recorded_as_sent(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(5)])

    summary = run_export(warehouse, fake, test_event_code="TEST123")

    assert summary.ok and summary.sent == 5 and summary.requests == 1
    (request,) = fake.requests
    assert request.path == f"/v24.0/{PIXEL}/events"
    assert request.access_token == TOKEN and request.test_event_code == "TEST123"
    assert sorted(request.event_ids) == [f"evt-{n:05d}" for n in range(5)]
    rows = log_rows(warehouse)
    assert [r["status"] for r in rows] == ["sent"] * 5
    assert {r["events_received"] for r in rows} == {5}
    assert all(r["fbtrace_id"] and r["attempt"] == 1 and r["test_event_code"] == "TEST123" for r in rows)
    assert {r["run_id"] for r in rows} == {summary.run_id}


def test_rerun_sends_nothing_already_sent(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(5)])
    run_export(warehouse, fake)

    again = run_export(warehouse, fake)

    assert again.ok and again.sent == 0 and again.requests == 0
    assert len(fake.requests) == 1
    assert set(sent_counts(warehouse).values()) == {1}


def test_events_are_grouped_by_pixel(tmp_path: Path, fake: FakeGraphAPI) -> None:
    rows = [event_row(n, pixel_id="111") for n in range(3)] + [
        event_row(n, pixel_id="222") for n in range(3, 5)
    ]
    warehouse = make_warehouse(tmp_path / "wh.duckdb", rows)

    summary = run_export(warehouse, fake)

    assert summary.ok and summary.sent == 5 and summary.pixels == 2
    by_path = {r.path: sorted(r.event_ids) for r in fake.requests}
    assert by_path == {
        "/v24.0/111/events": ["evt-00000", "evt-00001", "evt-00002"],
        "/v24.0/222/events": ["evt-00003", "evt-00004"],
    }


def test_conversion_id_sends_only_that_conversion(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(5)])

    summary = run_export(warehouse, fake, conversion_ids=["conv-00003"])

    assert summary.ok and summary.sent == 1
    assert [r.event_ids for r in fake.requests] == [["evt-00003"]]
    assert list(sent_counts(warehouse)) == ["conv-00003"]

    again = run_export(warehouse, fake, conversion_ids=["conv-00003", "conv-00001", "conv-nope"])

    assert again.sent == 1 and [r.event_ids for r in fake.requests][-1] == ["evt-00001"]
    assert again.already_delivered == ["conv-00003"] and again.not_found == ["conv-nope"]
    assert again.exit_code == 1


def test_limit_sends_the_oldest_and_since_filters_on_event_time(tmp_path: Path, fake: FakeGraphAPI) -> None:
    rows = [event_row(n, age_seconds=n * HOUR) for n in range(1, 6)]  # conv-00005 is the oldest
    warehouse = make_warehouse(tmp_path / "wh.duckdb", rows)

    limited = run_export(warehouse, fake, limit=2)
    since = run_export(warehouse, fake, since=dt.datetime.fromtimestamp(rows[2]["event_time"], dt.UTC))

    assert limited.sent == 2 and sorted(fake.requests[0].event_ids) == ["evt-00004", "evt-00005"]
    assert since.sent == 3 and sorted(fake.requests[1].event_ids) == ["evt-00001", "evt-00002", "evt-00003"]


# -- batching -------------------------------------------------------------------------------------------


def test_2500_events_go_in_3_requests_of_at_most_1000(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(2500)])

    summary = run_export(warehouse, fake)

    assert summary.ok and summary.sent == 2500
    assert [len(r.event_ids) for r in fake.requests] == [1000, 1000, 500]
    assert sum(fake.accepted.values()) == 2500 and set(fake.accepted.values()) == {1}


def test_request_bodies_stay_within_the_byte_bound(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n, padding=700) for n in range(40)])

    summary = run_export(warehouse, fake, max_request_bytes=8_000)

    assert summary.ok and summary.sent == 40
    assert len(fake.requests) > 4
    assert max(len(body) for body in fake.bodies) <= 8_000  # token included
    assert sum(fake.accepted.values()) == 40


def test_plan_batches_respects_count_and_bytes() -> None:
    assert plan_batches([10] * 5, batch_size=2, max_request_bytes=10_000, overhead=10) == [
        range(0, 2),
        range(2, 4),
        range(4, 5),
    ]
    batches = plan_batches([100, 100, 100, 300], batch_size=1000, max_request_bytes=320, overhead=10)
    assert batches == [range(0, 3), range(3, 4)]
    assert plan_batches([], batch_size=10, max_request_bytes=100, overhead=10) == []


def test_an_event_larger_than_the_bound_is_failed_not_sent(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(0), event_row(1, padding=9_000)])

    summary = run_export(warehouse, fake, max_request_bytes=8_000)

    assert summary.sent == 1 and summary.failed == 1 and summary.exit_code == 1
    assert statuses_of(warehouse, "conv-00001") == ["failed"]
    assert [r.event_ids for r in fake.requests] == [["evt-00000"]]


def test_rows_that_cannot_be_sent_as_they_are_are_failed_and_the_rest_sent(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    pretty = event_row(0)
    pretty["payload"] = json.dumps(json.loads(pretty["payload"]), indent=2)
    not_json = {**event_row(1), "payload": '{"event_id": "evt-00001", '}
    other_id = {**event_row(2), "event_id": "evt-other"}
    bad_pixel = event_row(3, pixel_id="pixel-abc")
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [pretty, not_json, other_id, bad_pixel, event_row(4)])

    summary = run_export(warehouse, fake)

    assert summary.sent == 2 and summary.failed == 3 and summary.exit_code == 1
    assert sorted(fake.requests[0].event_ids) == ["evt-00000", "evt-00004"]
    assert b"\n" not in fake.requests[0].raw_body  # a pretty-printed payload is sent on one line
    reasons = {r["conversion_id"]: r["error_message"] for r in log_rows(warehouse) if r["status"] == "failed"}
    assert reasons == {
        "conv-00001": "payload is not valid JSON",
        "conv-00002": "payload event_id differs from the event_id column",
        "conv-00003": "pixel_id is missing or not numeric",
    }
    assert run_export(warehouse, fake).sent == 0 and len(fake.requests) == 1


# -- invalid events: split the batch, no retry ----------------------------------------------------------


def test_one_invalid_event_in_10_is_isolated_and_the_other_9_are_sent(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(10)])
    fake.reject_event("evt-00006", code=100, subcode=2804016, message="user_data em is not hashed")

    summary = run_export(warehouse, fake)

    assert summary.sent == 9 and summary.failed == 1 and summary.exit_code == 1
    assert fake.accepted == Counter({f"evt-{n:05d}": 1 for n in range(10) if n != 6})
    final = [r for r in log_rows(warehouse) if r["conversion_id"] == "conv-00006"][-1]
    assert final["status"] == "failed" and final["is_retryable"] is False
    assert (final["error_code"], final["error_subcode"], final["http_status"]) == (100, 2804016, 400)
    assert final["error_message"] == "user_data em is not hashed" and final["fbtrace_id"]
    assert summary.failure_reasons == Counter({"code 100/2804016: user_data em is not hashed": 1})
    assert len(fake.requests) <= 1 + 2 * 4  # bisect: at most two requests per level


def test_failed_events_are_resent_only_with_retry_failed(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(3)])
    fake.reject_event("evt-00001")
    run_export(warehouse, fake)
    requests_after_first_run = len(fake.requests)

    plain_rerun = run_export(warehouse, fake)
    fake.bad_events.clear()  # the producer fixed the event
    retried = run_export(warehouse, fake, retry_failed=True)

    assert plain_rerun.sent == 0 and len(fake.requests) == requests_after_first_run + 1
    assert retried.ok and retried.sent == 1
    assert statuses_of(warehouse, "conv-00001")[-1] == "sent"
    assert set(sent_counts(warehouse).values()) == {1}


def test_a_validation_error_is_not_retried(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(0)])
    fake.reject_event("evt-00000", subcode=2804003, message="event timestamp too old")

    summary = run_export(warehouse, fake)

    assert len(fake.requests) == 1 and summary.failed == 1
    assert statuses_of(warehouse, "conv-00000") == ["failed"]


# -- transient errors: retry with backoff -----------------------------------------------------------------


def test_server_error_then_success_is_retried(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(3)])
    fake.script(error(500, 2, message="Service temporarily unavailable", is_transient=True))

    summary = run_export(warehouse, fake)

    assert summary.ok and summary.sent == 3 and len(fake.requests) == 2
    assert fake.requests[0].event_ids == fake.requests[1].event_ids
    rows = [r for r in log_rows(warehouse) if r["conversion_id"] == "conv-00000"]
    assert [(r["status"], r["attempt"], r["http_status"], r["is_retryable"]) for r in rows] == [
        ("failed", 1, 500, True),
        ("sent", 2, 200, None),
    ]


@pytest.mark.parametrize(
    "throttle",
    [
        error(429, 4, message="Application request limit reached", headers={"Retry-After": "0"}),
        error(400, 17, message="User request limit reached"),
        error(400, 613, message="Calls to this api have exceeded the rate limit"),
        error(400, 32, message="Page request limit reached"),
        error(400, 100, message="Temporary failure", is_transient=True),
    ],
    ids=["http-429-code-4", "code-17", "code-613", "code-32", "is-transient"],
)
def test_throttling_then_success_is_retried(tmp_path: Path, fake: FakeGraphAPI, throttle: Any) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(3)])
    fake.script(throttle)

    summary = run_export(warehouse, fake)

    assert summary.ok and summary.sent == 3 and len(fake.requests) == 2


def test_retries_are_bounded_and_the_next_run_sends_again(tmp_path: Path, fake: FakeGraphAPI) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(3)])
    fake.script(*[error(503, 1, message="Please retry your request later.")] * FAST_RETRY.max_attempts)

    first = run_export(warehouse, fake)
    second = run_export(warehouse, fake)

    assert len(fake.requests) == FAST_RETRY.max_attempts + 1
    assert first.failed_retryable == 3 and first.exit_code == 1
    assert second.ok and second.sent == 3
    assert statuses_of(warehouse, "conv-00000") == ["failed"] * FAST_RETRY.max_attempts + ["sent"]


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy, rng = RetryPolicy(base_delay_seconds=1.0, max_delay_seconds=8.0), random.Random(3)
    delays = [policy.delay(n, rng) for n in range(1, 7)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 2.0 <= delays[2] <= 4.0
    assert all(4.0 <= d <= 8.0 for d in delays[3:])
    assert policy.delay(1, rng, retry_after=5.0) == 5.0
    assert policy.delay(1, rng, retry_after=500.0) == 8.0


# -- unknown outcomes -------------------------------------------------------------------------------------


def test_dropped_connection_is_unknown_then_resent_with_the_same_event_ids(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(4)])
    fake.script(drop())

    summary = run_export(warehouse, fake)

    assert summary.ok and summary.sent == 4 and summary.unknown_then_resent == 4
    assert fake.requests[0].raw_body == fake.requests[1].raw_body
    assert statuses_of(warehouse, "conv-00002") == ["unknown", "sent"]


def test_slow_response_past_the_timeout_is_unknown_then_resent_and_stays_visible(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(3)])
    fake.script(slow(SLOW_ANSWER_SECONDS))

    summary = run_export(warehouse, fake, timeout=SHORT_READ_TIMEOUT)

    assert summary.ok and summary.sent == 3 and summary.unknown_then_resent == 3
    assert fake.requests[0].event_ids == fake.requests[1].event_ids
    rows = [r for r in log_rows(warehouse) if r["conversion_id"] == "conv-00001"]
    assert [(r["status"], r["attempt"], r["error_type"]) for r in rows] == [
        ("unknown", 1, "ReadTimeout"),
        ("sent", 2, None),
    ]
    # Meta processed the slow request too: the possible double count is visible in the log, not hidden.
    assert fake.accepted["evt-00001"] == 2


def test_kill_between_batches_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(30)])
    fake.script(ok(), block())  # the 1st batch is answered, the 2nd is held until the process is killed
    env = {**os.environ, "META_ACCESS_TOKEN": TOKEN, "PYTHONPATH": str(PROJECT_DIR)}
    command = [sys.executable, "-m", "pipelines.cli", "export-meta", "--warehouse", str(warehouse)]
    command += ["--graph-base-url", fake.base_url, "--batch-size", "10", "--no-progress"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert fake.blocked.wait(timeout=30), process.communicate(timeout=5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    fake.release()
    assert process.returncode == -signal.SIGKILL
    assert len(sent_counts(warehouse)) == 10  # the first batch was committed before the kill
    assert inflight_journal_path(warehouse).exists()

    rerun = run_export(warehouse, fake, batch_size=10)

    assert rerun.ok and rerun.sent == 20 and rerun.unknown_then_resent == 10
    assert sent_counts(warehouse) == Counter({f"conv-{n:05d}": 1 for n in range(30)})
    assert fake.accepted == Counter({f"evt-{n:05d}": 1 for n in range(30)})
    held = fake.requests[1].event_ids
    for event_id in held:
        conversion_id = "conv-" + event_id.removeprefix("evt-")
        assert statuses_of(warehouse, conversion_id) == ["unknown", "sent"]
    assert not inflight_journal_path(warehouse).exists()


# -- not sent: expired, skipped --------------------------------------------------------------------------


def test_expired_and_skipped_rows_are_recorded_once(tmp_path: Path, fake: FakeGraphAPI) -> None:
    rows = [
        event_row(0),
        event_row(1, status="expired", status_reason="event_time older than 7 days"),
        event_row(2, status="skipped", status_reason="no user_data to match on"),
    ]
    warehouse = make_warehouse(tmp_path / "wh.duckdb", rows)

    first = run_export(warehouse, fake)
    second = run_export(warehouse, fake)

    assert (first.sent, first.expired, first.skipped) == (1, 1, 1) and first.ok
    assert (second.sent, second.expired, second.skipped) == (0, 0, 0)
    assert statuses_of(warehouse, "conv-00001") == ["expired"]
    assert statuses_of(warehouse, "conv-00002") == ["skipped"]
    reasons = {r["conversion_id"]: r["error_message"] for r in log_rows(warehouse)}
    assert reasons["conv-00002"] == "no user_data to match on"
    assert [r.event_ids for r in fake.requests] == [["evt-00000"]]


def test_summary_totals_the_dropped_identity_fields_of_the_sent_events(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    rows = [event_row(0), event_row(1), event_row(2), event_row(3, status="skipped", status_reason="r")]
    warehouse = make_warehouse(tmp_path / "wh.duckdb", rows)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table marts.meta_capi_events add column dropped_user_data_fields integer")
        con.execute(
            "update marts.meta_capi_events set dropped_user_data_fields = "
            "case conversion_id when 'conv-00000' then 2 when 'conv-00001' then 0 "
            "when 'conv-00002' then 1 else 5 end"
        )

    dry = run_export(warehouse, fake, dry_run=True, out=tmp_path / "dry")
    sent = run_export(warehouse, fake)
    printed = Console(record=True, width=200)
    print_export_summary(sent, printed)

    assert (dry.dropped_user_data_fields, dry.sent) == (3, 3)  # the skipped row's 5 are not sent
    assert (sent.dropped_user_data_fields, sent.sent) == (3, 3)
    assert "identity fields dropped (not normalizable, not sent) │ 3" in printed.export_text()


def test_a_ready_event_past_metas_window_is_recorded_expired_not_sent(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    warehouse = make_warehouse(
        tmp_path / "wh.duckdb", [event_row(0), event_row(1, age_seconds=8 * 24 * HOUR)]
    )

    summary = run_export(warehouse, fake)

    assert summary.ok and summary.sent == 1 and summary.expired == 1
    assert statuses_of(warehouse, "conv-00001") == ["expired"]
    assert [r.event_ids for r in fake.requests] == [["evt-00000"]]


# -- token and pixel rejected ----------------------------------------------------------------------------


def test_a_rejected_token_stops_the_run_and_leaves_events_to_retry(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    rows = [event_row(n, pixel_id="111") for n in range(3)] + [
        event_row(n, pixel_id="222") for n in range(3, 5)
    ]
    warehouse = make_warehouse(tmp_path / "wh.duckdb", rows)
    fake.script(error(400, 190, message="Invalid OAuth access token - Cannot parse access token"))

    stopped = run_export(warehouse, fake)
    fixed = run_export(warehouse, fake)

    assert stopped.exit_code == 1 and "access token" in (stopped.aborted or "")
    assert len(fake.requests) == 3 and stopped.failed_retryable == 3 and stopped.not_attempted == 2
    assert fixed.ok and fixed.sent == 5


def test_classify_response_follows_the_graph_error_codes() -> None:
    def env(code: int, subcode: int | None = None, **extra: Any) -> bytes:
        return json.dumps(
            {"error": {"code": code, "error_subcode": subcode, "message": "m", **extra}}
        ).encode()

    ok_body = json.dumps({"events_received": 2, "messages": [], "fbtrace_id": "X"}).encode()
    assert classify_response(200, ok_body).outcome is Outcome.SENT
    assert classify_response(200, b"<html>").outcome is Outcome.UNKNOWN
    assert classify_response(400, env(100, 2804016)).outcome is Outcome.INVALID
    assert classify_response(400, env(100, 33)).outcome is Outcome.REJECTED_PIXEL
    assert classify_response(403, env(10)).outcome is Outcome.REJECTED_PIXEL
    assert classify_response(400, env(190)).outcome is Outcome.REJECTED_TOKEN
    assert classify_response(500, b"").outcome is Outcome.TRANSIENT
    assert classify_response(400, env(1, is_transient=True)).outcome is Outcome.TRANSIENT
    assert classify_response(429, b"", retry_after="2").retry_after_seconds == 2.0


def test_graph_client_takes_an_injected_transport_and_sends_the_token_only_in_the_body() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"events_received": 1, "messages": [], "fbtrace_id": "T"})

    with GraphClient(TOKEN, base_url="http://graph.test", transport=httpx.MockTransport(answer)) as client:
        response = client.post_events(PIXEL, b'{"data":[{"event_id":"e1"}]}')

    assert response.outcome is Outcome.SENT and response.fbtrace_id == "T"
    (request,) = seen
    assert str(request.url) == f"http://graph.test/v24.0/{PIXEL}/events"
    assert json.loads(request.content) == {"data": [{"event_id": "e1"}], "access_token": TOKEN}
    assert TOKEN not in str(request.url) and TOKEN not in str(request.headers)


# -- dry run ---------------------------------------------------------------------------------------------


def test_dry_run_payloads_are_byte_identical_and_exactly_what_is_sent(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(25)])
    options = {"dry_run": True, "access_token": None, "batch_size": 10, "test_event_code": "TEST9"}

    first = run_export(warehouse, fake, out=tmp_path / "a", **options)
    second = run_export(warehouse, fake, out=tmp_path / "b", **options)

    for name in ("requests.jsonl", "events.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first.ok and first.sent == 25 and first.requests == 3 and second.sent == 25
    assert fake.requests == [] and log_rows(warehouse) == []
    lines = (tmp_path / "a" / "requests.jsonl").read_bytes().splitlines()
    assert [len(json.loads(line)["data"]) for line in lines] == [10, 10, 5]
    events = pq.read_table(tmp_path / "a" / "events.parquet")
    assert events.column_names == ["batch_no", "pixel_id", "conversion_id", "event_id", "payload"]
    assert events.column("batch_no").to_pylist() == [1] * 10 + [2] * 10 + [3] * 5

    run_export(warehouse, fake, batch_size=10, test_event_code="TEST9")

    token_field = b',"access_token":' + json.dumps(TOKEN).encode() + b"}"
    assert fake.bodies == [line[:-1] + token_field for line in lines]


def test_dry_run_needs_no_token_and_reads_a_warehouse_without_a_log(tmp_path: Path) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(0)])
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table raw.meta_delivery_log")

    summary = export_meta(warehouse, dry_run=True, out=tmp_path / "out")

    assert summary.ok and summary.sent == 1 and summary.dry_run_files


# -- the token never leaks --------------------------------------------------------------------------------


def test_the_token_never_appears_in_logs_tables_files_or_errors(
    tmp_path: Path, fake: FakeGraphAPI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(6)])
    fake.reject_event("evt-00002")
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    runner = CliRunner()
    cli_common = ["--warehouse", str(warehouse), "--graph-base-url", fake.base_url, "--no-progress"]
    dry = runner.invoke(app, ["export-meta", *cli_common, "--dry-run", "--out", str(tmp_path / "dry")])
    sent = runner.invoke(
        app, ["export-meta", *cli_common, "--conversion-id", "conv-00001", "--conversion-id", "conv-00002"]
    )
    fake.script(error(500, 2), drop(), slow(SLOW_ANSWER_SECONDS))
    transient = run_export(warehouse, fake, timeout=SHORT_READ_TIMEOUT)
    fake.script(error(400, 190, message="Invalid OAuth access token"))
    rejected = run_export(warehouse, fake, retry_failed=True)
    with pytest.raises(ExportUsageError) as bad_url:
        run_export(warehouse, fake, graph_base_url="ftp://127.0.0.1:1")

    assert sent.exit_code == 1 and dry.exit_code == 0, sent.output + dry.output
    assert all(r.access_token == TOKEN for r in fake.requests)  # it is sent, in the body, to Meta
    with duckdb.connect(str(warehouse), read_only=True) as con:
        table_text = str(con.execute("select * from raw.meta_delivery_log").fetchall())
    texts = {
        "python logging": caplog.text,
        "cli output": sent.output + dry.output + str(sent.exception) + str(dry.exception),
        "log table": table_text,
        "summary": repr(transient) + repr(rejected) + str(rejected.aborted),
        "exception": str(bad_url.value) + repr(bad_url.value),
        "client repr": repr(GraphClient(TOKEN, base_url=fake.base_url)),
    }
    for where, text in texts.items():
        assert TOKEN not in text, where
    for path in [*(tmp_path / "dry").iterdir(), warehouse, *tmp_path.glob("wh.duckdb*")]:
        assert TOKEN.encode() not in path.read_bytes(), path


# -- the command line -----------------------------------------------------------------------------------


def test_cli_without_token_and_without_dry_run_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("META_ACCESS_TOKEN", raising=False)
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(0)])

    result = CliRunner().invoke(app, ["export-meta", "--warehouse", str(warehouse)])

    assert result.exit_code == 2
    assert "META_ACCESS_TOKEN" in result.output and "--dry-run" in result.output


def test_cli_reports_a_missing_mart_as_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    warehouse = tmp_path / "wh.duckdb"
    duckdb.connect(str(warehouse)).close()

    result = CliRunner().invoke(
        app, ["export-meta", "--warehouse", str(warehouse), "--graph-base-url", "http://127.0.0.1:9"]
    )

    assert result.exit_code == 2 and "marts.meta_capi_events" in result.output


def test_cli_sends_and_exits_0_then_rerun_sends_nothing(
    tmp_path: Path, fake: FakeGraphAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("META_GRAPH_BASE_URL", fake.base_url)
    monkeypatch.setenv("META_TEST_EVENT_CODE", "TEST42")
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(3)])
    args = ["export-meta", "--warehouse", str(warehouse), "--no-progress", "--as-of", "2026-03-20T00:00:00"]

    first, second = CliRunner().invoke(app, args), CliRunner().invoke(app, args)

    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert len(fake.requests) == 1 and fake.requests[0].test_event_code == "TEST42"
    assert {str(r["as_of"].date()) for r in log_rows(warehouse)} == {"2026-03-20"}


def test_batch_size_above_1000_is_refused(tmp_path: Path) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [])
    with pytest.raises(ExportUsageError):
        export_meta(warehouse, dry_run=True, batch_size=MAX_EVENTS_PER_REQUEST + 1)
    result = CliRunner().invoke(
        app, ["export-meta", "--warehouse", str(warehouse), "--dry-run", "--batch-size", "1001"]
    )
    assert result.exit_code == 2
