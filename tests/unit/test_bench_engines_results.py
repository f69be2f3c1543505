"""benchmarks/engines.py keeps every measured step in a JSON-lines file (benchmarks/engines_results.py),
so engines measured in separate runs end up in one table, and a stopped run keeps what it finished."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def engines():
    return load_benchmark("engines_results")


COUNTS = {"first": 990, "last": 10}


def _run(engines, path: Path, minute: int, names: list[str], steps: list[tuple[str, str, float]]):
    results = engines.Results(path)
    results.run(dt.datetime(2026, 11, 25, 4, minute, tzinfo=dt.UTC), 0.5, names, COUNTS)
    for engine, step, seconds in steps:
        results.step(engines.Step(engine, step, seconds, 100.0))
    return results


def test_separate_runs_merge_and_each_engine_totals_its_own_runs_ingest(engines, tmp_path):
    path = tmp_path / "engines-1000.jsonl"
    first = _run(
        engines,
        path,
        0,
        ["duckdb", "postgres"],
        [
            ("duckdb", "ingest (full)", 10.0),
            ("duckdb", "dbt build (full)", 20.0),
            ("postgres", "load (full)", 2.0),
            ("postgres", "dbt build (full)", 30.0),
        ],
    )
    first.floor((0.5, 12, 0, 0))
    # an earlier Spark attempt that stopped in its load: superseded, not shown
    _run(engines, path, 10, ["spark"], [("duckdb", "ingest (full)", 99.0), ("spark", "load (full)", 9.0)])
    _run(
        engines,
        path,
        30,
        ["spark"],
        [
            ("duckdb", "ingest (full)", 12.0),
            ("spark", "load (full)", 3.0),
            ("spark", "dbt build (full)", 85.0),
        ],
    )

    runs, counts, steps, floor = engines.Results(path).latest()

    assert [run["engines"] for run in runs] == [["duckdb", "postgres"], ["spark"]]
    assert counts == COUNTS
    assert floor == (0.5, 12, 0, 0)
    assert [(s.engine, s.step, s.seconds) for s in steps] == [
        ("duckdb", "ingest (full)", 10.0),
        ("duckdb", "ingest (full)", 12.0),
        ("duckdb", "dbt build (full)", 20.0),
        ("postgres", "load (full)", 2.0),
        ("postgres", "dbt build (full)", 30.0),
        ("spark", "load (full)", 3.0),
        ("spark", "dbt build (full)", 85.0),
    ]
    table = engines.render(1000, counts, steps, floor)
    # the Spark run's slower ingest does not change DuckDB's or PostgreSQL's totals
    assert "| duckdb | full: ingest + dbt build | 30.0 | 1.0 | 100 |" in table
    assert "| postgres | full: ingest + load-target + dbt build | 42.0 | 1.4 | 100 |" in table
    # Spark's build and DuckDB's come from different runs: its ratio says so, once, with a note
    assert "| spark | full: ingest + Parquet load + dbt build | 100.0 | 3.3 ¹ | 100 |" in table
    assert table.count("¹ against a DuckDB build from another run") == 1
    assert "| duckdb | ingest (full) for duckdb, postgres | 10.0 | 100 |" in table
    assert "| duckdb | ingest (full) for spark | 12.0 | 100 |" in table


def test_one_run_renders_its_single_ingest_without_a_note(engines, tmp_path):
    path = tmp_path / "engines-1000.jsonl"
    _run(
        engines,
        path,
        0,
        ["spark"],
        [
            ("duckdb", "ingest (full)", 12.0),
            ("spark", "load (full)", 3.0),
            ("spark", "dbt build (full)", 85.0),
        ],
    )

    _, counts, steps, floor = engines.Results(path).latest()
    table = engines.render(1000, counts, steps, floor)

    assert "| duckdb | ingest (full) | 12.0 | 100 |" in table
    assert "¹" not in table
    # no DuckDB build measured: Spark's total has no ratio
    assert "| spark | full: ingest + Parquet load + dbt build | 100.0 |  | 100 |" in table


def test_a_stopped_run_keeps_its_finished_steps(engines, tmp_path):
    path = tmp_path / "engines-1000.jsonl"
    _run(engines, path, 0, ["duckdb"], [("duckdb", "ingest (full)", 10.0)])

    _, _, steps, floor = engines.Results(path).latest()

    assert [(s.engine, s.step) for s in steps] == [("duckdb", "ingest (full)")]
    assert floor is None


def test_bad_results_files_are_rejected_with_the_line(engines, tmp_path):
    missing = tmp_path / "none.jsonl"
    with pytest.raises(SystemExit, match="no results yet"):
        engines.Results(missing).latest()

    broken = tmp_path / "broken.jsonl"
    _run(engines, broken, 0, ["duckdb"], [("duckdb", "ingest (full)", 10.0)])
    with broken.open("a") as out:
        out.write("{not json\n")
    with pytest.raises(SystemExit, match=r"broken.jsonl:3: not a results record"):
        engines.Results(broken).latest()

    mixed = tmp_path / "mixed.jsonl"
    _run(engines, mixed, 0, ["duckdb"], [("duckdb", "ingest (full)", 10.0)])
    with mixed.open("a") as out:
        out.write(
            json.dumps(
                {
                    "type": "run",
                    "run": "later",
                    "load_at_start": 0,
                    "engines": ["spark"],
                    "counts": {"first": 5, "last": 1},
                }
            )
            + "\n"
        )
        out.write(
            json.dumps(
                {
                    "type": "step",
                    "run": "later",
                    "engine": "spark",
                    "step": "load (full)",
                    "seconds": 1.0,
                    "peak_mib": 1.0,
                }
            )
            + "\n"
        )
    with pytest.raises(SystemExit, match="different generated data"):
        engines.Results(mixed).latest()


DUCKDB_RUN = [{"run": "2026-11-25T04:00:00+00:00", "engines": ["duckdb"], "load_at_start": 0.1}]


def _benchmarks_md(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(text)
    return path


def test_write_section_replaces_only_its_own_events_subsection(engines, tmp_path):
    benchmarks = _benchmarks_md(
        tmp_path,
        f"# Benchmarks\n\n{engines.ENGINES_HEADER}\n\n### 1,000,000 events\n\nold 1M table\n\n## Meta payloads\n\nuntouched\n",
    )
    runs = [{"run": "2026-11-25T04:00:00+00:00", "engines": ["duckdb", "spark"], "load_at_start": 0.4}]

    engines.write_section("new 10M table", runs, 10_000_000, benchmarks)
    engines.write_section("newer 1M table", runs, 1_000_000, benchmarks)

    text = benchmarks.read_text()
    assert "old 1M table" not in text
    assert (
        text.index("### 1,000,000 events")
        < text.index("newer 1M table")
        < text.index("### 10,000,000 events")
    )
    assert text.index("new 10M table") < text.index("## Meta payloads")
    assert text.endswith("## Meta payloads\n\nuntouched\n")
    assert "`--engines duckdb,spark` started 2026-11-25 04:00 UTC, 1-minute load average then 0.4" in text


def test_write_section_keeps_the_hand_written_reading_below_the_marker(engines, tmp_path):
    benchmarks = _benchmarks_md(tmp_path, f"# Benchmarks\n\n{engines.ENGINES_HEADER}\n\n## Meta\n\nx\n")

    engines.write_section("first 1M table", DUCKDB_RUN, 1_000_000, benchmarks)
    text = benchmarks.read_text()
    assert text.count(engines.KEPT_MARKER) == 1
    benchmarks.write_text(
        text.replace(engines.KEPT_MARKER + "\n", engines.KEPT_MARKER + "\n\nReading it: DuckDB wins.\n")
    )
    engines.write_section("second 1M table", DUCKDB_RUN, 1_000_000, benchmarks)
    engines.write_section("first 10M table", DUCKDB_RUN, 10_000_000, benchmarks)

    text = benchmarks.read_text()
    assert "first 1M table" not in text
    assert text.count("Reading it: DuckDB wins.") == 1
    assert (
        text.index("second 1M table")
        < text.index("Reading it: DuckDB wins.")
        < text.index("### 10,000,000 events")
        < text.index("first 10M table")
        < text.index("## Meta")
    )
    assert text.count(engines.KEPT_MARKER) == 2


def test_write_section_without_a_marker_replaces_the_whole_subsection(engines, tmp_path):
    benchmarks = _benchmarks_md(
        tmp_path, f"{engines.ENGINES_HEADER}\n\n### 1,000,000 events\n\nold table\n\nold reading\n"
    )

    engines.write_section("new table", DUCKDB_RUN, 1_000_000, benchmarks)

    text = benchmarks.read_text()
    assert "old reading" not in text and "old table" not in text
    assert text.endswith(f"new table\n\n{engines.KEPT_MARKER}\n")
