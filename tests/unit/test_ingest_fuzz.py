"""The fuzz suite: each bad landing file of tests/support/fuzz_cases.py (over a hundred, across JSONL, CSV
and Parquet) costs only itself. Per case: the exit code, the message, read = loaded + rejected, the good
rows kept, and nothing loaded twice by a second ingest. That a dbt build passes after all of them is
checked once, on one warehouse holding every case (tests/warehouse/test_bad_input_build.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from fuzz_cases import Case, all_cases
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()
CASES = all_cases()
STREAM_TABLES = ("events", "conversions", "ad_spend")


def test_the_suite_has_over_a_hundred_cases_across_formats() -> None:
    assert len(CASES) >= 100
    suffixes = {Path(c.file_name).suffix for c in CASES}
    assert {".jsonl", ".csv", ".parquet"} <= suffixes
    assert len({c.id for c in CASES}) == len(CASES)


def _state(warehouse: Path) -> tuple[list[tuple], dict[str, int], list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        log = con.execute(
            "select status, rows_read, rows_loaded, rows_rejected, error from raw.load_log order by started_at"
        ).fetchall()
        counts = {t: con.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in STREAM_TABLES}
        rejected = con.execute("select failing_fields, reason from raw.rejected_rows").fetchall()
    return log, counts, rejected


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_costs_only_itself(case: Case, tmp_path: Path) -> None:
    path = tmp_path / "landing" / case.file_name
    path.parent.mkdir()
    case.write(path)
    warehouse = tmp_path / "wh.duckdb"
    args = ["ingest", str(path), "--warehouse", str(warehouse), "--no-progress"]

    first = runner.invoke(app, args)

    assert first.exit_code == (1 if case.outcome == "failed" else 0), first.output
    assert first.exception is None or isinstance(first.exception, SystemExit), first.exception
    log, counts, rejected = _state(warehouse)
    assert len(log) == 1
    status, read, loaded, rejected_count, error = log[0]
    if case.outcome == "failed":
        assert status == "failed" and loaded == 0
        assert case.message in error and "\n" not in error
        assert f"failed: {path}: {error}" in " ".join(first.output.split())
        assert counts == dict.fromkeys(STREAM_TABLES, 0) and rejected == []
    else:
        assert status == "loaded" and error is None
        assert read == loaded + rejected_count
        assert (loaded, rejected_count) == (case.loaded, case.rejected)
        assert sum(counts.values()) == case.loaded  # the good rows are kept
        assert len(rejected) == case.rejected
        for fields, reason in rejected:
            assert case.message in reason and "\n" not in reason
            if case.fields:
                assert fields.split(",") == case.fields

    second = runner.invoke(app, args)  # a rerun: a loaded file is skipped, a failed one retried

    assert second.exit_code == first.exit_code
    log_again, counts_again, rejected_again = _state(warehouse)
    assert counts_again == counts and len(rejected_again) == len(rejected)  # nothing loaded twice
    assert [row[0] for row in log_again] == [status] * (2 if case.outcome == "failed" else 1)
