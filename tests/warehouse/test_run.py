"""`convopt run`: stage order, timed summary, one exit code, the lock, and what runs after a failed stage."""

from __future__ import annotations

import io
import os
from pathlib import Path

import duckdb
import pytest
from rich.console import Console
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.contract import STREAMS
from pipelines.cli_output import print_run_summary
from pipelines.run import (
    STAGES,
    RunLockedError,
    RunOptions,
    lock_path,
    run_lock,
    run_pipeline,
)

runner = CliRunner()


@pytest.mark.dbt
def test_a_run_does_every_stage_in_order_and_says_how_long_each_took(demo_run: dict) -> None:
    result = demo_run["run"]
    assert [s.name for s in result.stages] == list(STAGES)
    assert [s.status for s in result.stages] == ["ok"] * 4
    assert all(s.seconds > 0 for s in result.stages)
    assert result.seconds >= sum(s.seconds for s in result.stages)
    ingest, build, export, report = result.stages
    assert ingest.detail.startswith(f"{len(STREAMS)} file(s) loaded, 0 skipped")
    assert "0 failed" in build.detail and "invocation" in build.detail
    # No token in the environment: a dry run, its request bodies (client IPs, user agents) in a folder of
    # their own beside the warehouse, never in the shareable reports.
    assert export.detail.startswith("dry run (META_ACCESS_TOKEN not set)")
    assert (demo_run["warehouse"].parent / "meta_dry_run" / "requests.jsonl").exists()
    assert not list(demo_run["out"].rglob("requests.jsonl")) and not list(demo_run["out"].rglob("events.parquet"))
    assert str(result.report.folder) in report.detail
    buffer = io.StringIO()
    print_run_summary(result, Console(file=buffer, width=200))
    table = buffer.getvalue()
    for name in STAGES:
        assert name in table
    assert "exit 0" in table
    # The lock was released and its file kept (never deleted: deleting would race with a waiting run).
    assert lock_path(demo_run["warehouse"]).exists()
    with run_lock(demo_run["warehouse"]):
        pass


def test_a_second_run_exits_at_once_naming_the_lock_holder(tmp_path: Path, run_lock_held) -> None:
    warehouse = tmp_path / "wh.duckdb"
    with run_lock_held(warehouse) as holder:
        result = runner.invoke(
            app,
            ["run", "--warehouse", str(warehouse), "--landing", str(tmp_path), "--out", str(tmp_path / "r")],
        )
        assert result.exit_code == 2
        assert f"another `convopt run` is running on {warehouse} (pid {holder.pid}, started " in result.output
        assert not warehouse.exists() and not (tmp_path / "r").exists()  # nothing was done
        with pytest.raises(RunLockedError), run_lock(warehouse):
            pass
    # The kernel releases the lock of a dead holder: the next run is not blocked by a stale file.
    with run_lock(warehouse):
        assert lock_path(warehouse).read_text().startswith(f"pid {os.getpid()}, started ")


def test_a_symlink_or_a_relative_spelling_meets_the_same_lock(
    tmp_path: Path, run_lock_held, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "real").mkdir()
    warehouse = tmp_path / "real" / "wh.duckdb"
    link = tmp_path / "link.duckdb"
    link.symlink_to(warehouse)
    monkeypatch.chdir(tmp_path)
    assert lock_path(link) == lock_path(warehouse) == lock_path(Path("real/../real/wh.duckdb"))
    with run_lock_held(warehouse):
        for spelling in (str(link), "real/../real/wh.duckdb"):
            result = runner.invoke(
                app, ["run", "--warehouse", spelling, "--landing", str(tmp_path), "--out", str(tmp_path / "r")]
            )
            assert result.exit_code == 2, result.output
            assert "another `convopt run` is running" in result.output


def _stub_stages(monkeypatch: pytest.MonkeyPatch, calls: list[str], build=None) -> None:
    """Replace the build, export and report stages by stubs that record that they ran."""
    import pipelines.run as run_module

    def stub(name: str):
        def stage(options, result, console) -> str:
            calls.append(name)
            return f"{name} stub"

        return stage

    monkeypatch.setattr(run_module, "_dbt_build", build or stub("dbt build"))
    monkeypatch.setattr(run_module, "_export_meta", stub("export-meta"))
    monkeypatch.setattr(run_module, "_report", stub("report"))


def test_a_failed_landing_file_fails_the_run_but_not_the_stages_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, warehouse, out = tmp_path / "landing", tmp_path / "wh.duckdb", tmp_path / "reports"
    landing.mkdir()
    (landing / "events.parquet").write_bytes(b"PAR1 this is not parquet")
    calls: list[str] = []
    _stub_stages(monkeypatch, calls)
    result = run_pipeline(
        RunOptions(warehouse=warehouse, landing=[landing], out=out), console=Console(file=io.StringIO(), width=200)
    )
    assert result.exit_code == 1
    assert [(s.name, s.status) for s in result.stages] == [
        ("ingest", "failed"),
        ("dbt build", "ok"),
        ("export-meta", "ok"),
        ("report", "ok"),
    ]
    assert result.stages[0].detail.startswith("1 file(s) could not be read")
    assert calls == ["dbt build", "export-meta", "report"]


def test_a_failed_mart_stops_only_the_stages_that_read_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.run import StageFailed

    def failing_build(options, result, console) -> str:
        result.failed_models = {"conversion_rollup_daily", "conversion_rollup_weekly"}
        raise StageFailed("dbt build exited with 1; failed or skipped: conversion_rollup_daily", carry_on=True)

    calls: list[str] = []
    _stub_stages(monkeypatch, calls, build=failing_build)
    log = io.StringIO()
    result = run_pipeline(
        RunOptions(warehouse=tmp_path / "wh.duckdb", landing=[tmp_path], out=tmp_path / "r", skip_ingest=True),
        console=Console(file=log, width=200),
    )
    assert result.exit_code == 1
    assert [(s.name, s.status) for s in result.stages] == [
        ("ingest", "skipped"),
        ("dbt build", "failed"),
        ("export-meta", "ok"),
        ("report", "not run"),
    ]
    assert calls == ["export-meta"]
    assert result.stages[3].detail == (
        "not run: the dbt build failed conversion_rollup_daily, conversion_rollup_weekly, which it reads"
    )
    assert "report: not run: the dbt build failed conversion_rollup_daily" in log.getvalue()


def test_build_failures_name_errored_skipped_and_tested_models(tmp_path: Path) -> None:
    import datetime as dt
    import json

    from pipelines.run import build_failures

    manifest = {
        "nodes": {
            "model.p.a": {"resource_type": "model", "name": "a"},
            "model.p.b": {"resource_type": "model", "name": "b"},
            "model.p.c": {"resource_type": "model", "name": "c"},
            "model.p.ok": {"resource_type": "model", "name": "ok"},
            "test.p.t1": {"resource_type": "test", "name": "t1", "attached_node": "model.p.c"},
            "test.p.w": {"resource_type": "test", "name": "w", "attached_node": "model.p.ok"},
        }
    }
    results = {
        "metadata": {"generated_at": "2026-12-05T10:00:00.000000Z"},
        "results": [
            {"unique_id": "model.p.a", "status": "error"},
            {"unique_id": "model.p.b", "status": "skipped"},
            {"unique_id": "test.p.t1", "status": "fail"},
            {"unique_id": "test.p.w", "status": "warn"},
            {"unique_id": "model.p.ok", "status": "success"},
        ],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "run_results.json").write_text(json.dumps(results))
    since = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)
    assert build_failures(tmp_path, since) == {"a", "b", "c"}
    # Results older than the build just run say nothing about it.
    assert build_failures(tmp_path, since + dt.timedelta(hours=2)) is None
    assert build_failures(tmp_path / "none", since) is None


def test_a_failed_dbt_build_stops_export_and_report(tmp_path: Path, monkeypatch) -> None:
    warehouse, out = tmp_path / "wh.duckdb", tmp_path / "reports"
    monkeypatch.setenv("CONVOPT_TARGET", "no_such_target")  # dbt fails fast: the profile has no such target
    result = runner.invoke(
        app, ["run", "--skip-ingest", "--warehouse", str(warehouse), "--out", str(out), "--no-charts"]
    )
    assert result.exit_code == 1, result.output
    assert "dbt build exited with 2" in result.output
    assert "an earlier stage failed" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--since", "2026-03-10", "--until", "2026-03-01"],
            "--since 2026-03-10 is after --until 2026-03-01",
        ),
        (["--period", "yearly"], "--period must be one of daily, weekly, monthly, not 'yearly'"),
        (["--format", "json"], "--format must be one of csv, parquet, both, not 'json'"),
        (["--until", "2026-3-1x"], "--until must be a date as YYYY-MM-DD"),
    ],
)
def test_bad_arguments_fail_before_anything_runs(tmp_path: Path, args: list[str], message: str) -> None:
    warehouse = tmp_path / "wh.duckdb"
    result = runner.invoke(app, ["run", *args, "--warehouse", str(warehouse), "--landing", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output
    assert not warehouse.exists() and not lock_path(warehouse).exists()


def test_a_dry_run_folder_inside_the_reports_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    result = runner.invoke(
        app,
        [
            "run",
            *("--warehouse", str(tmp_path / "wh.duckdb"), "--landing", str(tmp_path), "--out", str(out)),
            *("--dry-run-out", str(out / "meta")),
        ],
    )
    assert result.exit_code == 2
    assert "is inside the reports folder" in " ".join(result.output.split())
    assert not out.exists() and not (tmp_path / "wh.duckdb").exists()
