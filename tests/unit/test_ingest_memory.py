"""`convopt ingest` reads text a bounded block at a time and keeps within DuckDB's memory budget
(CONVOPT_DUCKDB_MEMORY_LIMIT): blocks end only where a record ends, read-ahead errors stop the file, and a
file larger than the budget loads whole or fails whole."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import duckdb
import pytest
from ingest_helpers import count, record, rows, write_csv, write_jsonl
from rich.console import Console
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ingest import ingest_file, ingest_paths, loading, readers
from pipelines.warehouse import WarehouseSettingError

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["ingest", *args, "--no-progress"])


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
    assert (result.status, result.message) == (
        "failed",
        "line 3 contains a NUL byte: expected JSON text, one object per line (a binary file?)",
    )


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
