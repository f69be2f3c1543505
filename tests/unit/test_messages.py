"""One clear line for each bad input: the file, the line and what was expected; outside text (file
names, Meta's error messages) is printed as written, never read as rich markup."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from fake_graph_api import FakeGraphAPI, error
from ingest_helpers import record
from meta_export_helpers import TOKEN, event_row, make_warehouse
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
GOOD = json.dumps(record("events", 1))


def _ingest_error(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    result = runner.invoke(
        app, ["ingest", str(path), "--warehouse", str(tmp_path / "wh.duckdb"), "--no-progress"]
    )
    assert result.exit_code == 1, result.output
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        (reason,) = con.execute("select error from raw.load_log where status = 'failed'").fetchone()
    assert "\n" not in reason and "Traceback" not in result.output
    assert f"{name}: {reason}" in " ".join(result.output.split())
    return reason


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "events_nul.jsonl",
            b'{"event_id": "e\x00"}\n' + GOOD.encode(),
            "line 1 contains a NUL byte: expected JSON text",
        ),
        (
            "events_cr.jsonl",
            (GOOD + "\r" + GOOD + "\r").encode(),
            "line 1 ends with a carriage return (CR) alone",
        ),
        (
            "events_surrogate.jsonl",
            (GOOD + "\n" + GOOD.replace('"e1"', '"\\ud800"') + "\n").encode(),
            "line 2 holds the escape \\ud800, half of a UTF-16 surrogate pair",
        ),
        ("events_comma.jsonl", (GOOD + "\n" + GOOD[:-1] + ",}\n").encode(), "line 2 has a trailing comma"),
        (
            "events_dup.jsonl",
            (GOOD + "\n" + '{"event_id": "a", ' + GOOD[1:] + "\n").encode(),
            "line 2 has the key 'event_id' twice",
        ),
        (
            "events_quote.csv",
            b"event_id,person_id,event_name,event_time\n"
            b"e1,p,ad_click,2026-03-01T12:00:00Z\ne2,p,ad_click,2026-03-01T12:00:00Z\n"
            b'e3,"p,ad_click,2026-03-01T12:00:00Z\ne4,p,ad_click,2026-03-01T12:00:00Z\n',
            "data row 3 (line 4) cannot be parsed",
        ),
    ],
)
def test_bad_text_files_get_one_line_naming_the_line_and_what_was_expected(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    assert expected in _ingest_error(tmp_path, name, content)


def test_a_parquet_file_named_jsonl_is_named_as_parquet(tmp_path: Path) -> None:
    pl.DataFrame({"event_id": ["e1"]}).write_parquet(tmp_path / "x.parquet")
    reason = _ingest_error(tmp_path, "events.jsonl", (tmp_path / "x.parquet").read_bytes())
    assert reason.startswith("a Parquet file, not JSONL")


def test_a_leap_second_is_rejected_not_moved_to_the_next_minute(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(record("events", 1, event_time="2026-06-30T23:59:60Z")) + "\n" + GOOD + "\n")
    result = runner.invoke(
        app, ["ingest", str(path), "--warehouse", str(tmp_path / "wh.duckdb"), "--no-progress"]
    )
    assert result.exit_code == 0
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        rejected = con.execute("select row_number, failing_fields from raw.rejected_rows").fetchall()
    assert rejected == [(1, "event_time")]


@pytest.mark.parametrize("command", ["ingest", "sql", "report", "run", "export-meta"])
@pytest.mark.parametrize("kind", ["folder", "random bytes"])
def test_a_warehouse_that_is_not_a_duckdb_file_is_one_line_and_exit_2(
    tmp_path: Path, command: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    warehouse = tmp_path / "wh"
    if kind == "folder":
        warehouse.mkdir()
    else:
        warehouse.write_bytes(bytes(range(256)) * 64)
    (tmp_path / "landing").mkdir()
    args = {
        "ingest": ["ingest", str(tmp_path / "landing"), "--no-progress"],
        "sql": ["sql", "select 1"],
        "report": ["report", "--out", str(tmp_path / "reports")],
        "run": ["run", "--landing", str(tmp_path / "landing"), "--out", str(tmp_path / "reports")],
        "export-meta": ["export-meta", "--no-progress", "--graph-base-url", "http://127.0.0.1:9"],
    }[command]
    (tmp_path / "landing" / "events.jsonl").write_text(GOOD + "\n")
    result = runner.invoke(app, [*args, "--warehouse", str(warehouse)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: warehouse"), result.output
    assert ("is a folder" if kind == "folder" else "is not a DuckDB database file") in lines[0]


def test_meta_error_text_is_printed_as_written_not_as_markup(
    tmp_path: Path, fake: FakeGraphAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("META_GRAPH_BASE_URL", fake.base_url)
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(0)])
    message = "Invalid parameter user_data[em] [/em] is [redacted] [bold]"
    fake.script(error(400, 100, subcode=2804016, message=message))
    result = runner.invoke(app, ["export-meta", "--warehouse", str(warehouse), "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "MarkupError" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert message in " ".join(result.output.split())
