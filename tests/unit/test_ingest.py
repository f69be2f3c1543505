"""`convopt ingest`: validation rules, load guarantees, broken files, CLI exit codes."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ingest import (
    IngestUsageError,
    discover_files,
    file_sha256,
    ingest_file,
    ingest_paths,
    loading,
    readers,
)
from pipelines.warehouse import WarehouseSettingError, connect, ensure_raw_schema

MISSING = object()  # a field left out of the record entirely
NOON = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
NOON_MS = int(NOON.timestamp() * 1000)

BASE = {
    "events": {
        "event_id": "e",
        "person_id": "p1",
        "event_name": "ad_click",
        "event_time": "2026-03-01T12:00:00Z",
        "source": "pixel",
    },
    "conversions": {
        "event_id": "c",
        "person_id": "p1",
        "conversion_type": "purchase",
        "conversion_source": "capi",
        "value_cents": 1999,
        "currency": "USD",
        "conversion_time": "2026-03-01T12:00:00Z",
    },
    "ad_spend": {
        "date": "2026-03-01",
        "campaign_id": "cmp1",
        "spend_cents": 1000,
        "currency": "USD",
        "impressions": 100,
        "clicks": 10,
    },
}


def record(stream: str, n: int = 1, **overrides: object) -> dict:
    """A valid record of ``stream`` with ``overrides`` (MISSING drops a field)."""
    row = {**BASE[stream], **overrides}
    if stream != "ad_spend" and "event_id" not in overrides:
        row["event_id"] = f"{row['event_id']}{n}"
    return {k: v for k, v in row.items() if v is not MISSING}


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def write_csv(path: Path, rows: list[dict], fieldnames: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = fieldnames or list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_events(path: Path, rows: list[dict]) -> Path:
    """Write records in the format the file name's extension says."""
    if path.suffix == ".jsonl":
        return write_jsonl(path, rows)
    if path.suffix == ".csv":
        return write_csv(path, rows)
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.fixture
def con(tmp_path: Path):
    connection = connect(tmp_path / "wh.duckdb")
    ensure_raw_schema(connection)
    yield connection
    connection.close()


def rows(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple]:
    return con.execute(query).fetchall()


def count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"select count(*) from {table}").fetchall()[0][0]


# ---------------------------------------------------------------------------------------------
# Validation rules: one file per stream, one line per case; each case passes or fails one field
# ---------------------------------------------------------------------------------------------

LONG = "x" * 129
CASES = [
    # (case id, stream, overrides, failing field or None, reason fragment)
    ("required-missing", "events", {"person_id": MISSING}, "person_id", "person_id: is required, got null"),
    ("required-null", "events", {"person_id": None}, "person_id", "person_id: is required, got null"),
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
    ("ad-currency-required", "ad_spend", {"currency": " "}, "currency", "currency: is required"),
]


@pytest.fixture(scope="module")
def case_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str] | None]:
    """Load one file per stream; map each case to (failing_fields, reason), or None if loaded."""
    folder = tmp_path_factory.mktemp("cases")
    connection = connect(folder / "wh.duckdb")
    outcomes: dict[str, tuple[str, str] | None] = {}
    for stream in ("events", "conversions", "ad_spend"):
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


# ---------------------------------------------------------------------------------------------
# Guarantees
# ---------------------------------------------------------------------------------------------


def test_rejected_row_keeps_file_line_number_fields_reason_and_original_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    bad = json.dumps({**record("events", 2), "event_time": "2026-03-01T12:00:00", "extra": 1})
    path = write_jsonl(tmp_path / "events.jsonl", [record("events"), "", bad])
    result = ingest_file(con, path)
    ((load_id, file_name, stream, line, fields, reason, payload),) = rows(
        con,
        "select load_id, file_name, stream, row_number, failing_fields, reason, payload "
        "from raw.rejected_rows",
    )
    assert (load_id, file_name, stream, line, fields) == (
        result.load_id,
        str(path),
        "events",
        3,
        "event_time",
    )
    assert reason.startswith("event_time: expected an ISO-8601 timestamp")
    assert payload == bad


def test_loaded_plus_rejected_equals_read_in_load_log_and_tables(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    good = [record("events", n) for n in range(5)]
    bad = [record("events", n, source="nope") for n in range(5, 8)]
    path = write_jsonl(tmp_path / "events.jsonl", [*good, *bad])
    result = ingest_file(con, path)
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (8, 5, 3)
    log = rows(
        con,
        "select file_name, stream, file_format, rows_read, rows_loaded, rows_rejected, status "
        "from raw.load_log",
    )
    assert log == [(str(path), "events", "jsonl", 8, 5, 3, "loaded")]
    assert count(con, "raw.events") == 5
    assert count(con, "raw.rejected_rows") == 3
    ((sha,),) = rows(con, "select content_sha256 from raw.load_log")
    assert sha == file_sha256(path)
    lineage = rows(con, "select distinct _load_id, _source_file from raw.events")
    assert lineage == [(result.load_id, str(path))]


def test_rerun_of_same_file_loads_nothing(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", [record("events", n) for n in range(3)])
    assert ingest_file(con, path).status == "loaded"
    again = ingest_file(con, path)
    assert (again.status, again.rows_loaded) == ("skipped", 0)
    assert "already loaded" in again.message
    assert count(con, "raw.events") == 3
    assert count(con, "raw.load_log") == 1


def test_same_content_under_another_name_is_skipped(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", [record("events")])
    copy = tmp_path / "later" / "events-copy.jsonl"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    ingest_file(con, path)
    assert ingest_file(con, copy).status == "skipped"
    assert count(con, "raw.events") == 1


def test_crash_mid_file_leaves_nothing_and_rerun_loads(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", [record("events", 1), record("events", 2, source="nope")])

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut after the raw insert")

    monkeypatch.setattr(loading, "_insert_rejected_rows", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest_file(con, path)
    assert [count(con, f"raw.{t}") for t in ("events", "rejected_rows", "load_log")] == [0, 0, 0]

    monkeypatch.undo()
    result = ingest_file(con, path)
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", 1, 1)


def test_warehouse_error_mid_file_fails_the_file_and_rerun_loads(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", [record("events", 1), record("events", 2, source="nope")])

    def disk_full(*args: object, **kwargs: object) -> None:
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(loading, "_insert_rejected_rows", disk_full)
    result = ingest_file(con, path)
    assert result.status == "failed"
    assert "No space left on device" in result.message
    assert count(con, "raw.events") == 0
    assert rows(con, "select status from raw.load_log") == [("failed",)]

    monkeypatch.undo()
    assert ingest_file(con, path).status == "loaded"
    assert count(con, "raw.events") == 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_large_files_load_in_chunks_with_exact_row_numbers(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(readers, "CHUNK_ROWS", 2)
    monkeypatch.setattr(readers, "CHUNK_BYTES", 150)  # a text block holds one or two records
    records = [record("events", n, source="nope" if n in (3, 5) else "pixel") for n in range(1, 8)]
    result = ingest_file(con, write_events(tmp_path / f"events.{fmt}", records))
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (7, 5, 2)
    assert rows(con, "select _source_row from raw.events order by 1") == [(1,), (2,), (4,), (6,), (7,)]
    rejected = rows(con, "select row_number, payload from raw.rejected_rows order by 1")
    assert [(n, json.loads(p)["event_id"]) for n, p in rejected] == [(3, "e3"), (5, "e5")]


def test_a_bad_line_in_a_later_chunk_leaves_nothing_of_the_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "CHUNK_ROWS", 2)
    path = write_jsonl(tmp_path / "events.jsonl", [*(record("events", n) for n in range(6)), "{broken"])
    result = ingest_file(con, path)
    assert result.status == "failed"
    assert result.message.startswith("line 7 is not valid JSON")
    assert count(con, "raw.events") == 0


def test_text_is_cut_into_blocks_only_where_a_record_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Quoted CSV fields with line ends, commas and quotes; a record longer than a block; blank lines.
    logical = [
        record("events", n, city=f'Line one\nline, two "{n}"', client_user_agent="x" * (n * 40))
        for n in range(1, 12)
    ]
    write_csv(tmp_path / "csv" / "events.csv", logical)
    write_jsonl(tmp_path / "jsonl" / "events.jsonl", [*logical[:5], "", *logical[5:], "   "])
    stored = {}
    for block_bytes in (readers.CHUNK_BYTES, 64):
        monkeypatch.setattr(readers, "CHUNK_BYTES", block_bytes)
        monkeypatch.setattr(readers, "CHUNK_ROWS", 3 if block_bytes == 64 else readers.CHUNK_ROWS)
        for fmt in ("csv", "jsonl"):
            wh = tmp_path / f"{fmt}-{block_bytes}.duckdb"
            report = ingest_paths([tmp_path / fmt], warehouse=wh, progress=False, console=Console(quiet=True))
            assert [(f.status, f.rows_loaded) for f in report.files] == [("loaded", 11)]
            with duckdb.connect(str(wh), read_only=True) as c:
                stored[fmt, block_bytes] = c.execute(
                    "select _source_row, city, client_user_agent from raw.events order by _source_row"
                ).fetchall()
    assert stored["csv", 64] == stored["csv", readers.CHUNK_BYTES]
    assert stored["jsonl", 64] == stored["jsonl", readers.CHUNK_BYTES]
    assert [r[1:] for r in stored["csv", 64]] == [r[1:] for r in stored["jsonl", 64]]
    assert stored["csv", 64][2][:2] == (3, 'Line one\nline, two "3"')
    assert [r[0] for r in stored["jsonl", 64]] == [1, 2, 3, 4, 5, *range(7, 13)]


def test_csv_read_ahead_reports_a_later_blocks_error_and_stops_with_the_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CSV blocks are parsed by a thread ahead of the chunk being written.
    monkeypatch.setattr(readers, "CHUNK_BYTES", 64)
    monkeypatch.setattr(readers, "CHUNK_ROWS", 2)
    path = write_csv(tmp_path / "events.csv", [record("events", n) for n in range(1, 9)])
    path.write_text(path.read_text() + "e9,p1,x,2026-03-01T12:00:00Z,pixel,extra\n")
    result = ingest_file(con, path)
    assert (result.status, result.message) == (
        "failed",
        "data row 9 (line 10) has 6 fields: expected at most 5, as in the header",
    )
    assert count(con, "raw.events") == 0

    def disk_full(*args: object, **kwargs: object) -> int:
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(loading, "_insert_raw_rows", disk_full)
    assert (
        ingest_file(con, write_csv(tmp_path / "events-2.csv", [record("events", 1)] * 8)).status == "failed"
    )
    assert "ingest-read-ahead" not in [t.name for t in threading.enumerate()]


def test_invalid_utf8_in_a_later_block_names_byte_and_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "CHUNK_BYTES", 64)
    path = tmp_path / "events.jsonl"
    good = [json.dumps(record("events", n)).encode() + b"\n" for n in range(1, 6)]
    path.write_bytes(b"".join(good) + b'{"event_id": "caf\xe9"}\n')
    result = ingest_file(con, path)
    at = sum(map(len, good)) + len(b'{"event_id": "caf')
    assert (result.status, result.message) == (
        "failed",
        f"invalid UTF-8 at byte {at} (line 6): expected UTF-8 text",
    )


def test_a_nul_byte_in_jsonl_fails_the_file_naming_the_line(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", [record("events", 1), record("events", 2), '{"a": "\x00"}'])
    result = ingest_file(con, path)
    assert (result.status, result.message) == ("failed", "line 3 contains a NUL byte: not valid JSON text")


def test_blank_lines_are_not_rows_but_count_for_line_numbers(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", ["", record("events", 1), "   ", record("events", 2)])
    result = ingest_file(con, path)
    assert (result.rows_read, result.rows_loaded) == (2, 2)
    assert rows(con, "select _source_row from raw.events order by 1") == [(2,), (4,)]


# ---------------------------------------------------------------------------------------------
# Broken files: reported with where and what was expected, recorded as failed, others still load
# ---------------------------------------------------------------------------------------------


def test_broken_files_fail_clearly_while_the_other_files_load(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_jsonl(landing / "events-1-good.jsonl", [record("events")])
    parquet = landing / "conversions-truncated.parquet"
    pl.DataFrame([record("conversions")]).write_parquet(parquet)
    parquet.write_bytes(parquet.read_bytes()[:-40])
    (landing / "events-2-utf8.jsonl").write_bytes(b'{"event_id": "e1"}\n{"event_id": "caf\xe9"}\n')
    write_jsonl(
        landing / "events-3-notjson.jsonl", [record("events"), record("events", 2), '{"event_id": nope}']
    )
    write_jsonl(landing / "events-4-array.jsonl", [record("events"), "[1, 2]"])
    conversions = record("conversions")
    del conversions["conversion_time"]
    write_csv(landing / "conversions-missing.csv", [conversions])

    console = Console(record=True, width=200)
    report = ingest_paths([landing], warehouse=tmp_path / "wh.duckdb", progress=False, console=console)

    status = {Path(f.file_name).name: (f.status, f.message) for f in report.files}
    assert status["events-1-good.jsonl"] == ("loaded", "")
    assert status["conversions-truncated.parquet"][0] == "failed"
    assert "not a readable Parquet file" in status["conversions-truncated.parquet"][1]
    assert status["events-2-utf8.jsonl"] == (
        "failed",
        "invalid UTF-8 at byte 36 (line 2): expected UTF-8 text",
    )
    assert status["events-3-notjson.jsonl"][0] == "failed"
    assert status["events-3-notjson.jsonl"][1].startswith(
        "line 3 is not valid JSON (expected one JSON object per line)"
    )
    assert status["events-4-array.jsonl"] == (
        "failed",
        "line 2 is a JSON array, not an object (expected one JSON object per line)",
    )
    assert status["conversions-missing.csv"][0] == "failed"
    assert "missing required column(s) conversion_time" in status["conversions-missing.csv"][1]
    assert not report.ok

    con = duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    assert count(con, "raw.events") == 1
    assert count(con, "raw.conversions") == 0
    failed = rows(con, "select file_name, error from raw.load_log where status = 'failed' order by file_name")
    assert len(failed) == 5
    assert all(error for _, error in failed)
    con.close()
    output = console.export_text()
    assert "failed: " + str(landing / "events-2-utf8.jsonl") + ": invalid UTF-8 at byte 36" in output


def test_running_out_of_memory_mid_file_fails_it_whole_and_names_the_variable(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", [record("events", 1), record("events", 2, source="nope")])

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 4.0 MiB")

    monkeypatch.setattr(loading, "_insert_rejected_rows", out_of_memory)
    result = ingest_file(con, path)
    assert result.status == "failed"
    assert result.message.startswith("warehouse error: Out of Memory Error: failed to allocate")
    assert "raise CONVOPT_DUCKDB_MEMORY_LIMIT" in result.message
    assert [count(con, f"raw.{t}") for t in ("events", "rejected_rows")] == [0, 0]
    assert rows(con, "select status from raw.load_log") == [("failed",)]


def test_invalid_utf8_in_csv_names_byte_and_line(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"event_id,person_id,event_name,event_time\ne1,p1,x,2026-03-01T12:00:00Z\ne2,p\xff,x,y\n"
    )
    result = ingest_file(con, path)
    assert (result.status, result.message) == (
        "failed",
        "invalid UTF-8 at byte 74 (line 3): expected UTF-8 text",
    )


def test_failed_file_is_retried_on_rerun(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", ["not json"])
    assert ingest_file(con, path).status == "failed"
    assert ingest_file(con, path).status == "failed"
    assert rows(con, "select status from raw.load_log") == [("failed",), ("failed",)]


def test_unknown_prefix_fails_the_file(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "clicks.jsonl", [record("events")])
    result = ingest_file(con, path)
    assert result.status == "failed"
    assert "cannot tell the stream from the file name 'clicks.jsonl'" in result.message
    assert rows(con, "select status, stream from raw.load_log") == [("failed", None)]


def test_unknown_extension_fails_the_file(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps(record("events")))
    result = ingest_file(con, path)
    assert result.status == "failed"
    assert "unknown file type '.json'" in result.message


def test_parquet_timestamp_without_time_zone_fails_the_file(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = tmp_path / "events.parquet"
    pl.DataFrame([record("events")]).with_columns(
        event_time=pl.lit(dt.datetime(2026, 3, 1, 12))
    ).write_parquet(path)
    result = ingest_file(con, path)
    assert result.status == "failed"
    assert "event_time is a timestamp without time zone" in result.message


# ---------------------------------------------------------------------------------------------
# Formats, streams and files
# ---------------------------------------------------------------------------------------------


def test_jsonl_csv_and_parquet_store_the_same_values(tmp_path: Path) -> None:
    logical = [
        record("conversions", 1, value_cents=1999, currency="EUR", properties={"plan": "pro"}),
        record("conversions", 2, value_cents=0, currency=MISSING, conversion_type="signup", utm_source="fb"),
    ]
    write_jsonl(tmp_path / "jsonl" / "conversions.jsonl", logical)
    as_text = [{k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in r.items()} for r in logical]
    write_csv(tmp_path / "csv" / "conversions.csv", as_text)
    (tmp_path / "parquet").mkdir()
    pl.DataFrame(
        {
            "event_id": ["c1", "c2"],
            "person_id": ["p1", "p1"],
            "conversion_type": ["purchase", "signup"],
            "conversion_source": ["capi", "capi"],
            "value_cents": [1999, 0],
            "currency": ["EUR", None],
            "conversion_time": [NOON, NOON],
            "utm_source": [None, "fb"],
            "properties": [{"plan": "pro"}, None],
        }
    ).write_parquet(tmp_path / "parquet" / "conversions.parquet")

    stored = {}
    for fmt in ("jsonl", "csv", "parquet"):
        wh = tmp_path / f"{fmt}.duckdb"
        report = ingest_paths([tmp_path / fmt], warehouse=wh, progress=False, console=Console(quiet=True))
        assert [(f.status, f.rows_loaded) for f in report.files] == [("loaded", 2)]
        with duckdb.connect(str(wh), read_only=True) as c:
            stored[fmt] = c.execute(
                "select * exclude (_load_id, _source_file, _loaded_at) from raw.conversions order by event_id"
            ).fetchall()
    assert stored["jsonl"] == stored["csv"] == stored["parquet"]
    assert stored["jsonl"][0][4:7] == (1999, "EUR", NOON)


def test_epoch_ms_and_offsets_give_the_same_instant(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    times = [
        "2026-03-01T12:00:00Z",
        "2026-03-01T12:00:00.000z",
        "2026-03-01T14:00:00+02:00",
        "2026-03-01 07:00:00-0500",
        NOON_MS,
        str(NOON_MS),
    ]
    path = write_jsonl(
        tmp_path / "events.jsonl", [record("events", n, event_time=t) for n, t in enumerate(times)]
    )
    assert ingest_file(con, path).rows_loaded == len(times)
    assert rows(con, "select distinct event_time from raw.events") == [(NOON,)]


def test_parquet_typed_columns_are_accepted(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = tmp_path / "ad_spend.parquet"
    pl.DataFrame(
        {
            "date": [dt.date(2026, 3, 1)],
            "campaign_id": [42],
            "spend_cents": [1000.0],
            "currency": ["USD"],
            "impressions": pl.Series([100], dtype=pl.UInt32),
            "clicks": [10],
        }
    ).write_parquet(path)
    assert ingest_file(con, path).rows_loaded == 1
    assert rows(con, "select date, campaign_id, spend_cents, impressions from raw.ad_spend") == [
        (dt.date(2026, 3, 1), "42", 1000, 100)
    ]


def test_stream_comes_from_the_file_name_prefix(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "events-0001.jsonl", [record("events")])
    write_csv(tmp_path / "in" / "conversions_2026-01-01.csv", [record("conversions")])
    pl.DataFrame([record("ad_spend")]).write_parquet(tmp_path / "in" / "ad_spend.parquet")
    report = ingest_paths(
        [tmp_path / "in"], warehouse=tmp_path / "wh.duckdb", progress=False, console=Console(quiet=True)
    )
    assert [(Path(f.file_name).name, f.stream, f.status) for f in report.files] == [
        ("ad_spend.parquet", "ad_spend", "loaded"),
        ("conversions_2026-01-01.csv", "conversions", "loaded"),
        ("events-0001.jsonl", "events", "loaded"),
    ]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_file_names_with_glob_characters_are_read_as_names(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, fmt: str
) -> None:
    path = write_events(tmp_path / f"events[1].{fmt}", [record("events")])
    assert ingest_file(con, path).rows_loaded == 1


def test_forced_stream_overrides_the_file_name(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "export.jsonl", [record("conversions")])
    report = ingest_paths(
        [path],
        warehouse=tmp_path / "wh.duckdb",
        stream="conversions",
        progress=False,
        console=Console(quiet=True),
    )
    assert [(f.stream, f.status, f.rows_loaded) for f in report.files] == [("conversions", "loaded", 1)]


def test_folders_are_expanded_recursively_sorted_and_hidden_files_ignored(tmp_path: Path) -> None:
    for name in [
        "b/events-2.jsonl",
        "a/events-1.csv",
        "events-0.parquet",
        ".hidden/events.jsonl",
        ".generated",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "notes.txt").write_text("")
    found = [p.relative_to(tmp_path).as_posix() for p in discover_files([tmp_path])]
    assert found == ["a/events-1.csv", "b/events-2.jsonl", "events-0.parquet"]


def test_usage_errors_are_raised_before_touching_the_warehouse(tmp_path: Path) -> None:
    with pytest.raises(IngestUsageError, match="does not exist"):
        ingest_paths([tmp_path / "nope"], warehouse=tmp_path / "wh.duckdb", progress=False)
    with pytest.raises(IngestUsageError, match="unknown stream 'clicks'"):
        ingest_paths([tmp_path], warehouse=tmp_path / "wh.duckdb", stream="clicks", progress=False)
    assert not (tmp_path / "wh.duckdb").exists()


def test_summary_reports_rejected_rows_with_a_query_hint(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", [record("events", 1), record("events", 2, source="nope")])
    console = Console(record=True, width=200)
    report = ingest_paths([path], warehouse=tmp_path / "wh.duckdb", progress=False, console=console)
    output = console.export_text()
    for header in ("file", "stream", "status", "read", "loaded", "rejected", "seconds", "rows/s"):
        assert header in output
    assert "1 row(s) rejected" in output
    assert f"select * from raw.rejected_rows where load_id = '{report.files[0].load_id}'" in output


# ---------------------------------------------------------------------------------------------
# Memory: DuckDB works within CONVOPT_DUCKDB_MEMORY_LIMIT, spilling to CONVOPT_DUCKDB_TEMP_DIRECTORY
# ---------------------------------------------------------------------------------------------


def test_a_file_larger_than_duckdbs_memory_limit_loads_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 100,000 rows of about 550 bytes (55 MB, mostly random text) against a 32 MB limit, in many
    # chunks of one transaction.
    monkeypatch.setenv("CONVOPT_DUCKDB_MEMORY_LIMIT", "32MB")
    monkeypatch.setattr(readers, "CHUNK_ROWS", 20_000)
    monkeypatch.setattr(readers, "CHUNK_BYTES", 4 << 20)
    rng = random.Random(7)
    path = write_jsonl(
        tmp_path / "in" / "events.jsonl",
        [record("events", n, client_user_agent=rng.randbytes(200).hex()) for n in range(100_000)],
    )
    assert path.stat().st_size > 50_000_000
    limits = []
    ingest = loading.ingest_file

    def ingest_noting_the_limit(con: duckdb.DuckDBPyConnection, *args: object, **kwargs: object):
        limits.append(con.execute("select current_setting('memory_limit')").fetchall()[0][0])
        return ingest(con, *args, **kwargs)

    monkeypatch.setattr(loading, "ingest_file", ingest_noting_the_limit)
    wh = tmp_path / "wh.duckdb"
    report = ingest_paths([path], warehouse=wh, progress=False, console=Console(quiet=True))
    assert [(f.status, f.rows_read, f.rows_loaded) for f in report.files] == [("loaded", 100_000, 100_000)]
    assert limits == ["30.5 MiB"]  # 32 MB as DuckDB shows it
    with duckdb.connect(str(wh), read_only=True) as c:
        assert count(c, "raw.events") == 100_000
        assert rows(c, "select count(distinct client_user_agent), max(_source_row) from raw.events") == [
            (100_000, 100_000)
        ]
        assert rows(c, "select status, rows_loaded from raw.load_log") == [("loaded", 100_000)]


def test_memory_settings_reach_the_ingest_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spill = tmp_path / "spill"
    monkeypatch.setenv("CONVOPT_DUCKDB_MEMORY_LIMIT", "2GiB")
    monkeypatch.setenv("CONVOPT_DUCKDB_TEMP_DIRECTORY", str(spill))
    seen = []
    ingest = loading.ingest_file

    def ingest_noting_settings(con: duckdb.DuckDBPyConnection, *args: object, **kwargs: object):
        query = "select current_setting('memory_limit'), current_setting('temp_directory')"
        seen.append(con.execute(query).fetchall()[0])
        return ingest(con, *args, **kwargs)

    monkeypatch.setattr(loading, "ingest_file", ingest_noting_settings)
    path = write_jsonl(tmp_path / "events.jsonl", [record("events")])
    ingest_paths([path], warehouse=tmp_path / "wh.duckdb", progress=False, console=Console(quiet=True))
    assert seen == [("2.0 GiB", str(spill))]


def test_a_bad_memory_limit_is_a_usage_error_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVOPT_DUCKDB_MEMORY_LIMIT", "lots")
    path = write_jsonl(tmp_path / "in" / "events.jsonl", [record("events")])
    with pytest.raises(
        WarehouseSettingError,
        match=r"^CONVOPT_DUCKDB_MEMORY_LIMIT='lots' is not a DuckDB memory_limit: expected a size such as 4GB",
    ):
        ingest_paths([path], warehouse=tmp_path / "wh.duckdb", progress=False)
    assert not (tmp_path / "wh.duckdb").exists()
    result = invoke(str(path), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert result.exit_code == 2
    assert "CONVOPT_DUCKDB_MEMORY_LIMIT='lots' is not a DuckDB memory_limit" in result.output


def test_a_memory_limit_too_small_for_duckdb_stops_the_ingest_with_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVOPT_DUCKDB_MEMORY_LIMIT", "1MB")
    path = write_jsonl(tmp_path / "in" / "events.jsonl", [record("events")])
    result = invoke(str(path), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert result.exit_code == 2
    assert (
        "CONVOPT_DUCKDB_MEMORY_LIMIT='1MB' is too small for DuckDB to work in: Out of Memory" in result.output
    )
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as c:
        tables = [t for (t,) in rows(c, "select table_name from duckdb_tables() where schema_name = 'raw'")]
        assert all(count(c, f"raw.{t}") == 0 for t in tables)


# ---------------------------------------------------------------------------------------------
# CLI exit codes
# ---------------------------------------------------------------------------------------------

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["ingest", *args, "--no-progress"])


def test_cli_exits_0_when_files_load_even_with_rejected_rows(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "events.jsonl", [record("events", 1), record("events", 2, source="nope")])
    result = invoke(str(tmp_path / "in"), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert result.exit_code == 0, result.output
    assert "1 row(s) rejected" in result.output
    rerun = invoke(str(tmp_path / "in"), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert rerun.exit_code == 0
    assert "skipped" in rerun.output


def test_cli_exits_1_when_a_file_cannot_be_read(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "events.jsonl", [record("events")])
    write_jsonl(tmp_path / "in" / "events-bad.jsonl", ["{not json"])
    result = invoke(str(tmp_path / "in"), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert result.exit_code == 1
    assert "line 1 is not valid JSON" in result.output


def test_cli_exits_2_on_usage_errors(tmp_path: Path) -> None:
    missing = invoke(str(tmp_path / "nope"), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert missing.exit_code == 2
    assert "does not exist" in missing.output
    bad_stream = invoke(str(tmp_path), "--warehouse", str(tmp_path / "wh.duckdb"), "--stream", "clicks")
    assert bad_stream.exit_code == 2
    assert "unknown stream 'clicks'" in bad_stream.output


def test_cli_exits_2_when_the_warehouse_is_locked(tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    write_jsonl(tmp_path / "in" / "events.jsonl", [record("events")])
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "sys.stdin.read()",
            str(warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        result = invoke(str(tmp_path / "in"), "--warehouse", str(warehouse))
    finally:
        holder.communicate(input="", timeout=30)  # closing stdin lets the holder exit
    assert result.exit_code == 2
    assert "is locked by another process" in result.output
