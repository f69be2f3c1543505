"""The same dbt project on DuckDB and on PostgreSQL gives the same rows in every model.

One small generated data set (four files per stream) is landed in two batches: three files per stream,
then the fourth, with identity rows that relink the anonymous ids of the first batch to other persons. Each file is a load of its own, so the incremental run reads the second batch (its
watermarks compare with `>`), not everything. After each batch it
is ingested into DuckDB, copied to PostgreSQL (`convopt load-target`, i.e. `postgres.load_raw`), and
the project is built on both engines: a full `dbt build` (tests included) after the first batch, an
incremental `dbt build` after the second (its data tests read only the rows loaded since the first build:
macros/test_scope.sql renders on both engines). Then every relation the project builds (staging views,
intermediate and mart tables, seeds) is compared (tests/support/engine_compare.py, shared with the Spark
test): the same columns, compatible types (a DuckDB HUGEINT against a PostgreSQL numeric means a
`sum(bigint)` without its cast), and the same rows, checked with EXCEPT ALL both ways after
normalizing types (both sides are read into DuckDB; floating-point values rounded to 6 decimals).

Needs a PostgreSQL server: see tests/support/pg_fixture.py (CI starts one; locally the Debian binaries are
enough).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
from engine_compare import Engine, differences, pg_family
from pg_fixture import postgres_env  # noqa: F401 - the session fixture

from pipelines.contract import STREAMS
from pipelines.dbt_runner import run_dbt
from pipelines.engines.load import contract_columns
from pipelines.engines.postgres import column_type as postgres_column_type
from pipelines.engines.postgres import conninfo_from_env, load_raw
from pipelines.generate import GeneratorConfig, generate_dataset
from pipelines.ingest import ingest_paths

pytestmark = [pytest.mark.dbt, pytest.mark.postgres]

PROJECT_DIR = Path(__file__).resolve().parents[2]

# A fixed reference time for meta_capi_events' 7-day window, so both builds agree.
DBT_VARS = json.dumps({"meta_export_as_of": "2026-03-13 00:00:00+00"})


def _build_both(root: Path, warehouse: Path, pg_env: dict[str, str], command: list[str]) -> None:
    duck = run_dbt(
        [*command, "--vars", DBT_VARS], warehouse=warehouse, target_path=root / "target-duckdb", capture=True
    )
    assert duck.returncode == 0, duck.stdout[-4000:] + duck.stderr[-2000:]
    load_raw(warehouse, conninfo_from_env(pg_env))
    pg = run_dbt(
        [*command, "--target", "postgres", "--vars", DBT_VARS],
        warehouse=warehouse,
        target_path=root / "target-postgres",
        extra_env=pg_env,
        capture=True,
    )
    assert pg.returncode == 0, pg.stdout[-6000:] + pg.stderr[-2000:]


def _relinks(first: list[Path], path: Path) -> Path:
    """Identity rows for the second batch that relink the anonymous ids linked in the first batch: each to
    the person of the next link, observed an hour before its own link (so it wins although it lands
    later). The persons they leave keep events and conversions of their own, which the incremental run
    recomputes (int_identity_previous_persons)."""
    links = [
        json.loads(line)
        for file in first
        if file.name.startswith("identities-")
        for line in file.read_text().splitlines()
        if line.strip()
    ]
    assert len(links) >= 2
    rows = []
    for link, other in zip(links, links[1:] + links[:1], strict=True):
        observed = dt.datetime.fromisoformat(link["observed_at"].replace("Z", "+00:00")) - dt.timedelta(
            hours=1
        )
        rows.append(
            {
                "anonymous_id": link["anonymous_id"],
                "person_id": other["person_id"],
                "observed_at": observed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "source": "login",
            }
        )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _differences(warehouse: Path, pg_env: dict[str, str]) -> list[str]:
    """One line per relation whose columns, types or rows differ between the engines."""
    import psycopg

    with psycopg.connect(conninfo_from_env(pg_env)) as pg:
        pg.execute("set time zone 'UTC'")

        def columns(schema: str, table: str) -> dict[str, str]:
            return dict(
                pg.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = %s and table_name = %s",
                    [schema, table],
                ).fetchall()
            )

        postgres = Engine("PostgreSQL", columns, lambda sql: pg.execute(sql).fetchall(), pg_family)
        return differences(warehouse, postgres)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, postgres_env: dict[str, str]) -> dict:  # noqa: F811
    root = tmp_path_factory.mktemp("engines")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    config = GeneratorConfig(
        persons=60, seed=11, start=dt.date(2026, 3, 1), days=14, bad_rows_ratio=0.01, files_per_stream=4
    )
    generate_dataset(landing, config)
    second = sorted(landing.glob("*-0004.*"))
    first = sorted(set(landing.glob("*.*")) - set(second))
    assert first and second
    second.append(_relinks(first, landing / "identities-0005.jsonl"))

    ingest_paths(first, warehouse=warehouse, progress=False)
    _build_both(root, warehouse, postgres_env, ["build"])
    after_full_build = _differences(warehouse, postgres_env)

    ingest_paths(second, warehouse=warehouse, progress=False)
    _build_both(root, warehouse, postgres_env, ["build"])
    after_incremental_run = _differences(warehouse, postgres_env)
    return {
        "root": root,
        "warehouse": warehouse,
        "pg_env": postgres_env,
        "after_full_build": after_full_build,
        "after_incremental_run": after_incremental_run,
    }


def test_every_relation_is_identical_after_a_full_build(engines: dict) -> None:
    assert engines["after_full_build"] == []


def test_every_relation_is_identical_after_an_incremental_run(engines: dict) -> None:
    assert engines["after_incremental_run"] == []


def test_raw_tables_are_copied_exactly_once(engines: dict) -> None:
    """A second load-target copies nothing (every load is already there), and the counts agree."""
    import psycopg

    report = load_raw(engines["warehouse"], conninfo_from_env(engines["pg_env"]))
    assert [c.loads for c in report.copies if c.loads is not None] == [0] * (len(STREAMS) + 1)
    with (
        duckdb.connect(str(engines["warehouse"]), read_only=True) as duck,
        psycopg.connect(conninfo_from_env(engines["pg_env"])) as pg,
    ):
        for table in (*STREAMS, "load_log", "rejected_rows", "meta_delivery_log"):
            (expected,) = duck.execute(f"select count(*) from raw.{table}").fetchone()
            (copied,) = pg.execute(f"select count(*) from raw.{table}").fetchone()
            assert copied == expected, table
        (loads,) = duck.execute("select count(*) from raw.load_log").fetchone()
        assert loads == 4 * len(STREAMS) + 1  # four files per stream, and the relinks


# Marts that keep their incremental state in schema audit (macros/incremental_state.sql), with their key.
STATEFUL_MARTS = {
    "conversion_attribution": "conversion_id, attribution_model",
    "attribution_paths": "conversion_id",
    "attribution_paths_non_converting": "person_id",
    "conversion_metrics": "period_type, period_date, attribution_model",
    "conversion_rollup_daily": "period_date",
    "conversion_rollup_weekly": "period_date",
    "conversion_rollup_monthly": "period_date",
}


def test_the_incremental_run_recomputed_the_same_keys_on_both_engines(engines: dict) -> None:
    """The second batch reaches the marts kept incremental by key: on both engines their incremental run
    wrote down the same keys to recompute (audit.<mart>_touched_keys; a full recompute writes none), so
    the comparison above covers their incremental path. The second batch changes the Markov removal
    effects: conversion_attribution kept its per-conversion-and-model path (with the markov rows whose
    credits the new effects changed), conversion_metrics its per-period-and-model path (the markov rows of
    every period, the other models' of the periods the batch touched), and the rollups, which do not depend
    on attribution, theirs."""
    import psycopg

    def keys(fetch, mart: str, key: str) -> list[tuple]:
        return sorted(fetch(f"select distinct {key} from audit.{mart}_touched_keys"))

    with (
        duckdb.connect(str(engines["warehouse"]), read_only=True) as duck,
        psycopg.connect(conninfo_from_env(engines["pg_env"])) as pg,
    ):
        on_duck = lambda sql: duck.execute(sql).fetchall()  # noqa: E731
        on_pg = lambda sql: pg.execute(sql).fetchall()  # noqa: E731
        for mart, key in STATEFUL_MARTS.items():
            on_duckdb = keys(on_duck, mart, key)
            assert on_duckdb, mart
            assert keys(on_pg, mart, key) == on_duckdb, mart
        metrics_keys = keys(on_duck, "conversion_metrics", "period_type, period_date, attribution_model")
        markov = [key for key in metrics_keys if key[2] == "markov"]
        linear = [key for key in metrics_keys if key[2] == "linear"]
        assert 0 < len(linear) < len(markov)


def test_the_incremental_run_relinked_persons_on_both_engines(engines: dict) -> None:
    """The second batch relinks anonymous ids (an observation landed later but observed earlier), so the
    comparison above covers the recomputation of the persons they moved away from."""
    with duckdb.connect(str(engines["warehouse"]), read_only=True) as duck:
        relinked = duck.execute(
            "select count(distinct previous_person_id) from intermediate.int_identity_previous_persons"
        ).fetchone()[0]
        stamped = duck.execute(
            "select count(*) from intermediate.int_events_deduplicated as events "
            "inner join intermediate.int_identity_previous_persons as relinks "
            "on events.person_id = relinks.previous_person_id "
            "where events.last_loaded_at = relinks.relinked_loaded_at and events.person_source = 'landed'"
        ).fetchone()[0]
    assert relinked >= 2
    assert stamped > 0


def test_postgres_models_run_with_statistics_and_their_own_settings(engines: dict) -> None:
    """macros/planner_settings.sql: every table the project builds on PostgreSQL was analyzed by its
    post-hook (`last_analyze` is set by ANALYZE, not by autovacuum), and `set local` ran only for the
    models whose config names `postgres_settings`: int_attribution_credits and int_funnel_attempt_matches (where
    the funnel matching runs), in the full build and in the incremental run."""
    import psycopg

    with psycopg.connect(conninfo_from_env(engines["pg_env"])) as pg:
        tables = pg.execute(
            "select c.relname, s.last_analyze is not null from pg_class as c "
            "join pg_namespace as n on n.oid = c.relnamespace "
            "left join pg_stat_user_tables as s on s.relid = c.oid "
            "where n.nspname in ('intermediate', 'marts') and c.relkind = 'r'"
        ).fetchall()
    assert len(tables) >= 15
    assert [name for name, analyzed in tables if not analyzed] == []

    # dbt rotates its log at 10 MB (dbt.log.1, …): read every part.
    logs = sorted((engines["root"] / "target-postgres" / "logs").glob("dbt.log*"), reverse=True)
    log = "".join(path.read_text() for path in logs)
    statements = [block for block in log.split("/* {") if "set local " in block.split("*/", 1)[-1][:200]]
    nodes = sorted(block.split('"node_id": "', 1)[1].split('"', 1)[0] for block in statements)
    assert nodes == [
        "model.convopt.int_attribution_credits",
        "model.convopt.int_attribution_credits",
        "model.convopt.int_funnel_attempt_matches",
        "model.convopt.int_funnel_attempt_matches",
    ]
    assert all("set local enable_nestloop = 'off'" in block for block in statements)


def test_the_funnel_matching_unit_tests_pass_on_postgres(engines: dict) -> None:
    """The funnel matching finds each step's next event one way on DuckDB (an ASOF join) and another on
    PostgreSQL (window functions; macros/funnel_matching.sql, funnel_step_lookup_ctes). The generated data
    compared above has no funnel whose steps share an event name, so the hand-written cases of the matching
    model (repeated event names, events at one instant, windows, strict and unordered funnels, filters,
    exclusions) run on PostgreSQL as well: both ways give the rows the cases expect."""
    import yaml

    model_yaml = yaml.safe_load(
        (PROJECT_DIR / "models/intermediate/int_funnel_attempt_matches.yml").read_text()
    )
    expected = {case["name"] for case in model_yaml["unit_tests"]}
    target = engines["root"] / "target-postgres-unit"
    result = run_dbt(
        ["test", "--select", "test_type:unit,int_funnel_attempt_matches", "--target", "postgres"],
        warehouse=engines["warehouse"],
        target_path=target,
        extra_env=engines["pg_env"],
        capture=True,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    passed = {r["unique_id"].rsplit(".", 1)[-1] for r in results if r["status"] == "pass"}
    assert len(expected) >= 15
    assert passed == expected


def test_a_postgres_build_creates_the_missing_delivery_log(
    tmp_path: Path,
    postgres_env: dict[str, str],  # noqa: F811
) -> None:
    """A database where the log was never loaded (no raw schema at all): the on-run-start hook creates the
    log with load-target's columns, and the delivery state (a view) shows rows appended after the build."""
    import uuid

    import psycopg

    dbname = f"convopt_nolog_{uuid.uuid4().hex[:8]}"
    admin = conninfo_from_env({**postgres_env, "CONVOPT_PG_DBNAME": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{dbname}"')
    env = {**postgres_env, "CONVOPT_PG_DBNAME": dbname}
    try:
        result = run_dbt(
            ["run", "--target", "postgres", "--select", "stg_meta_delivery_log", "int_meta_delivery_state"],
            warehouse=tmp_path / "unused.duckdb",
            target_path=tmp_path / "target",
            extra_env=env,
            capture=True,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        with psycopg.connect(conninfo_from_env(env), autocommit=True) as pg:
            created = pg.execute(
                "select column_name, data_type, is_nullable = 'NO' from information_schema.columns "
                "where table_schema = 'raw' and table_name = 'meta_delivery_log' order by ordinal_position"
            ).fetchall()
            pg.execute(
                "insert into raw.meta_delivery_log (conversion_id, event_id, batch_id, attempt, status, fbtrace_id, "
                "recorded_at) values ('c1', 'e1', 'b1', 1, 'sent', 'trace-1', '2026-03-01 10:00:00+00')"
            )
            state = pg.execute(
                "select conversion_id, latest_status, sent_fbtrace_id, is_sent from intermediate.int_meta_delivery_state"
            ).fetchall()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{dbname}" with (force)')
    loader_columns = [
        (column.name, postgres_column_type(column.duckdb_type), column.not_null)
        for column in contract_columns()["meta_delivery_log"]
    ]
    assert created == loader_columns
    assert state == [("c1", "sent", "trace-1", True)]
