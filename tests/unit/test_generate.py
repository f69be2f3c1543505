"""The synthetic data generator: determinism, the raw contract, realism, bad rows, files and the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.contract import ISO_4217, STREAMS, column_names, columns
from pipelines.generate import BAD_ROW_KINDS, FORMATS, GeneratorConfig, WrittenFile, generate_dataset

START = dt.date(2026, 3, 2)
SMALL = {"persons": 300, "days": 14, "start": START}
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


# --- helpers ------------------------------------------------------------------------------------------------


def _generate(tmp_path: Path, name: str = "out", **options: Any) -> list[WrittenFile]:
    return generate_dataset(tmp_path / name, GeneratorConfig(**{**SMALL, **options}))


def _read(path: Path) -> list[dict[str, Any]]:
    """Rows of a landing file as the producer wrote them (JSONL values, CSV text, Parquet typed values)."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(handle)]
    return pq.read_table(path).to_pylist()


def _header(path: Path) -> list[str]:
    if path.suffix == ".csv":
        return path.read_text(encoding="utf-8").splitlines()[0].split(",")
    if path.suffix == ".parquet":
        return pq.read_schema(path).names
    return list(json.loads(path.read_text(encoding="utf-8").splitlines()[0]))


def _rows(files: list[WrittenFile], stream: str) -> list[dict[str, Any]]:
    return [row for f in files if f.stream == stream for row in _read(f.path)]


def _instant(value: Any) -> dt.datetime:
    """A contract timestamp (ISO-8601 with offset, epoch ms, or a datetime) as a UTC datetime."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC)
    if not isinstance(value, str) or not ISO_WITH_OFFSET.match(value):
        raise ValueError(f"not a timestamp with an offset: {value!r}")
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def _violations(stream: str, row: dict[str, Any]) -> list[str]:
    """What is wrong with a row by the raw contract, as ``<check>:<column>`` reasons (empty list = valid)."""
    problems = []
    for column in columns(stream):
        value = row.get(column.name)
        if isinstance(value, str) and value.strip() == "":
            value = None
        if value is None:
            if column.required:
                problems.append(f"missing:{column.name}")
            continue
        if column.kind == "str" and len(value) > column.max_length:
            problems.append(f"too_long:{column.name}")
        if column.allowed is not None and str(value).strip().lower() not in column.allowed:
            problems.append(f"unknown:{column.name}")
        if column.kind == "int":
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value))
            ):
                problems.append(f"not_integer:{column.name}")
            elif column.min_value is not None and int(value) < column.min_value:
                problems.append(f"negative:{column.name}")
        if column.kind == "timestamp":
            if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+", value):
                problems.append(f"no_offset:{column.name}")
            else:
                try:
                    _instant(value)
                except ValueError:
                    problems.append(f"unparseable:{column.name}")
        if column.kind == "date" and not isinstance(value, dt.date):
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                problems.append(f"unparseable:{column.name}")
        if column.kind == "json":
            parsed = value
            if isinstance(value, str):
                try:
                    parsed = json.loads(value)
                except ValueError:
                    parsed = None
            if not isinstance(parsed, dict):
                problems.append(f"not_object:{column.name}")
    currency = row.get("currency") or None
    if currency is not None and currency not in ISO_4217:
        problems.append("bad:currency")
    if stream == "conversions" and currency is None:
        value = row.get("value_cents")
        if isinstance(value, int | str) and re.fullmatch(r"\d+", str(value)) and int(value) > 0:
            problems.append("missing_with_value:currency")
    if stream in ("events", "conversions") and not (row.get("person_id") or row.get("anonymous_id")):
        problems.append("missing:person_id")  # a row needs person_id or anonymous_id
    if stream == "identities" and row.get("anonymous_id") and row.get("anonymous_id") == row.get("person_id"):
        problems.append("same_ids:anonymous_id")
    if stream == "ad_spend":
        clicks, impressions = row.get("clicks"), row.get("impressions")
        counts = all(
            isinstance(v, int) or (isinstance(v, str) and v.isdigit()) for v in (clicks, impressions)
        )
        if counts and int(clicks) > int(impressions):
            problems.append("exceeds:clicks")
    return problems


# what a validator reports for each kind of deliberately bad row
_KIND_REASONS = {
    "missing_event_id": "missing:event_id",
    "missing_person_id": "missing:person_id",
    "missing_event_name": "missing:event_name",
    "missing_event_time": "missing:event_time",
    "missing_conversion_type": "missing:conversion_type",
    "missing_conversion_time": "missing:conversion_time",
    "missing_date": "missing:date",
    "missing_campaign_id": "missing:campaign_id",
    "missing_spend_cents": "missing:spend_cents",
    "missing_adjustment_id": "missing:adjustment_id",
    "missing_anonymous_id": "missing:anonymous_id",
    "same_anonymous_and_person_id": "same_ids:anonymous_id",
    "missing_conversion_event_id": "missing:conversion_event_id",
    "unknown_adjustment_type": "unknown:adjustment_type",
    "negative_amount": "negative:amount_cents",
    "unknown_source": "unknown:source",
    "unknown_device_type": "unknown:device_type",
    "unknown_conversion_type": "unknown:conversion_type",
    "unknown_conversion_source": "unknown:conversion_source",
    "negative_value_cents": "negative:value_cents",
    "non_integer_value_cents": "not_integer:value_cents",
    "negative_spend": "negative:spend_cents",
    "non_integer_impressions": "not_integer:impressions",
    "bad_currency": ("bad:currency", "too_long:currency"),
    "currency_missing_with_value": "missing_with_value:currency",
    "unparseable_timestamp": (
        "unparseable:event_time",
        "unparseable:conversion_time",
        "unparseable:adjusted_at",
        "unparseable:observed_at",
    ),
    "timestamp_without_offset": (
        "no_offset:event_time",
        "no_offset:conversion_time",
        "no_offset:adjusted_at",
        "no_offset:observed_at",
    ),
    "unparseable_date": "unparseable:date",
    "properties_not_object": "not_object:properties",
    "clicks_exceed_impressions": "exceeds:clicks",
    "string_too_long": "too_long:",
}


# --- determinism --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_config_writes_identical_bytes_and_another_seed_differs(tmp_path: Path, fmt: str) -> None:
    first = _generate(tmp_path, "a", fmt=fmt, bad_rows_ratio=0.02)
    second = _generate(tmp_path, "b", fmt=fmt, bad_rows_ratio=0.02)
    other_seed = _generate(tmp_path, "c", fmt=fmt, bad_rows_ratio=0.02, seed=7)
    assert [f.path.name for f in first] == [f.path.name for f in second] == [f.path.name for f in other_seed]
    for a, b, c in zip(first, second, other_seed, strict=True):
        assert a.path.read_bytes() == b.path.read_bytes(), f"{a.path.name} differs between identical runs"
        assert a.path.read_bytes() != c.path.read_bytes(), f"{a.path.name} is the same for another seed"


# --- the contract -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_contract_column_is_in_every_file_and_good_rows_are_valid(tmp_path: Path, fmt: str) -> None:
    files = _generate(tmp_path, fmt=fmt)
    assert [f.path.name for f in files] == [f"{stream}.{fmt}" for stream in STREAMS]
    for written in files:
        if fmt != "jsonl":
            assert _header(written.path) == column_names(written.stream)
        rows = _read(written.path)
        assert len(rows) == written.rows > 0
        assert written.bad_rows == 0
        assert written.bytes == written.path.stat().st_size
        for row in rows:
            if fmt == "jsonl":  # nulls of optional columns may be omitted; nothing outside the contract
                assert set(row) <= set(column_names(written.stream))
            else:
                assert list(row) == column_names(written.stream)
            assert _violations(written.stream, row) == [], row


def test_parquet_is_typed(tmp_path: Path) -> None:
    files = _generate(tmp_path, fmt="parquet")
    schemas = {f.stream: pq.read_schema(f.path) for f in files}
    assert str(schemas["events"].field("event_time").type) == "timestamp[us, tz=UTC]"
    assert str(schemas["conversions"].field("conversion_time").type) == "timestamp[us, tz=UTC]"
    assert str(schemas["conversions"].field("value_cents").type) == "int64"
    assert str(schemas["ad_spend"].field("date").type) == "date32[day]"
    for name in ("spend_cents", "impressions", "clicks"):
        assert str(schemas["ad_spend"].field(name).type) == "int64"
    assert str(schemas["events"].field("event_name").type) == "string"  # plain strings, not dictionaries


def test_timestamps_mix_formats_and_fall_in_the_range(tmp_path: Path) -> None:
    files = _generate(tmp_path, fmt="jsonl")
    low = dt.datetime.combine(START, dt.time(), dt.UTC)
    high = low + dt.timedelta(days=SMALL["days"])
    seen: Counter[str] = Counter()
    for stream, name in (("events", "event_time"), ("conversions", "conversion_time")):
        for row in _rows(files, stream):
            value = row[name]
            instant = _instant(value)
            assert low <= instant < high, value
            if isinstance(value, int):
                seen["epoch_ms"] += 1
            elif value.endswith("Z"):
                seen["Z"] += 1
            elif value.endswith("+00:00"):
                seen["+00:00"] += 1
            else:
                seen["local"] += 1
    assert all(seen[kind] > 100 for kind in ("epoch_ms", "Z", "+00:00", "local")), seen
    assert {row["date"] for row in _rows(files, "ad_spend")} <= {
        (START + dt.timedelta(days=d)).isoformat() for d in range(SMALL["days"])
    }


def test_properties_are_nested_objects_in_jsonl_and_json_text_in_csv(tmp_path: Path) -> None:
    jsonl = _rows(_generate(tmp_path, "j", fmt="jsonl"), "events")
    text = _rows(_generate(tmp_path, "c", fmt="csv"), "events")
    assert all(isinstance(row["properties"], dict) for row in jsonl)
    assert [json.loads(row["properties"]) for row in text] == [row["properties"] for row in jsonl]


# --- realism ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The default size (2000 persons, 60 days) once for the realism checks."""
    files = generate_dataset(tmp_path_factory.mktemp("default"), GeneratorConfig(start=START, fmt="parquet"))
    return {stream: _rows(files, stream) for stream in STREAMS}


def test_default_size_gives_tens_of_thousands_of_events_and_thousands_of_conversions(
    default_data: dict,
) -> None:
    assert 30_000 <= len(default_data["events"]) <= 60_000
    assert 1_500 <= len(default_data["conversions"]) <= 10_000
    # Visitors who never sign up are known only by their anonymous id.
    persons = {row["person_id"] for row in default_data["events"] if row.get("person_id")}
    anonymous = {row["anonymous_id"] for row in default_data["events"] if not row.get("person_id")}
    assert len(persons) <= 2000 <= len(persons) + len(anonymous)


def test_funnel_drops_off_step_by_step(default_data: dict) -> None:
    names = Counter(row["event_name"] for row in default_data["events"])
    purchases = {
        row["event_id"] for row in default_data["conversions"] if row["conversion_type"] == "purchase"
    }
    assert names["landing_page_view"] > names["add_to_cart"] > names["checkout_started"] > len(purchases) > 0
    assert (
        names["ad_click"] > 0
        and names["video_render_started"] > 0
        and names["page_view"] > names["landing_page_view"]
    )
    signups = {row["event_id"] for row in default_data["conversions"] if row["conversion_type"] == "signup"}
    renders = {
        row["event_id"] for row in default_data["conversions"] if row["conversion_type"] == "video_render"
    }
    assert len(signups) > 0 and len(renders) > 0
    assert names.keys() <= {
        "ad_click",
        "landing_page_view",
        "page_view",
        "add_to_cart",
        "checkout_started",
        "video_render_started",
    }


def test_pixel_conversions_are_often_also_sent_by_capi_with_the_same_event_id(default_data: dict) -> None:
    sources: dict[tuple[str, str], set[str]] = {}
    for row in default_data["conversions"]:
        sources.setdefault((row["conversion_type"], row["event_id"]), set()).add(row["conversion_source"])
    pixel = [s for s in sources.values() if "pixel" in s]
    both = [s for s in pixel if "capi" in s]
    assert 0.25 <= len(both) / len(pixel) <= 0.45
    rows = default_data["conversions"]
    exact_copies = len(rows) - len({json.dumps(row, default=str, sort_keys=True) for row in rows})
    assert 0 < exact_copies <= 0.03 * len(rows)  # retries


def test_pixel_and_capi_copies_carry_different_identity_fields(default_data: dict) -> None:
    rows: dict[str, list[dict[str, Any]]] = {"pixel": [], "capi": [], "webhook": []}
    for row in default_data["conversions"]:
        rows[row["conversion_source"]].append(row)

    def share(source: str, field: str) -> float:
        return sum(row[field] is not None for row in rows[source]) / len(rows[source])

    assert share("capi", "email") > 0.8 > 0.4 > share("pixel", "email")
    assert share("capi", "phone") > share("pixel", "phone")
    assert share("pixel", "fbp") > 0.9 > 0.7 > share("capi", "fbp")
    assert share("webhook", "client_user_agent") == 0 and share("webhook", "external_id") == 1


def test_values_currencies_and_repeat_customers_look_like_a_shop(default_data: dict) -> None:
    conversions = default_data["conversions"]
    purchases = [row for row in conversions if row["conversion_type"] == "purchase"]
    subscriptions = [row for row in conversions if row["conversion_type"] == "subscription"]
    assert len({row["currency"] for row in purchases}) >= 4
    assert all(499 <= row["value_cents"] <= 3 * 99_999 for row in purchases)
    assert {row["value_cents"] for row in subscriptions if row["currency"] == "USD"} <= {1499, 2999}
    assert any(json.loads(row["properties"]).get("renewal") for row in subscriptions)  # monthly renewals
    for row in conversions:
        if row["conversion_type"] in ("signup", "video_render"):
            assert row["value_cents"] in (0, None)
        else:
            assert row["value_cents"] > 0 and row["currency"] in {"USD", "EUR", "GBP", "CAD", "AUD", "BRL"}
    buyers = Counter(row["person_id"] for row in purchases if row["conversion_source"] != "capi")
    assert sum(1 for n in buyers.values() if n > 1) >= 3


def test_identity_fields_come_in_mixed_spellings(default_data: dict) -> None:
    conversions = default_data["conversions"]

    def values(name: str) -> list[str]:
        return [row[name] for row in conversions if row[name] is not None]

    emails = values("email")
    assert (
        any(e != e.strip() for e in emails)
        and any(e != e.lower() for e in emails)
        and any("+" in e for e in emails)
    )
    phones = values("phone")
    assert any(p.startswith("+") for p in phones) and any(p.startswith("00") for p in phones)
    assert any(not p.startswith(("+", "00")) for p in phones)
    births = values("date_of_birth")
    assert (
        any("-" in b for b in births) and any("/" in b for b in births) and any(b.isdigit() for b in births)
    )
    assert set(values("gender")) == {"F", "f", "female", "Female", "M", "m", "male", "Male"}
    states = set(values("state"))
    assert any(len(s) == 2 and s.isupper() for s in states) and any(len(s) > 2 for s in states)
    assert any(s.islower() for s in states)
    assert any(re.fullmatch(r"\d{5}-\d{4}", z) for z in values("zip"))
    assert any("'" in n or "-" in n for n in values("last_name") + values("first_name"))
    assert any(not n.isascii() for n in values("last_name") + values("first_name"))
    assert all(f.startswith("fb.1.") for f in values("fbc") + values("fbp"))


def test_paid_touches_carry_attribution_and_fbclid(default_data: dict) -> None:
    events = default_data["events"]
    clicks = [row for row in events if row["event_name"] == "ad_click"]
    assert all(row["campaign_id"] and row["ad_id"] and row["utm_source"] for row in clicks)
    meta = [row for row in clicks if row["utm_source"] in ("facebook", "instagram")]
    assert meta and all(row["fbclid"] and row["campaign_id"].startswith("12021") for row in meta)
    assert {row["utm_medium"] for row in meta} <= {"paid_social", "cpc"}
    google = [row for row in clicks if row["utm_source"] == "google"]
    assert google and all(
        row["utm_medium"] == "cpc" and row["utm_term"] and not row["fbclid"] for row in google
    )
    landings = [row for row in events if row["event_name"] == "landing_page_view" and row["utm_source"]]
    assert {row["utm_source"] for row in landings} >= {"facebook", "instagram", "google", "newsletter"}
    assert all("utm_source=" in row["event_source_url"] for row in landings if row["source"] != "app")
    page_views = [row for row in events if row["event_name"] == "page_view"]
    assert all(row["campaign_id"] is None for row in page_views)
    sources = Counter(row["source"] for row in events)
    assert sources["pixel"] > 0.8 * len(events) and sources["app"] > 0
    attributed = [row for row in default_data["conversions"] if row["campaign_id"]]
    assert 0.1 * len(default_data["conversions"]) < len(attributed) < 0.9 * len(default_data["conversions"])


def test_ad_spend_clicks_are_the_ad_click_events_of_that_ad_and_day(default_data: dict) -> None:
    clicks = Counter(
        (row["event_time"].date(), row["ad_id"])
        for row in default_data["events"]
        if row["event_name"] == "ad_click"
    )
    spend = default_data["ad_spend"]
    assert {(row["date"], row["ad_id"]): row["clicks"] for row in spend if row["clicks"]} == clicks
    assert all(row["impressions"] >= row["clicks"] and row["spend_cents"] >= 0 for row in spend)
    assert any(row["clicks"] == 0 and row["impressions"] > 0 for row in spend)
    assert {row["currency"] for row in spend} == {"USD"}
    assert all(0.0049 <= row["clicks"] / row["impressions"] <= 0.03 for row in spend if row["clicks"])
    campaigns = {row["campaign_id"] for row in spend}
    assert 8 <= len(campaigns) <= 14  # 6-10 Meta + 2-4 Google campaigns
    assert len({row["campaign_id"] for row in spend if row["campaign_id"].startswith("12021")}) >= 6


def test_visits_follow_weekday_and_time_of_day_patterns(default_data: dict) -> None:
    landings = [
        row["event_time"] for row in default_data["events"] if row["event_name"] == "landing_page_view"
    ]
    by_weekday = Counter(t.weekday() for t in landings)
    assert (by_weekday[5] + by_weekday[6]) / 2 < sum(by_weekday[d] for d in range(5)) / 5
    devices = Counter(row["device_type"] for row in default_data["events"])
    assert devices["mobile"] > devices["desktop"] > devices["tablet"] > 0


# --- bad rows -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_rows_are_about_the_ratio_and_each_kind_appears(tmp_path: Path, fmt: str) -> None:
    ratio = 0.1
    files = _generate(tmp_path, fmt=fmt, bad_rows_ratio=ratio)
    for written in files:
        rows = _read(written.path)
        reasons = [_violations(written.stream, row) for row in rows]
        invalid = [r for r in reasons if r]
        assert len(invalid) == written.bad_rows
        assert abs(written.bad_rows - ratio * written.rows) <= 1
        defects = [{reason.split(":")[1] for reason in r} for r in invalid]
        assert all(len(columns) == 1 for columns in defects), invalid[:5]  # one broken column per bad row
        found = {r[0] for r in invalid}
        if written.bad_rows < len(BAD_ROW_KINDS[written.stream]):
            continue  # too few rows for every kind (the adjustments of a small data set)
        for kind in BAD_ROW_KINDS[written.stream]:
            expected = _KIND_REASONS[kind]
            expected = (expected,) if isinstance(expected, str) else expected
            assert any(reason.startswith(expected) for reason in found), (
                f"{written.stream}: no {kind} in {fmt}"
            )


def test_jsonl_lines_stay_valid_json_with_bad_rows(tmp_path: Path) -> None:
    files = _generate(tmp_path, fmt="jsonl", bad_rows_ratio=0.5)
    for written in files:
        lines = written.path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == written.rows
        assert all(isinstance(json.loads(line), dict) for line in lines)


# --- configuration and files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"persons": 0}, "persons"),
        ({"days": 0}, "days"),
        ({"fmt": "xml"}, "fmt must be one of jsonl, csv, parquet"),
        ({"bad_rows_ratio": 0.7}, "bad_rows_ratio"),
        ({"bad_rows_ratio": -0.1}, "bad_rows_ratio"),
        ({"files_per_stream": 0}, "files_per_stream"),
        ({"events": 0}, "events"),
        ({"start": dt.datetime(2026, 1, 1, 12)}, "start"),
    ],
)
def test_invalid_config_is_a_value_error_naming_the_option(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**options)


def test_events_option_sets_the_number_of_persons_to_match(tmp_path: Path) -> None:
    files = generate_dataset(tmp_path, GeneratorConfig(events=20_000, start=START, days=30, fmt="csv"))
    events = next(f for f in files if f.stream == "events")
    assert 17_000 <= events.rows <= 23_000


@pytest.mark.parametrize("fmt", FORMATS)
def test_files_per_stream_splits_rows_without_loss(tmp_path: Path, fmt: str) -> None:
    single = _generate(tmp_path, "one", fmt=fmt, bad_rows_ratio=0.05)
    split = _generate(tmp_path, "three", fmt=fmt, bad_rows_ratio=0.05, files_per_stream=3)
    assert [f.path.name for f in split if f.stream == "events"] == [f"events-000{i}.{fmt}" for i in (1, 2, 3)]
    for stream in STREAMS:
        parts = [f for f in split if f.stream == stream]
        whole = next(f for f in single if f.stream == stream)
        assert len(parts) == 3 and all(f.path.name.startswith(stream) for f in parts)
        assert sum(f.rows for f in parts) == whole.rows
        assert sum(f.bad_rows for f in parts) == whole.bad_rows
        assert [row for f in parts for row in _read(f.path)] == _read(whole.path)


def test_console_summary_lists_files_and_throughput(tmp_path: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=160)
    generate_dataset(tmp_path, GeneratorConfig(**SMALL, bad_rows_ratio=0.01), console=console)
    text = console.export_text()
    for name in ("events.jsonl", "conversions.jsonl", "ad_spend.jsonl", "bad rows", "rows/s"):
        assert name in text


def test_cli_generate_writes_files_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--out",
            str(out),
            "--persons",
            "150",
            "--days",
            "10",
            "--start",
            "2026-03-02",
            "--format",
            "csv",
            "--bad-rows-ratio",
            "0.01",
            "--files-per-stream",
            "2",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stream}-000{i}.csv" for stream in STREAMS for i in (1, 2)
    )
    assert "events-0001.csv" in result.output and "rows/s" in result.output
