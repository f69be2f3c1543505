"""`convopt ingest` formats, streams and files, the summary it prints, and the CLI's exit codes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from ingest_helpers import MISSING, NOON, NOON_MS, record, rows, write_csv, write_events, write_jsonl
from rich.console import Console
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ingest import IngestUsageError, discover_files, ingest_file, ingest_paths

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
    assert stored["jsonl"][0][5:8] == (
        1999,
        "EUR",
        NOON,
    )  # after event_id, person_id, anonymous_id, type, source


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


@pytest.mark.parametrize(
    "clock_step", [dt.timedelta(0), dt.timedelta(hours=-1)], ids=["same instant", "set back"]
)
def test_every_load_is_later_than_every_earlier_load(
    con: duckdb.DuckDBPyConnection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock_step: dt.timedelta
) -> None:
    # The incremental models read the loads after the newest one they reflect (`_loaded_at > watermark`):
    # a second load at the same instant as the first, or before it, would be skipped. Whatever the clock
    # says, each load is one microsecond after the latest logged one at least, and its rows carry that time.
    first_time = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    clock = iter([first_time, first_time, first_time + clock_step, first_time + clock_step])
    monkeypatch.setattr("pipelines.ingest.loading._now", lambda: next(clock))
    for name in ("events-1.jsonl", "events-2.jsonl"):
        path = write_jsonl(tmp_path / name, [record("events", 1, event_id=name)])
        assert ingest_file(con, path).status == "loaded"
    logged = rows(con, "select file_name, loaded_at from raw.load_log order by loaded_at")
    assert [(Path(name).name, time.astimezone(dt.UTC)) for name, time in logged] == [
        ("events-1.jsonl", first_time),
        ("events-2.jsonl", first_time + dt.timedelta(microseconds=1)),
    ]
    landed = rows(con, "select event_id, _loaded_at from raw.events order by _loaded_at")
    assert [(event_id, time.astimezone(dt.UTC)) for event_id, time in landed] == [
        ("events-1.jsonl", first_time),
        ("events-2.jsonl", first_time + dt.timedelta(microseconds=1)),
    ]


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


def test_folders_are_expanded_recursively_sorted_and_only_hidden_files_ignored(tmp_path: Path) -> None:
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
    # notes.txt is found, so that the loader reports it (failed: unknown file type), never skipped silently.
    assert found == ["a/events-1.csv", "b/events-2.jsonl", "events-0.parquet", "notes.txt"]


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
