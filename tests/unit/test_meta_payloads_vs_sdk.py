"""The hand-worked payloads of meta_capi_events' unit tests (its YAML: consent, opt-out, Limited Data Use,
custom_data) against Meta's Python SDK (facebook-business): the same event built with the SDK's objects
serializes (``Event.normalize()``) to the same JSON. The dbt unit tests prove the model writes those payloads;
this proves they are what Meta's own client would send. Skipped without the SDK (a test-only dependency)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

serverside = pytest.importorskip("facebook_business.adobjects.serverside")
from facebook_business.adobjects.serverside.action_source import ActionSource  # noqa: E402
from facebook_business.adobjects.serverside.content import Content  # noqa: E402
from facebook_business.adobjects.serverside.custom_data import CustomData  # noqa: E402
from facebook_business.adobjects.serverside.event import Event  # noqa: E402
from facebook_business.adobjects.serverside.user_data import UserData  # noqa: E402

MODEL_YAML = Path(__file__).resolve().parents[2] / "models" / "marts" / "meta_capi_events.yml"
HASH = "a" * 64
TIME = 1741046400
URL = "https://x.test/p"


def expected_payloads() -> dict[str, dict[str, Any]]:
    """conversion_id → the payload a unit test of the model expects (parsed)."""
    tests = yaml.safe_load(MODEL_YAML.read_text())["unit_tests"]
    return {
        row["conversion_id"]: json.loads(row["payload"])
        for test in tests
        for row in test["expect"]["rows"]
        if "payload" in row
    }


def sdk_event(event_id: str, *, name: str = "Purchase", url: str = URL, **fields: Any) -> dict[str, Any]:
    """What the SDK sends for a website event of 5.00 USD at TIME with ``fields`` (user_data, custom_data, …)."""
    fields.setdefault("user_data", UserData(client_user_agent="UA"))
    fields.setdefault("custom_data", CustomData(value=5.0, currency="USD"))
    event = Event(
        event_name=name,
        event_time=TIME,
        event_id=event_id,
        event_source_url=url,
        action_source=ActionSource.WEBSITE,
        **fields,
    )
    return event.normalize()


LDU_CALIFORNIA = {
    "data_processing_options": ["LDU"],
    "data_processing_options_country": 1,
    "data_processing_options_state": 1000,
}
LDU_GEOLOCATED = {
    "data_processing_options": ["LDU"],
    "data_processing_options_country": 0,
    "data_processing_options_state": 0,
}

SDK_CASES: dict[str, dict[str, Any]] = {
    # Consent: denied → no identity at all; unknown (default send) → the e-mail hash and the user agent.
    "k1": {"user_data": UserData()},
    "k2": {"user_data": UserData(email=HASH, client_user_agent="UA")},
    "u1": {"user_data": UserData()},
    "u2": {},
    # opt_out and Limited Data Use.
    "k3": {"opt_out": True},
    "k4": LDU_CALIFORNIA,
    "k5": LDU_GEOLOCATED,
    "k6": {**LDU_GEOLOCATED, "name": "CompleteRegistration", "url": "https://x.test/s"},
    # custom_data from properties.
    "d1": {
        "custom_data": CustomData(
            value=5.0,
            currency="USD",
            content_ids=["7", "b"],
            content_type="product",
            contents=[
                Content(product_id="7", item_price=3.0),
                Content(product_id="b", quantity=2, item_price=10.5),
            ],
            num_items=3,
            order_id="P-1",
            predicted_ltv=120.46,
        )
    },
    "d2": {},
    "d3": {
        "custom_data": CustomData(
            value=5.0,
            currency="USD",
            content_ids=["TPL-1"],
            content_type="product",
            contents=[Content(product_id="TPL-1", quantity=2, item_price=12.5)],
            num_items=2,
            order_id="O-3",
        )
    },
    "d4": {"custom_data": CustomData(value=5.0, currency="USD", order_id="42")},
    "d5": {"custom_data": CustomData(value=5.0, currency="USD", content_ids=["S"], content_type="product")},
}


@pytest.mark.parametrize("conversion_id", sorted(SDK_CASES))
def test_hand_worked_payload_is_the_sdks(conversion_id: str) -> None:
    ours = expected_payloads()[conversion_id]
    fields = dict(SDK_CASES[conversion_id])
    sdk = sdk_event(ours["event_id"], **fields)
    # The SDK writes the currency in lower case (Meta takes either); the rest must be identical.
    ours["custom_data"]["currency"] = ours["custom_data"]["currency"].lower()
    assert ours == sdk


def test_without_limited_data_use_neither_we_nor_the_sdk_send_data_processing_options() -> None:
    sdk = sdk_event("e")
    assert not any(key.startswith("data_processing") for key in sdk)
    assert not any(key.startswith("data_processing") for key in expected_payloads()["k2"])
