"""`convopt export-meta` delivers exactly once to a fake Graph API on 127.0.0.1: what is sent, in which
batches, and what is recorded instead (invalid, expired, skipped events)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import duckdb
import httpx
from fake_graph_api import FakeGraphAPI
from meta_export_helpers import (
    HOUR,
    PIXEL,
    TOKEN,
    event_row,
    log_rows,
    make_warehouse,
    run_export,
    sent_counts,
    statuses_of,
)
from rich.console import Console

from pipelines.cli_output import print_export_summary
from pipelines.meta.batching import plan_batches

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


def app_event_row(n: int, *, app_data: dict | None = None) -> dict:
    """A ready row of an ``app`` rule: its payload has no app_data unless given."""
    row = event_row(n)
    event = json.loads(row["payload"])
    event.update(action_source="app")
    event.pop("event_source_url")
    if app_data is not None:
        event["app_data"] = app_data
    return {**row, "action_source": "app", "payload": json.dumps(event, separators=(",", ":"))}


def test_the_fake_graph_api_rejects_an_app_event_without_app_data(tmp_path: Path, fake: FakeGraphAPI) -> None:
    # What Meta does, which the exporter must never provoke: one such event fails the whole request.
    body = {"data": [json.loads(app_event_row(0)["payload"])], "access_token": TOKEN}
    answer = httpx.post(f"{fake.base_url}/v24.0/{PIXEL}/events", json=body)
    assert answer.status_code == 400 and "app_data" in answer.json()["error"]["message"]


def test_an_app_event_without_app_data_is_failed_never_sent(tmp_path: Path, fake: FakeGraphAPI) -> None:
    with_app_data = app_event_row(2, app_data={"advertiser_tracking_enabled": 1, "extinfo": ["a2"]})
    rows = [app_event_row(0), event_row(1), with_app_data]
    warehouse = make_warehouse(tmp_path / "wh.duckdb", rows)

    summary = run_export(warehouse, fake)

    assert summary.sent == 2 and summary.failed == 1 and summary.exit_code == 1
    sent_events = [e for r in fake.requests for e in json.loads(r.raw_body)["data"]]
    assert all("app_data" in e for e in sent_events if e["action_source"] == "app")
    assert "evt-00000" not in [e["event_id"] for e in sent_events]
    assert all(r.status == 200 for r in fake.requests)
    (failed,) = [r for r in log_rows(warehouse) if r["status"] == "failed"]
    assert failed["conversion_id"] == "conv-00000" and "app_data" in failed["error_message"]


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
