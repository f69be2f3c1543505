"""`convopt export-meta` when Meta does not simply accept: transient errors retried with backoff, unknown
outcomes resent with the same event ids, a rejected token or pixel stopping the run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_graph_api import FakeGraphAPI, block, drop, error, ok, slow
from meta_export_helpers import (
    FAST_RETRY,
    HOUR,
    PIXEL,
    SHORT_READ_TIMEOUT,
    SLOW_ANSWER_SECONDS,
    TOKEN,
    event_row,
    log_rows,
    make_warehouse,
    run_export,
    sent_counts,
    statuses_of,
)

from pipelines.meta.delivery_log import inflight_journal_path
from pipelines.meta.graph_client import GraphClient, Outcome, RetryPolicy, classify_response
from pipelines.warehouse import PROJECT_DIR

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


# -- the real file, whatever its name ----------------------------------------------------------------------


def test_a_kill_through_a_symlink_is_recovered_through_the_real_path(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    (tmp_path / "real").mkdir()
    real = make_warehouse(tmp_path / "real" / "wh.duckdb", [event_row(n) for n in range(15)])
    link = tmp_path / "link.duckdb"
    link.symlink_to(real)
    fake.script(ok(), block())
    env = {**os.environ, "META_ACCESS_TOKEN": TOKEN, "PYTHONPATH": str(PROJECT_DIR)}
    command = [sys.executable, "-m", "pipelines.cli", "export-meta", "--warehouse", str(link)]
    command += ["--graph-base-url", fake.base_url, "--batch-size", "10", "--no-progress"]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert fake.blocked.wait(timeout=30), process.communicate(timeout=5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    fake.release()
    assert inflight_journal_path(link) == inflight_journal_path(real)
    assert inflight_journal_path(real).exists() and not (tmp_path / "link.duckdb.wal").exists()

    rerun = run_export(real, fake, batch_size=10)

    assert rerun.ok and rerun.unknown_then_resent == 5
    held = fake.requests[1].event_ids
    assert statuses_of(real, "conv-" + held[0].removeprefix("evt-")) == ["unknown", "sent"]
    assert sent_counts(real) == Counter({f"conv-{n:05d}": 1 for n in range(15)})
    assert not inflight_journal_path(real).exists()


def test_a_journal_left_beside_a_symlink_by_an_older_version_is_recovered(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    from pipelines.meta.delivery_log import INFLIGHT_SUFFIX, write_inflight_journal

    (tmp_path / "real").mkdir()
    real = make_warehouse(tmp_path / "real" / "wh.duckdb", [event_row(n) for n in range(3)])
    link = tmp_path / "link.duckdb"
    link.symlink_to(real)
    stale = tmp_path / ("link.duckdb" + INFLIGHT_SUFFIX)
    write_inflight_journal(
        stale,
        run_id="old",
        pixel_id=PIXEL,
        batch_id="old/p/1",
        requested_at=__import__("datetime").datetime.now(__import__("datetime").UTC),
        test_event_code=None,
        as_of=None,
        conversion_ids=["conv-00001"],
        event_ids=["evt-00001"],
        attempts=[1],
    )

    rerun = run_export(link, fake)

    assert rerun.ok and statuses_of(real, "conv-00001") == ["unknown", "sent"]
    assert not stale.exists()


# -- a kill after Meta processed the request ---------------------------------------------------------------


def _kill_while_in_flight(warehouse: Path, fake: FakeGraphAPI, cwd: Path) -> None:
    env = {**os.environ, "META_ACCESS_TOKEN": TOKEN, "PYTHONPATH": str(PROJECT_DIR)}
    command = [sys.executable, "-m", "pipelines.cli", "export-meta", "--warehouse", str(warehouse)]
    command += ["--graph-base-url", fake.base_url, "--batch-size", "10", "--no-progress"]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert fake.blocked.wait(timeout=30), process.communicate(timeout=5)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    fake.release()


def test_a_batch_meta_processed_before_the_kill_is_resent_once_first_with_the_same_event_ids(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    from fake_graph_api import accept_then_block

    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(30)])
    fake.script(ok(), accept_then_block())  # Meta has the 2nd batch; its answer never reaches the client
    _kill_while_in_flight(warehouse, fake, tmp_path)
    in_flight = fake.requests[1].event_ids
    assert len(in_flight) == 10 and inflight_journal_path(warehouse).exists()

    rerun = run_export(warehouse, fake, batch_size=10)

    assert rerun.ok and rerun.sent == 20
    assert (rerun.in_flight_recovered, rerun.in_flight_resent) == (10, 10)
    # The in-flight batch goes first, alone, in its order, with the same event ids.
    assert fake.requests[2].event_ids == in_flight
    assert not set(fake.requests[3].event_ids) & set(in_flight)
    # Nothing lost; the only second copies are the in-flight batch's, seconds apart (Meta's 48-hour rule).
    assert set(fake.accepted) == {f"evt-{n:05d}" for n in range(30)}
    assert {e for e, count in fake.accepted.items() if count > 1} == set(in_flight)
    assert max(fake.accepted.values()) == 2
    for event_id in in_flight:
        assert statuses_of(warehouse, "conv-" + event_id.removeprefix("evt-")) == ["unknown", "sent"]
    assert not inflight_journal_path(warehouse).exists()


def test_an_unknown_outcome_older_than_the_resend_window_is_not_resent(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    import time

    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(20)])
    fake.script(ok(), block())
    _kill_while_in_flight(warehouse, fake, tmp_path)
    in_flight = fake.requests[1].event_ids

    # The next run comes 50 hours later: a resend could count twice at Meta, so it is held back.
    later = run_export(warehouse, fake, batch_size=10, clock=lambda: time.time() + 50 * HOUR)

    assert later.unknown_too_old == 10 and later.failed == 10 and later.sent == 0
    assert len(fake.requests) == 2  # nothing sent again
    reason = log_rows(warehouse)[-1]["error_message"]
    assert "has an unknown outcome: not resent" in reason and "--retry-failed" in reason
    conversion = "conv-" + in_flight[0].removeprefix("evt-")
    assert statuses_of(warehouse, conversion) == ["unknown", "failed"]

    # The operator checked Events Manager and asks for it: --retry-failed sends them.
    again = run_export(warehouse, fake, batch_size=10, retry_failed=True)
    assert again.sent == 10 and statuses_of(warehouse, conversion) == ["unknown", "failed", "sent"]
