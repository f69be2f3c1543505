"""Consent, opt-out and Limited Data Use end to end: a landing file with the consent fields -> `convopt ingest`
-> dbt build -> `convopt export-meta`, dry run and live against the fake Graph API; and the payload fields
compared with how Meta's Python SDK (facebook-business) serializes the same event."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from fake_graph_api import FakeGraphAPI
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.dbt_runner import run_dbt
from pipelines.ingest import ingest_paths
from pipelines.meta.export import export_meta

pytestmark = pytest.mark.dbt

EMAIL = "consent.person@example.com"
EMAIL_SHA256 = hashlib.sha256(EMAIL.encode()).hexdigest()
URL, AGENT, IP = "https://shop.example/checkout", "Mozilla/5.0 (X11; Linux x86_64)", "203.0.113.7"
DENIED_REASON = "consent_ads is denied (not sent; no identity field in the payload)"


def conversions(now: dt.datetime) -> list[dict]:
    """Purchases from capi an hour old (inside Meta's window; the shipped rule sends them), one per case."""
    base = {
        "person_id": "consent-person",
        "conversion_type": "purchase",
        "conversion_source": "capi",
        "value_cents": 4999,
        "currency": "USD",
        "conversion_time": int((now - dt.timedelta(hours=1)).timestamp() * 1000),
        "meta_pixel_id": "1234567890",
        "email": EMAIL,
        "country": "US",
        "event_source_url": URL,
        "client_user_agent": AGENT,
        "client_ip_address": IP,
    }
    return [
        {**base, "event_id": "denied", "consent_ads": "denied"},
        {**base, "event_id": "unknown"},
        {**base, "event_id": "opted-out", "consent_ads": "granted", "opt_out": True},
        {**base, "event_id": "ldu-california", "limited_data_use": "true", "state": "California"},
        {**base, "event_id": "ldu-texas", "limited_data_use": "yes", "state": "TX"},
        # Two copies: the pixel's says granted, the server's denied: denied wins.
        {**base, "event_id": "copies", "conversion_source": "pixel", "consent_ads": "granted"},
        {**base, "event_id": "copies", "consent_ads": "DENIED"},
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("meta_consent")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    landing.mkdir()
    rows = conversions(dt.datetime.now(dt.UTC))
    (landing / "conversions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest_paths([landing], warehouse=warehouse, progress=False)
    build = run_dbt(
        ["build", "--select", "+meta_capi_events"],
        warehouse=warehouse,
        target_path=root / "target",
        capture=True,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-2000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        events = {
            event_id: {"status": status, "status_reason": reason, "payload": json.loads(payload)}
            for event_id, status, reason, payload in con.execute(
                "select event_id, status, status_reason, payload from marts.meta_capi_events"
            ).fetchall()
        }
    return {"root": root, "warehouse": warehouse, "events": events}


def test_denied_consent_is_skipped_with_no_identity_in_its_payload(built: dict) -> None:
    for event_id in ("denied", "copies"):
        event = built["events"][event_id]
        assert (event["status"], event["status_reason"]) == ("skipped", DENIED_REASON)
        assert event["payload"]["user_data"] == {}


def test_unknown_consent_is_sent_by_default_with_its_identity(built: dict) -> None:
    event = built["events"]["unknown"]
    assert event["status"] == "ready"
    assert event["payload"]["user_data"]["em"] == [EMAIL_SHA256]
    assert "opt_out" not in event["payload"] and "data_processing_options" not in event["payload"]


def test_opt_out_and_limited_data_use_payloads(built: dict) -> None:
    events = built["events"]
    assert events["opted-out"]["status"] == "ready" and events["opted-out"]["payload"]["opt_out"] is True
    ldu = {
        event_id: {k: v for k, v in events[event_id]["payload"].items() if k.startswith("data_processing")}
        for event_id in ("ldu-california", "ldu-texas")
    }
    assert ldu == {
        "ldu-california": {
            "data_processing_options": ["LDU"],
            "data_processing_options_country": 1,
            "data_processing_options_state": 1000,
        },
        # Meta documents no number for Texas: its geolocation decides (0/0).
        "ldu-texas": {
            "data_processing_options": ["LDU"],
            "data_processing_options_country": 0,
            "data_processing_options_state": 0,
        },
    }


def test_dry_run_and_live_export_send_the_consented_events_only(built: dict) -> None:
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
    text = (out / "requests.jsonl").read_text()
    dry_sent = {e["event_id"]: e for line in text.splitlines() for e in json.loads(line)["data"]}
    expected = {"unknown", "opted-out", "ldu-california", "ldu-texas"}
    assert set(dry_sent) == expected
    assert {event_id: e for event_id, e in dry_sent.items()} == {
        event_id: built["events"][event_id]["payload"] for event_id in expected
    }

    warehouse = built["root"] / "live.duckdb"
    shutil.copy(built["warehouse"], warehouse)
    server = FakeGraphAPI().start()
    try:
        summary = export_meta(
            warehouse, dry_run=False, access_token="test-token", graph_base_url=server.base_url
        )
        bodies = b"".join(server.bodies)
        live_sent = {e for request in server.requests for e in request.event_ids}
    finally:
        server.stop()
    assert summary.ok and summary.sent == 4 and summary.skipped == 2
    assert live_sent == expected and all(r.status == 200 for r in server.requests)
    # The denied conversions' identity went nowhere: every e-mail hash sent belongs to a consented event.
    assert bodies.count(EMAIL_SHA256.encode()) == len(expected)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        log = con.execute(
            "select status, error_message from raw.meta_delivery_log where status = 'skipped'"
        ).fetchall()
    assert log == [("skipped", DENIED_REASON)] * 2


def test_payloads_match_the_sdk_serialization(built: dict) -> None:
    """Our payloads for the opt-out and LDU cases, built again with Meta's SDK from the same inputs."""
    serverside = pytest.importorskip("facebook_business.adobjects.serverside")
    from facebook_business.adobjects.serverside.action_source import ActionSource
    from facebook_business.adobjects.serverside.custom_data import CustomData
    from facebook_business.adobjects.serverside.event import Event
    from facebook_business.adobjects.serverside.user_data import UserData

    assert serverside is not None
    extra = {
        "unknown": {},
        "opted-out": {"opt_out": True},
        "ldu-california": {
            "data_processing_options": ["LDU"],
            "data_processing_options_country": 1,
            "data_processing_options_state": 1000,
        },
        "ldu-texas": {
            "data_processing_options": ["LDU"],
            "data_processing_options_country": 0,
            "data_processing_options_state": 0,
        },
    }
    for event_id, fields in extra.items():
        ours = built["events"][event_id]["payload"]
        user_data = UserData(
            email=EMAIL, client_ip_address=IP, client_user_agent=AGENT, country_code="us", state=None
        )
        sdk = Event(
            event_name="Purchase",
            event_time=ours["event_time"],
            event_id=event_id,
            event_source_url=URL,
            action_source=ActionSource.WEBSITE,
            user_data=user_data,
            custom_data=CustomData(value=49.99, currency="USD"),
            **fields,
        ).normalize()
        # The SDK writes the currency in lower case; Meta takes either.
        mine = {
            **ours,
            "custom_data": {**ours["custom_data"], "currency": ours["custom_data"]["currency"].lower()},
        }
        sdk_user = sdk.pop("user_data")
        mine_user = mine.pop("user_data")
        assert mine == sdk, event_id
        # user_data: the same hashes for the fields both send (we also send st and country hashes).
        for key in ("em", "client_ip_address", "client_user_agent"):
            assert mine_user[key] == sdk_user[key], (event_id, key)
