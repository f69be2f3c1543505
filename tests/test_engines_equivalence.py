"""The same dbt project on DuckDB and on PostgreSQL gives the same rows in every model.

One small generated data set (two files per stream) is landed in two batches. After each batch it
is ingested into DuckDB, copied to PostgreSQL (`convopt load-target`, i.e. `load_postgres`), and
the project is built on both engines: a full `dbt build` (tests included) after the first batch, an
incremental `dbt run` after the second. Then every relation the project builds (staging views,
intermediate and mart tables, seeds) is compared: the same columns, compatible types (a DuckDB
HUGEINT against a PostgreSQL numeric means a `sum(bigint)` without its cast), and the same rows,
checked with EXCEPT ALL both ways after normalizing types (both sides are read into DuckDB;
floating-point values rounded to 6 decimals).

Needs a PostgreSQL server: see tests/pg_fixture.py (CI starts one; locally the Debian binaries are
enough).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pg_fixture import postgres_env  # noqa: F401 - the session fixture

from pipelines.dbt_runner import run_dbt
from pipelines.generate import GeneratorConfig, generate_dataset
from pipelines.ingest import ingest_paths
from pipelines.load_target import load_postgres
from pipelines.pg_server import conninfo_from_env

pytestmark = [pytest.mark.dbt, pytest.mark.postgres]

SCHEMAS = ("reference", "staging", "intermediate", "marts")
# A fixed reference time for meta_capi_events' 7-day window, so both builds agree.
DBT_VARS = json.dumps({"meta_export_as_of": "2026-03-13 00:00:00+00"})

# Type families: the engines spell types differently, but a column must land in the same family.
_DUCK_FAMILIES = {
    "VARCHAR": "text",
    "BIGINT": "integer",
    "INTEGER": "integer",
    "SMALLINT": "integer",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIMESTAMP": "timestamp",
    "DOUBLE": "float",
    "FLOAT": "float",
}
_PG_FAMILIES = {
    "text": "text",
    "character varying": "text",
    "bigint": "integer",
    "integer": "integer",
    "smallint": "integer",
    "boolean": "boolean",
    "date": "date",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "double precision": "float",
    "real": "float",
    "numeric": "decimal",
}


def _duck_family(duck_type: str) -> str:
    return "decimal" if duck_type.startswith("DECIMAL") else _DUCK_FAMILIES.get(duck_type, duck_type)


def _normalized(alias: str, duck_columns: list[tuple[str, str]]) -> str:
    """Select list reading `alias` with DuckDB's column types; floating values rounded to 6 decimals."""
    parts = []
    for column, duck_type in duck_columns:
        value = f'cast({alias}."{column}" as {duck_type})'
        if _duck_family(duck_type) in ("float", "decimal"):
            value = f'round(cast({alias}."{column}" as double), 6)'
        parts.append(f'{value} as "{column}"')
    return ", ".join(parts)


def _build_both(root: Path, warehouse: Path, pg_env: dict[str, str], command: list[str]) -> None:
    duck = run_dbt(
        [*command, "--vars", DBT_VARS], warehouse=warehouse, target_path=root / "target-duckdb", capture=True
    )
    assert duck.returncode == 0, duck.stdout[-4000:] + duck.stderr[-2000:]
    load_postgres(warehouse, conninfo_from_env(pg_env))
    pg = run_dbt(
        [*command, "--target", "postgres", "--vars", DBT_VARS],
        warehouse=warehouse,
        target_path=root / "target-postgres",
        extra_env=pg_env,
        capture=True,
    )
    assert pg.returncode == 0, pg.stdout[-6000:] + pg.stderr[-2000:]


def _differences(warehouse: Path, pg_env: dict[str, str]) -> list[str]:
    """One line per relation whose columns, types or rows differ between the engines."""
    import psycopg

    problems: list[str] = []
    with (
        duckdb.connect(str(warehouse), read_only=True) as duck,
        psycopg.connect(conninfo_from_env(pg_env)) as pg,
    ):
        duck.execute("set TimeZone = 'UTC'")
        pg.execute("set time zone 'UTC'")
        relations = duck.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in {SCHEMAS} order by 1, 2"
        ).fetchall()
        assert len(relations) > 20, relations
        scratch = duckdb.connect(":memory:")
        scratch.execute("set TimeZone = 'UTC'")
        for schema, table in relations:
            name = f"{schema}.{table}"
            duck_columns = duck.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            pg_columns = dict(
                pg.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = %s and table_name = %s",
                    [schema, table],
                ).fetchall()
            )
            if not pg_columns:
                problems.append(f"{name}: missing on PostgreSQL")
                continue
            if {c for c, _ in duck_columns} != set(pg_columns):
                problems.append(
                    f"{name}: columns differ: duckdb {[c for c, _ in duck_columns]} vs {list(pg_columns)}"
                )
                continue
            mismatched = [
                f"{column} ({duck_type} vs {pg_columns[column]})"
                for column, duck_type in duck_columns
                if _duck_family(duck_type) != _PG_FAMILIES.get(pg_columns[column], pg_columns[column])
            ]
            if mismatched:
                problems.append(f"{name}: types differ: {', '.join(mismatched)}")

            names = [c for c, _ in duck_columns]
            quoted = ", ".join(f'"{c}"' for c in names)
            scratch.register("duck_rows", duck.sql(f"select {quoted} from {name}").to_arrow_table())
            cursor = pg.execute(f"select {quoted} from {name}")
            pg_rows = cursor.fetchall()
            scratch.register(
                "pg_rows",
                pa.table({c: pa.array([row[i] for row in pg_rows]) for i, c in enumerate(names)})
                if pg_rows
                else pa.table({c: pa.array([], type=pa.string()) for c in names}),
            )

            left = f"select {_normalized('d', duck_columns)} from duck_rows as d"
            right = f"select {_normalized('p', duck_columns)} from pg_rows as p"
            only_duck = scratch.execute(f"{left} except all {right}").fetchall()
            only_pg = scratch.execute(f"{right} except all {left}").fetchall()
            if only_duck or only_pg:
                problems.append(
                    f"{name}: {len(only_duck)} row(s) only on DuckDB, {len(only_pg)} only on PostgreSQL; "
                    f"first DuckDB-only {only_duck[:2]}; first PostgreSQL-only {only_pg[:2]}"
                )
            scratch.unregister("duck_rows")
            scratch.unregister("pg_rows")
    return problems


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, postgres_env: dict[str, str]) -> dict:  # noqa: F811
    root = tmp_path_factory.mktemp("engines")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    config = GeneratorConfig(
        persons=60, seed=11, start=dt.date(2026, 3, 1), days=14, bad_rows_ratio=0.01, files_per_stream=2
    )
    generate_dataset(landing, config)
    first = sorted(landing.glob("*-0001.*"))
    second = sorted(set(landing.glob("*.*")) - set(first))
    assert first and second

    ingest_paths(first, warehouse=warehouse, progress=False)
    _build_both(root, warehouse, postgres_env, ["build"])
    after_full_build = _differences(warehouse, postgres_env)

    ingest_paths(second, warehouse=warehouse, progress=False)
    _build_both(root, warehouse, postgres_env, ["run"])
    after_incremental_run = _differences(warehouse, postgres_env)
    return {
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

    report = load_postgres(engines["warehouse"], conninfo_from_env(engines["pg_env"]))
    assert [c.loads for c in report.copies if c.loads is not None] == [0, 0, 0, 0]
    with (
        duckdb.connect(str(engines["warehouse"]), read_only=True) as duck,
        psycopg.connect(conninfo_from_env(engines["pg_env"])) as pg,
    ):
        for table in ("events", "conversions", "ad_spend", "load_log", "rejected_rows", "meta_delivery_log"):
            (expected,) = duck.execute(f"select count(*) from raw.{table}").fetchone()
            (copied,) = pg.execute(f"select count(*) from raw.{table}").fetchone()
            assert copied == expected, table
        (loads,) = duck.execute("select count(*) from raw.load_log").fetchone()
        assert loads == 6
