"""Which rows a data test checks (macros/test_scope.sql, docs/warehouse.md).

One small generated data set lands in two batches and goes through `convopt run` several times:

1. the first batch, first build: every row is checked (no build has passed yet), and the build log
   records that every row loaded before it started has been tested;
2. a bad raw event (a `source` outside the accepted values) is slipped in with a load time from before
   that build, as if it had been loaded long ago; the second batch, incremental run: its tests check
   only the rows loaded since, so they pass;
3. `convopt run --full-tests` and `convopt run --full-refresh` check every row: both fail on that event;
4. the old row removed, a bad event loaded now: the incremental run fails on it, and so does the next
   one, because a failed build does not move the start of the scope.

Between them a `dbt test` (which checks every row, so it fails on the old row) and a build of part of
the project (which passes) do not move the start of the scope either.

The marts (a second data set, below) are scoped by the keys their incremental runs rewrote: a spoiled row
of a rewritten key fails a build of their tests, a spoiled row of an old key fails only with var
`full_tests`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import duckdb
import pytest
from rich.console import Console
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.dbt_runner import run_dbt
from pipelines.generate import GeneratorConfig, generate_dataset
from pipelines.ingest import ingest_paths
from pipelines.run import RunOptions, run_pipeline

pytestmark = pytest.mark.dbt

CONFIG = GeneratorConfig(persons=60, seed=23, start=dt.date(2026, 3, 1), days=10, files_per_stream=2)
SOURCE_TEST = "test.convopt.row_checks_stg_events"


def _insert_bad_event(warehouse: Path, event_id: str, loaded_at: dt.datetime) -> None:
    """A raw event whose `source` is not one of the accepted values, written behind the loader's back."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            """
            insert into raw.events (event_id, person_id, event_name, event_time, source, _load_id, _source_file,
                _source_row, _loaded_at)
            values (?, 'person-bad', 'page_view', timestamptz '2026-03-01 10:00:00+00', 'fax', 'by-hand',
                'by-hand', 1, ?)
            """,
            [event_id, loaded_at],
        )


def _build_log(warehouse: Path) -> list[dict]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute("select * from audit.dbt_build_log order by run_started_at")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _failed_tests(target: Path) -> list[str]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return sorted(r["unique_id"].rsplit(".", 1)[0] for r in results if r["status"] in ("fail", "error"))


def _compiled_scope(target: Path) -> str:
    """The compiled SQL of the staging events' accepted-values test in the latest invocation."""
    (path,) = (target / "run" / "convopt" / "models" / "staging").glob(
        "stg_events.yml/row_checks_stg_events.sql"
    )
    return " ".join(path.read_text().split())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("test_scope")
    landing, warehouse, target = root / "landing", root / "warehouse.duckdb", root / "target"
    generate_dataset(landing, CONFIG)
    first = sorted(landing.glob("*-0001.*"))
    second = sorted(set(landing.glob("*.*")) - set(first))
    seen: dict = {"warehouse": warehouse}

    def run(name: str, **options) -> None:
        log = io.StringIO()
        result = run_pipeline(
            RunOptions(
                warehouse=warehouse,
                landing=options.pop("landing", []),
                out=root / "reports",
                skip_export=True,
                skip_report=True,
                target_path=target,
                **options,
            ),
            console=Console(file=log, width=200),
        )
        seen[name] = {
            "exit_code": result.exit_code,
            "failed_tests": _failed_tests(target),
            "scope": _compiled_scope(target),
            "log": log.getvalue()[-3000:],
        }

    run("first build", landing=first)
    first_build = _build_log(warehouse)[-1]
    seen["first build"]["log row"] = first_build
    long_ago = first_build["run_started_at"].replace(tzinfo=dt.UTC) - dt.timedelta(hours=1)
    _insert_bad_event(warehouse, "bad-old", long_ago)
    run("incremental run", landing=second)

    # A `dbt test` and a build of part of the project record no tested start.
    run_dbt(["test", "--select", "stg_events"], warehouse=warehouse, target_path=root / "target-other")
    run_dbt(["build", "--select", "stg_ad_spend"], warehouse=warehouse, target_path=root / "target-other")

    # `convopt run --full-tests`, through the command line as cron calls it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(target))
        cli = CliRunner().invoke(
            app,
            [
                "run",
                "--full-tests",
                "--skip-ingest",
                "--skip-export",
                "--skip-report",
                "--warehouse",
                str(warehouse),
            ],
        )
    seen["full tests"] = {
        "exit_code": cli.exit_code,
        "failed_tests": _failed_tests(target),
        "scope": _compiled_scope(target),
        "log": cli.output[-3000:],
    }
    run("full refresh", full_refresh=True, skip_ingest=True)

    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from raw.events where event_id = 'bad-old'")
    _insert_bad_event(warehouse, "bad-new", dt.datetime.now(dt.UTC))
    run("new bad row", skip_ingest=True)
    run("next run", skip_ingest=True)
    seen["build log"] = _build_log(warehouse)
    return seen


def test_the_first_build_checks_every_row_and_records_its_start(runs: dict) -> None:
    build = runs["first build"]
    assert build["exit_code"] == 0, build["log"]
    row = build["log row"]
    assert row["command"] == "build" and row["failed_nodes"] == 0
    assert row["tested_loads_before"] == row["run_started_at"]
    # No earlier tested build: no filter at all (not a comparison with 1970 that keeps every row).
    assert "where 1 = 1" in build["scope"] and "1970" not in build["scope"]


def test_an_incremental_run_does_not_check_an_old_bad_row(runs: dict) -> None:
    run = runs["incremental run"]
    assert run["exit_code"] == 0, run["log"]
    # The test read only the rows loaded since the start of the last build that tested every row (the
    # first build), written as a literal instant so that DuckDB can skip older row groups.
    start = runs["build log"][0]["tested_loads_before"]
    assert f"_loaded_at >= (cast('{start:%Y-%m-%d %H:%M:%S.%f}' as timestamp) at time zone 'UTC')" in run["scope"]


def test_full_tests_and_full_refresh_catch_the_old_bad_row(runs: dict) -> None:
    for name in ("full tests", "full refresh"):
        run = runs[name]
        assert run["exit_code"] == 1, (name, run["log"])
        assert run["failed_tests"] == [SOURCE_TEST], name
        assert "where 1 = 1" in run["scope"], name


def test_an_incremental_run_fails_on_a_bad_row_in_the_new_data(runs: dict) -> None:
    for name in ("new bad row", "next run"):
        run = runs[name]
        assert run["exit_code"] == 1, (name, run["log"])
        assert run["failed_tests"] == [SOURCE_TEST], name


def test_only_a_passing_build_of_every_model_and_test_moves_the_start(runs: dict) -> None:
    log = [
        (row["command"], row["failed_nodes"] > 0, row["tested_loads_before"] is not None)
        for row in runs["build log"]
    ]
    assert log == [
        ("build", False, True),  # first build
        ("build", False, True),  # incremental run
        ("test", True, False),  # dbt test checks every row: it finds the old bad row
        ("build", False, False),  # a build of part of the project
        ("build", True, False),  # --full-tests, failed
        ("build", True, False),  # --full-refresh, failed
        ("build", True, False),  # the new bad row
        ("build", True, False),  # still in scope: the failed builds did not move the start
    ]


# The marts. Their rows hold no load watermark of their own (but for conversion_metrics.updated_at): each
# is scoped through the keys its incremental run rewrites. The second batch is built by a build of part of the
# project, which leaves the start of the scope at the first build, so the marts hold rows rewritten since it (in
# scope) and rows of keys the second batch did not touch (out of scope). One row of each kind is then spoiled by hand, and
# the mart tests alone are built: scoped, each test finds only the spoiled row in scope; with var
# full_tests, both.
MART_TESTS = {
    # test: (table, column spoiled), scoped by ...
    "row_checks_conversion_rollup_daily": (
        "conversion_rollup_daily",
        "channel",
    ),  # periods of conversions
    "row_checks_conversion_attribution": ("conversion_attribution", "channel"),  # upstream keys, OR-ed
    "row_checks_conversion_metrics": (
        "conversion_metrics",
        "campaign_id",
    ),  # own updated_at and periods
    "row_checks_conversion_funnel": ("conversion_funnel", "last_step_name"),  # upstream persons
}
# Per mart: a row in scope ({start}: the start of the last tested build), and how a copy of one of its rows
# is made old (a key no input rewrote since: a period before the data, a conversion or person unknown upstream).
MART_ROWS = {
    "conversion_rollup_daily": (
        "period_date in (select cast(conversion_time as date) from marts.conversion_event"
        " where last_loaded_at >= {start})",
        "date '2000-01-03' as period_date",
    ),
    "conversion_attribution": (
        "conversion_id in (select id from intermediate.int_conversions_valued where last_loaded_at >= {start})",
        "'old-conversion' as conversion_id",
    ),
    "conversion_metrics": (
        "updated_at >= {start}",
        "date '2000-01-03' as period_date, timestamptz '2000-01-03 00:00:00+00' as updated_at",
    ),
    "conversion_funnel": (
        "is_converted and person_id in (select person_id from intermediate.int_funnel_steps_matched"
        " where person_loaded_at >= {start})",
        "'old-person' as person_id",
    ),
}


def _failures(target: Path) -> dict[str, int]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        r["unique_id"].split(".")[2]: r["failures"] or 0
        for r in results
        if r["unique_id"].startswith("test.")
    }


@pytest.fixture(scope="module")
def mart_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("test_scope_marts")
    landing, warehouse, target = root / "landing", root / "warehouse.duckdb", root / "target"
    generate_dataset(landing, CONFIG)
    first = sorted(landing.glob("*-0001.*"))
    second = sorted(set(landing.glob("*.*")) - set(first))
    options = {"warehouse": warehouse, "out": root / "reports", "skip_export": True, "skip_report": True}
    log = io.StringIO()
    first_run = run_pipeline(
        RunOptions(landing=first, target_path=target, **options), console=Console(file=log, width=200)
    )
    assert first_run.exit_code == 0, log.getvalue()[-3000:]
    start = _build_log(warehouse)[-1]["tested_loads_before"]
    # The second batch, built by a build of part of the project: the start of the scope stays at the first build.
    ingest_paths(second, warehouse=warehouse, progress=False, console=Console(file=log, width=200))
    second_build = run_dbt(
        ["build", "--exclude", "rpt_meta_delivery_status", "--exclude-resource-type", "unit_test"],
        warehouse=warehouse,
        target_path=target,
    )
    assert second_build.returncode == 0
    assert _build_log(warehouse)[-1]["tested_loads_before"] is None
    seen: dict = {"spoiled": {}, "warehouse": warehouse, "target": target}
    literal = f"timestamptz '{start.isoformat()}+00'"
    with duckdb.connect(str(warehouse)) as con:
        for table, column in MART_TESTS.values():
            in_scope, made_old = MART_ROWS[table]
            (row_id,) = con.execute(
                f"select min(id) from marts.{table} where {in_scope.format(start=literal)}"
            ).fetchone()
            assert row_id is not None, table
            con.execute(
                f"insert into marts.{table} select * replace ('old-row' as id, null as {column}, {made_old})"
                f" from marts.{table} where id = ?",
                [row_id],
            )
            con.execute(f"update marts.{table} set {column} = null where id = ?", [row_id])
            seen["spoiled"][table] = row_id
    # dbt build skips the tests of a model downstream of a failed test: conversion_metrics reads
    # conversion_attribution, so its tests are built apart.
    tables = [table for table, _ in MART_TESTS.values()]
    groups = [[table for table in tables if table != "conversion_metrics"], ["conversion_metrics"]]
    for name, extra in (
        ("scoped", []),
        ("full tests", ["--vars", "{full_tests: true}"]),
        ("scoped again", []),
    ):
        seen[name] = {"ok": True, "failures": {}}
        for group in groups:
            result = run_dbt(
                ["build", "--select", *group, "--resource-type", "test", *extra],
                warehouse=warehouse,
                target_path=target,
            )
            seen[name]["ok"] = seen[name]["ok"] and result.returncode == 0
            seen[name]["failures"].update(_failures(target))
    return seen


def test_a_mart_test_checks_the_rows_rewritten_since_the_last_tested_build(mart_runs: dict) -> None:
    for name in ("scoped", "scoped again"):
        failures = mart_runs[name]["failures"]
        assert not mart_runs[name]["ok"]
        for test in MART_TESTS:
            assert failures[test] == 1, (name, test, failures)


def test_full_tests_check_every_row_of_a_mart(mart_runs: dict) -> None:
    failures = mart_runs["full tests"]["failures"]
    for test in MART_TESTS:
        assert failures[test] == 2, (test, failures)


def test_the_attribution_report_tests_check_the_periods_rewritten_since(mart_runs: dict) -> None:
    # rpt_attribution_by_campaign is a view summing every conversion_attribution row by period: scoped, its
    # tests read the periods of the conversions rewritten since the last tested build. An attribution row of
    # January 2000 without a channel (no input rewrote it) spoils three report rows (its day, week and
    # month), which only the full tests see.
    warehouse, target = mart_runs["warehouse"], mart_runs["target"]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "insert into marts.conversion_attribution select * replace ('old-report-row' as id,"
            " 'old-report-conversion' as conversion_id, null as channel,"
            " timestamptz '2000-01-03 12:00:00+00' as conversion_time)"
            " from marts.conversion_attribution limit 1"
        )
    failures = {}
    for name, extra in (("scoped", []), ("full tests", ["--vars", "{full_tests: true}"])):
        run_dbt(
            ["build", "--select", "rpt_attribution_by_campaign", "--resource-type", "test", *extra],
            warehouse=warehouse,
            target_path=target,
        )
        found = _failures(target)
        failures[name] = found["row_checks_rpt_attribution_by_campaign"]
        # The spoiled row adds a group of its own: no duplicate key.
        assert all(
            count == 0 for test, count in found.items() if test != "row_checks_rpt_attribution_by_campaign"
        )
    assert failures["full tests"] - failures["scoped"] == 3, failures


def test_data_tests_compile_before_the_first_build(tmp_path: Path) -> None:
    """`dbt compile` of the data tests on a warehouse no build has touched: no build log to read yet.

    A test that computes its scope in its own SQL (assert_funnel_stats_counts_never_increase) read the build
    log while compiling, even where it checks every row, and stopped with "schema audit does not exist".
    """
    target = tmp_path / "target"
    result = run_dbt(
        ["compile", "--select", "assert_funnel_stats_counts_never_increase", "row_checks_stg_events"],
        warehouse=tmp_path / "empty.duckdb",
        target_path=target,
        capture=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (compiled,) = target.glob("compiled/convopt/data-tests/assert_funnel_stats_counts_never_increase.sql")
    # Unscoped: every row of funnel_stats.
    assert "1 = 1" in compiled.read_text()
