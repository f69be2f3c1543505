"""The same dbt project on DuckDB and on Spark gives the same rows in every model.

The fixture and the comparison are those of tests/engines/test_engines_equivalence.py (DuckDB against
PostgreSQL): 60 generated persons landed in two batches; after each batch it is ingested into DuckDB,
the raw tables are copied to Spark (`convopt load-target --target spark`, i.e. `spark.load_raw`)
and the project is built on both engines; then every relation (staging views, intermediate and mart
tables, seeds) is compared with tests/support/engine_compare.py: same columns, compatible types, same rows
with EXCEPT ALL both ways after normalizing types.

After the first batch DuckDB runs a full `dbt build`; Spark runs `dbt seed` + `dbt run` from empty
databases: the data and unit tests run on Spark in the demo-data build (docs/engines.md),
and here they would add about ten minutes without comparing anything. After the second batch both
run an incremental `dbt run`.

Needs the `.[spark]` extra and Java (or CONVOPT_SPARK_HOST/PORT of a running cluster; its model
databases are dropped). Slow: about 10 minutes on the 2-core build machine. Deselect with -m "not spark".
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from engine_compare import SCHEMAS, Engine, differences, spark_family
from spark_fixture import skip_unless_spark_available

from pipelines.dbt_runner import run_dbt
from pipelines.generate import GeneratorConfig, generate_dataset
from pipelines.ingest import ingest_paths

pytestmark = [pytest.mark.dbt, pytest.mark.spark]

skip_unless_spark_available()

from pipelines.engines.spark import load_raw, thrift_executor  # noqa: E402

# The same reference time as the PostgreSQL test, for meta_capi_events' 7-day window.
DBT_VARS = json.dumps({"meta_export_as_of": "2026-03-13 00:00:00+00"})


def _spark_engine(host: str, port: int) -> Engine:
    execute = thrift_executor(host, port)
    tables: dict[str, set[str]] = {}

    def columns(schema: str, table: str) -> dict[str, str]:
        if schema not in tables:
            tables[schema] = {row[1] for row in execute(f"show tables in {schema}")}
        if table not in tables[schema]:
            return {}
        # This session may have listed the relation's files before dbt rewrote it.
        execute(f"refresh table {schema}.{table}")
        described: dict[str, str] = {}
        for name, data_type, *_ in execute(f"describe {schema}.{table}"):
            if not name or name.startswith("#"):  # "# Partition Information" and what follows
                break
            described[name] = data_type
        return described

    return Engine("Spark", columns, execute, spark_family)


def _build_both(
    root: Path, warehouse: Path, spark: dict, duck_command: str, spark_commands: list[str]
) -> None:
    duck = run_dbt(
        [duck_command, "--vars", DBT_VARS],
        warehouse=warehouse,
        target_path=root / "target-duckdb",
        capture=True,
    )
    assert duck.returncode == 0, duck.stdout[-4000:] + duck.stderr[-2000:]
    load_raw(warehouse, thrift_executor(spark["host"], spark["port"]), parquet_dir=root / "spark_raw")
    env = {"CONVOPT_SPARK_HOST": spark["host"], "CONVOPT_SPARK_PORT": str(spark["port"])}
    for command in spark_commands:
        result = run_dbt(
            [command, "--target", "spark", "--vars", DBT_VARS],
            warehouse=warehouse,
            target_path=root / "target-spark",
            extra_env=env,
            capture=True,
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, spark: dict) -> dict:
    root = tmp_path_factory.mktemp("engines_spark")
    landing, warehouse = root / "landing", root / "warehouse.duckdb"
    config = GeneratorConfig(
        persons=60, seed=11, start=dt.date(2026, 3, 1), days=14, bad_rows_ratio=0.01, files_per_stream=2
    )
    generate_dataset(landing, config)
    first = sorted(landing.glob("*-0001.*"))
    second = sorted(set(landing.glob("*.*")) - set(first))
    assert first and second

    # From empty model databases: a previous build on this cluster would make the first run incremental.
    execute = thrift_executor(spark["host"], spark["port"])
    for schema in SCHEMAS:
        execute(f"drop database if exists {schema} cascade")

    started = time.perf_counter()
    ingest_paths(first, warehouse=warehouse, progress=False)
    _build_both(root, warehouse, spark, "build", ["seed", "run"])
    print(f"\nDuckDB + Spark, full build: {time.perf_counter() - started:.0f} s")
    return {
        "root": root,
        "warehouse": warehouse,
        "second": second,
        "after_full_build": differences(warehouse, _spark_engine(spark["host"], spark["port"]), quote="`"),
    }


@pytest.fixture(scope="module")
def incremental(engines: dict, spark: dict) -> list:
    """The differences after the second batch's incremental run (a fixture of its own, so that a failing
    incremental run leaves the full build's comparison reported)."""
    started = time.perf_counter()
    ingest_paths(engines["second"], warehouse=engines["warehouse"], progress=False)
    _build_both(engines["root"], engines["warehouse"], spark, "run", ["run"])
    print(f"\nDuckDB + Spark, incremental run: {time.perf_counter() - started:.0f} s")
    return differences(engines["warehouse"], _spark_engine(spark["host"], spark["port"]), quote="`")


def test_every_relation_is_identical_after_a_full_build(engines: dict) -> None:
    assert engines["after_full_build"] == []


def test_every_relation_is_identical_after_an_incremental_run(incremental: list) -> None:
    assert incremental == []
