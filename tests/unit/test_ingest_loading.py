"""`convopt ingest` load guarantees (all of a file or nothing, exactly once, lineage) and broken files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from ingest_helpers import count, record, rows, write_csv, write_events, write_jsonl
from rich.console import Console

from pipelines.ingest import file_sha256, ingest_file, ingest_paths, loading, readers

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
