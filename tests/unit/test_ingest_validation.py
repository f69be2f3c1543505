"""`convopt ingest` validation rules: each field's rule accepts or rejects a row with a reason."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from ingest_helpers import MISSING, NOON, NOON_MS, record, rows, write_csv, write_jsonl

from pipelines.ingest import ingest_file
from pipelines.warehouse import connect, raw_table_ddl

# ---------------------------------------------------------------------------------------------
# Validation rules: one file per stream, one line per case; each case passes or fails one field
# ---------------------------------------------------------------------------------------------

LONG = "x" * 129
CASES = [
    # (case id, stream, overrides, failing field or None, reason fragment)
    ("required-missing", "events", {"event_id": MISSING}, "event_id", "event_id: is required, got null"),
    (
        "required-null",
        "events",
        {"person_id": None},
        "person_id",
        "person_id: is required when anonymous_id is not given, got null",
    ),
    ("required-blank", "events", {"event_name": "   "}, "event_name", "event_name: is required, got '   '"),
    ("required-time", "events", {"event_time": MISSING}, "event_time", "event_time: is required, got null"),
    ("max-length-ok", "events", {"event_id": "x" * 128}, None, ""),
    ("max-length", "events", {"event_id": LONG}, "event_id", "expected at most 128 characters, got 'xxx"),
    ("enum-trim-lower", "events", {"source": " PIXEL "}, None, ""),
    (
        "enum",
        "events",
        {"source": "email"},
        "source",
        "source: expected one of pixel, capi, webhook, app, got 'email'",
    ),
    (
        "enum-device",
        "events",
        {"device_type": "phone"},
        "device_type",
        "expected one of desktop, mobile, tablet",
    ),
    ("str-number-ok", "events", {"campaign_id": 12345}, None, ""),
    (
        "str-object",
        "events",
        {"campaign_id": {"id": 1}},
        "campaign_id",
        "expected a string, got '{\"id\":1}' (a JSON object)",
    ),
    ("str-boolean", "events", {"utm_source": True}, "utm_source", "(a JSON boolean)"),
    ("ts-offset", "events", {"event_time": "2026-03-01T14:00:00+02:00"}, None, ""),
    ("ts-space-fraction", "events", {"event_time": "2026-03-01 12:00:00.123-0130"}, None, ""),
    ("ts-epoch-number", "events", {"event_time": NOON_MS}, None, ""),
    ("ts-epoch-string", "events", {"event_time": str(NOON_MS)}, None, ""),
    (
        "ts-naive",
        "events",
        {"event_time": "2026-03-01T12:00:00"},
        "event_time",
        "got '2026-03-01T12:00:00' (has no UTC offset)",
    ),
    (
        "ts-invalid-date",
        "events",
        {"event_time": "2026-13-45T10:00:00Z"},
        "event_time",
        "(not a valid date or time)",
    ),
    (
        "ts-garbage",
        "events",
        {"event_time": "yesterday"},
        "event_time",
        "or epoch milliseconds, got 'yesterday'",
    ),
    (
        "ts-epoch-seconds",
        "events",
        {"event_time": NOON_MS // 1000},
        "event_time",
        "(epoch seconds? expected milliseconds)",
    ),
    ("json-object", "events", {"properties": {"page": "/p/1", "n": 2}}, None, ""),
    ("json-object-in-string", "events", {"properties": '{"page": "/p/1"}'}, None, ""),
    (
        "json-array",
        "events",
        {"properties": [1, 2]},
        "properties",
        "expected a JSON object, got '[1,2]' (a JSON array)",
    ),
    ("json-scalar", "events", {"properties": 5}, "properties", "(a JSON number)"),
    ("json-invalid", "events", {"properties": "{oops"}, "properties", "got '{oops' (not valid JSON)"),
    ("int-string", "conversions", {"value_cents": "12"}, None, ""),
    ("int-whole-decimal", "conversions", {"value_cents": "12.0"}, None, ""),
    (
        "int-fraction",
        "conversions",
        {"value_cents": "12.5"},
        "value_cents",
        "value_cents: expected a whole number >= 0, got '12.5'",
    ),
    ("int-text", "conversions", {"value_cents": "abc"}, "value_cents", "got 'abc'"),
    (
        "int-negative",
        "conversions",
        {"value_cents": -5},
        "value_cents",
        "value_cents: expected a whole number >= 0, got '-5'",
    ),
    ("currency-lower-ok", "conversions", {"currency": "usd"}, None, ""),
    (
        "currency-unknown",
        "conversions",
        {"currency": "XYZ"},
        "currency",
        "expected a 3-letter ISO 4217 currency code, got 'XYZ'",
    ),
    ("currency-free", "conversions", {"value_cents": 0, "currency": MISSING}, None, ""),
    (
        "currency-needed",
        "conversions",
        {"currency": MISSING},
        "currency",
        "currency: is required when value_cents > 0, got null",
    ),
    ("conversion-type", "conversions", {"conversion_type": "refund"}, "conversion_type", "got 'refund'"),
    (
        "date-slashes",
        "ad_spend",
        {"date": "2026/03/01"},
        "date",
        "date: expected a date as YYYY-MM-DD, got '2026/03/01'",
    ),
    ("date-invalid", "ad_spend", {"date": "2026-02-30"}, "date", "got '2026-02-30'"),
    (
        "clicks-gt-impressions",
        "ad_spend",
        {"clicks": 101},
        "clicks",
        "clicks: expected at most impressions, got '101'",
    ),
    ("spend-required", "ad_spend", {"spend_cents": MISSING}, "spend_cents", "spend_cents: is required"),
    # Consent columns: optional; consent_ads an enumeration, opt_out and limited_data_use booleans.
    (
        "consent-ok",
        "conversions",
        {"consent_ads": " Denied ", "opt_out": True, "limited_data_use": "yes"},
        None,
        "",
    ),
    (
        "consent-blank-ok",
        "conversions",
        {"consent_ads": "", "opt_out": None, "limited_data_use": "0"},
        None,
        "",
    ),
    (
        "consent-unknown-value",
        "conversions",
        {"consent_ads": "maybe"},
        "consent_ads",
        "consent_ads: expected one of granted, denied, unknown, got 'maybe'",
    ),
    (
        "opt-out-text",
        "conversions",
        {"opt_out": "perhaps"},
        "opt_out",
        "opt_out: expected true or false (also 1/0, yes/no), got 'perhaps'",
    ),
    ("ldu-number", "conversions", {"limited_data_use": 2}, "limited_data_use", "got '2'"),
    (
        "ldu-object",
        "conversions",
        {"limited_data_use": {"on": True}},
        "limited_data_use",
        "limited_data_use:",
    ),
    ("event-consent-ok", "events", {"consent_ads": "granted", "opt_out": "false", "state": "CA"}, None, ""),
    (
        "event-consent-bad",
        "events",
        {"consent_ads": "yes"},
        "consent_ads",
        "consent_ads: expected one of granted, denied, unknown, got 'yes'",
    ),
    ("ad-currency-required", "ad_spend", {"currency": " "}, "currency", "currency: is required"),
    ("adjustment-ok", "adjustments", {"reason": "requested_by_customer"}, None, ""),
    (
        "adjustment-restatement-zero",
        "adjustments",
        {"adjustment_type": "Restatement", "amount_cents": 0},
        None,
        "",
    ),
    (
        "adjustment-negative-refund",
        "adjustments",
        {"amount_cents": -500},
        "amount_cents",
        "amount_cents: expected a whole number >= 0, got '-500'",
    ),
    (
        "adjustment-type",
        "adjustments",
        {"adjustment_type": "void"},
        "adjustment_type",
        "adjustment_type: expected one of refund, chargeback, restatement, got 'void'",
    ),
    (
        "adjustment-conversion-required",
        "adjustments",
        {"conversion_event_id": MISSING},
        "conversion_event_id",
        "conversion_event_id: is required, got null",
    ),
    (
        "adjustment-conversion-type",
        "adjustments",
        {"conversion_type": "refund"},
        "conversion_type",
        "conversion_type: expected one of purchase, signup, video_render, subscription, got 'refund'",
    ),
    ("adjustment-amount-required", "adjustments", {"amount_cents": MISSING}, "amount_cents", "is required"),
    (
        "adjustment-currency-required",
        "adjustments",
        {"currency": MISSING},
        "currency",
        "currency: is required",
    ),
    (
        "adjustment-currency-without-rates",
        "adjustments",
        {"currency": "XAU"},
        "currency",
        "expected a currency the warehouse has exchange rates for",
    ),
    (
        "adjustment-time-naive",
        "adjustments",
        {"adjusted_at": "2026-03-05T12:00:00"},
        "adjusted_at",
        "got '2026-03-05T12:00:00' (has no UTC offset)",
    ),
    (
        "adjustment-amount-too-large",
        "adjustments",
        {"amount_cents": 1_000_000_000_000},
        "amount_cents",
        "expected at most 999,999,999,999",
    ),
    # Anonymous visitors: a row needs person_id or anonymous_id; identities link the two.
    ("anonymous-event-ok", "events", {"person_id": MISSING, "anonymous_id": "cookie-1"}, None, ""),
    ("anonymous-and-person-ok", "events", {"anonymous_id": "cookie-2"}, None, ""),
    (
        "neither-person-nor-anonymous",
        "events",
        {"person_id": " ", "anonymous_id": MISSING},
        "person_id",
        "person_id: is required when anonymous_id is not given, got ' '",
    ),
    (
        "anonymous-id-too-long",
        "events",
        {"person_id": MISSING, "anonymous_id": "x" * 124},
        "anonymous_id",
        "anonymous_id: expected at most 123 characters",
    ),
    (
        "person-id-reserved-prefix",
        "events",
        {"person_id": "anon:cookie-3"},
        "person_id",
        "expected a person id not starting with 'anon:'",
    ),
    ("anonymous-conversion-ok", "conversions", {"person_id": MISSING, "anonymous_id": "cookie-4"}, None, ""),
    (
        "conversion-neither-id",
        "conversions",
        {"person_id": MISSING},
        "person_id",
        "person_id: is required when anonymous_id is not given",
    ),
    ("identity-ok", "identities", {"source": "Login"}, None, ""),
    ("identity-without-source-ok", "identities", {"source": MISSING}, None, ""),
    (
        "identity-anonymous-required",
        "identities",
        {"anonymous_id": MISSING},
        "anonymous_id",
        "anonymous_id: is required, got null",
    ),
    ("identity-person-required", "identities", {"person_id": ""}, "person_id", "person_id: is required"),
    (
        "identity-time-naive",
        "identities",
        {"observed_at": "2026-03-01T12:00:00"},
        "observed_at",
        "got '2026-03-01T12:00:00' (has no UTC offset)",
    ),
    (
        "identity-anonymous-too-long",
        "identities",
        {"anonymous_id": "a" * 124},
        "anonymous_id",
        "expected at most 123 characters",
    ),
    ("identity-person-too-long", "identities", {"person_id": LONG}, "person_id", "expected at most 128"),
    (
        "identity-same-ids",
        "identities",
        {"anonymous_id": "p1"},
        "anonymous_id",
        "anonymous_id: expected an anonymous id other than the row's person_id, got 'p1'",
    ),
    (
        "identity-reserved-prefix",
        "identities",
        {"person_id": "anon:x"},
        "person_id",
        "not starting with 'anon:'",
    ),
]


@pytest.fixture(scope="module")
def case_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str] | None]:
    """Load one file per stream; map each case to (failing_fields, reason), or None if loaded."""
    folder = tmp_path_factory.mktemp("cases")
    connection = connect(folder / "wh.duckdb")
    outcomes: dict[str, tuple[str, str] | None] = {}
    for stream in ("events", "conversions", "ad_spend", "adjustments", "identities"):
        cases = [c for c in CASES if c[1] == stream]
        path = write_jsonl(
            folder / f"{stream}.jsonl", [record(stream, n, **c[2]) for n, c in enumerate(cases)]
        )
        result = ingest_file(connection, path)
        assert result.status == "loaded", result.message
        rejected = dict(
            connection.execute(
                "select row_number, [failing_fields, reason] from raw.rejected_rows where file_name = ?",
                [str(path)],
            ).fetchall()
        )
        loaded = {r[0] for r in rows(connection, f"select _source_row from raw.{stream}")}
        for line, case in enumerate(cases, start=1):
            assert (line in loaded) != (line in rejected), case[0]
            outcomes[case[0]] = tuple(rejected[line]) if line in rejected else None  # type: ignore[assignment]
    connection.close()
    return outcomes


@pytest.mark.parametrize(
    ("case", "field", "fragment"), [(c[0], c[3], c[4]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_validation_rule(case_outcomes: dict, case: str, field: str | None, fragment: str) -> None:
    outcome = case_outcomes[case]
    if field is None:
        assert outcome is None, f"{case} should load, was rejected: {outcome}"
    else:
        assert outcome is not None, f"{case} should be rejected on {field}"
        failing_fields, reason = outcome
        assert failing_fields == field
        assert fragment in reason


def test_valid_values_are_stored_typed_and_as_received(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "conversions.jsonl",
        [
            record(
                "conversions",
                value_cents="12.0",
                currency=" usd",
                campaign_id=12345,
                email=" Jane@Example.com ",
                conversion_time="2026-03-01T14:00:00+02:00",
                properties={"b": 2, "a": [1, 2]},
            )
        ],
    )
    assert ingest_file(con, path).status == "loaded"
    stored = rows(
        con,
        "select value_cents, currency, campaign_id, email, conversion_time, properties from raw.conversions",
    )
    assert stored == [(12, " usd", "12345", " Jane@Example.com ", NOON, '{"b":2,"a":[1,2]}')]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_consent_columns_are_stored_typed_in_every_format(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, fmt: str
) -> None:
    records = [
        record("conversions", 1, consent_ads="Granted", opt_out="true", limited_data_use="1", state="CA"),
        record("conversions", 2, consent_ads="denied", opt_out="no", limited_data_use="false"),
        record("conversions", 3),
    ]
    path = tmp_path / f"conversions.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, records)
    elif fmt == "csv":
        write_csv(path, records)
    else:
        pl.DataFrame(records).write_parquet(path)
    assert ingest_file(con, path).status == "loaded"
    stored = rows(
        con, "select consent_ads, opt_out, limited_data_use, state from raw.conversions order by event_id"
    )
    assert stored == [("Granted", True, True, "CA"), ("denied", False, False, None), (None, None, None, None)]


def test_a_bad_consent_value_in_csv_names_the_row_and_field(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "conversions.csv", [record("conversions", 1, opt_out="si"), record("conversions", 2)]
    )
    result = ingest_file(con, path)
    assert result.status == "loaded" and result.rows_rejected == 1
    assert rows(con, "select row_number, failing_fields, reason from raw.rejected_rows") == [
        (1, "opt_out", "opt_out: expected true or false (also 1/0, yes/no), got 'si'")
    ]


def test_a_raw_table_from_before_the_consent_columns_gets_them(tmp_path: Path) -> None:
    warehouse = tmp_path / "old.duckdb"
    with duckdb.connect(str(warehouse)) as old:
        old.execute("create schema raw")
        old.execute(raw_table_ddl("conversions"))
        for name in ("consent_ads", "opt_out", "limited_data_use"):
            old.execute(f"alter table raw.conversions drop column {name}")
    connection = connect(warehouse)
    path = write_jsonl(tmp_path / "conversions.jsonl", [record("conversions", 1, consent_ads="denied")])
    assert ingest_file(connection, path).status == "loaded"
    assert rows(connection, "select consent_ads, opt_out from raw.conversions") == [("denied", None)]
    connection.close()


def test_a_row_failing_several_fields_gets_one_reason_per_field(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_jsonl(
        tmp_path / "events.jsonl", [record("events", event_id="", source="nope", event_time="2026")]
    )
    ingest_file(con, path)
    ((fields, reason),) = rows(con, "select failing_fields, reason from raw.rejected_rows")
    assert fields == "event_id,event_time,source"
    assert reason.split("; ")[0] == "event_id: is required, got ''"
    assert len(reason.split("; ")) == 3
