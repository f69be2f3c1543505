"""Bad input to `convopt load-target` and to the server helpers: one clear line, exit 2, no server needed.

Covers what a user gets wrong before any row moves: an unknown target, a missing warehouse, a
PostgreSQL or Spark target nobody is listening for (or without its extra installed), and the
`python -m pipelines.engines.servers` command line. Also how each target is reached from the dbt
profile, and that every raw column has a type on every engine.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.engines import postgres, spark
from pipelines.engines.load import TARGETS, LoadTargetError, contract_columns, map_types, profile_target
from pipelines.engines.servers.postgres import free_port
from pipelines.warehouse import ensure_raw_schema

ROOT = Path(__file__).resolve().parents[2]


def _warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        ensure_raw_schema(con)
    return path


def _convopt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        env={**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("command", [["load-target"], ["ingest", "--no-progress"]])
def test_unknown_target_names_the_accepted_ones(tmp_path: Path, command: list[str]) -> None:
    line = _one_error_line(
        _convopt(*command, "--target", "oracle", env={"CONVOPT_WAREHOUSE": str(_warehouse(tmp_path))})
    )
    assert "--target must be" in line and "one of postgres, spark, spark_session, not 'oracle'" in line


@pytest.mark.parametrize("target", TARGETS)
def test_missing_warehouse_is_reported_before_connecting(tmp_path: Path, target: str) -> None:
    line = _one_error_line(
        _convopt("load-target", "--target", target, env={"CONVOPT_WAREHOUSE": str(tmp_path / "none.duckdb")})
    )
    assert "none.duckdb does not exist: run `convopt ingest` first" in line


def test_unreachable_postgres_is_one_line_with_how_to_start_one(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path)
    with pytest.raises(LoadTargetError, match=r"cannot connect to PostgreSQL .*servers postgres start"):
        postgres.load_raw(warehouse, f"host=127.0.0.1 port={free_port()} user=postgres connect_timeout=3")

    env = {
        "CONVOPT_WAREHOUSE": str(warehouse),
        "CONVOPT_PG_HOST": "127.0.0.1",
        "CONVOPT_PG_PORT": str(free_port()),
    }
    line = _one_error_line(_convopt("load-target", "--target", "postgres", env=env))
    assert "cannot connect to PostgreSQL (host=127.0.0.1 port=" in line
    assert "python -m pipelines.engines.servers postgres start" in line


def test_unreachable_spark_is_one_line(tmp_path: Path) -> None:
    env = {
        "CONVOPT_WAREHOUSE": str(_warehouse(tmp_path)),
        "CONVOPT_SPARK_HOST": "127.0.0.1",
        "CONVOPT_SPARK_PORT": str(free_port()),
        "CONVOPT_SPARK_PARQUET_DIR": str(tmp_path / "parquet"),
    }
    line = _one_error_line(_convopt("load-target", "--target", "spark", env=env))
    if importlib.util.find_spec("pyhive") is None:
        assert "the Spark targets need the `.[spark]` extra" in line
    else:
        assert f"cannot connect to the Spark Thrift server at 127.0.0.1:{env['CONVOPT_SPARK_PORT']}" in line
        assert "python -m pipelines.engines.servers spark start" in line
    assert not (tmp_path / "parquet").exists()


@pytest.mark.skipif(importlib.util.find_spec("pyspark") is not None, reason="pyspark is installed")
def test_spark_session_without_pyspark_names_the_extra(tmp_path: Path) -> None:
    line = _one_error_line(
        _convopt(
            "load-target", "--target", "spark_session", env={"CONVOPT_WAREHOUSE": str(_warehouse(tmp_path))}
        )
    )
    assert "the Spark targets need the `.[spark]` extra" in line


def test_targets_are_reached_as_the_dbt_profile_says() -> None:
    assert postgres.conninfo_from_env({}) == (
        "host=127.0.0.1 port=5432 user=postgres dbname=convopt connect_timeout=10"
    )
    info = postgres.conninfo_from_env(
        {"CONVOPT_PG_HOST": "db.internal", "CONVOPT_PG_PORT": "6543", "CONVOPT_PG_PASSWORD": "it's secret"}
    )
    assert info == (
        "host=db.internal port=6543 user=postgres dbname=convopt connect_timeout=10 password='it\\'s secret'"
    )
    thrift = profile_target("spark", {"CONVOPT_SPARK_PORT": "10123"})
    assert (thrift["method"], thrift["host"], int(thrift["port"])) == ("thrift", "127.0.0.1", 10123)
    assert thrift["server_side_parameters"]["set:hiveconf:spark.sql.session.timeZone"] == "UTC"
    session = profile_target("spark_session", {"CONVOPT_SPARK_SESSION_DIR": "/srv/spark"})
    assert session["method"] == "session"
    assert session["server_side_parameters"]["spark.sql.warehouse.dir"] == "/srv/spark/spark-warehouse"


def test_every_raw_column_has_a_type_on_every_engine() -> None:
    columns = contract_columns()
    for module, name in ((postgres, "PostgreSQL"), (spark, "Spark")):
        mapped = map_types(columns, module.column_type, name)
        assert {table: len(cols) for table, cols in mapped.items()} == {t: len(c) for t, c in columns.items()}
    assert postgres.column_type("TIMESTAMP WITH TIME ZONE") == "timestamp with time zone"
    assert spark.column_type("TIMESTAMP WITH TIME ZONE") == "timestamp"
    assert (postgres.column_type("DECIMAL(18,3)"), spark.column_type("DECIMAL(18,3)")) == (
        "numeric(18, 3)",
        "decimal(18, 3)",
    )
    with pytest.raises(LoadTargetError, match=r"raw\.t\.c has DuckDB type HUGEINT, which has no Spark type"):
        map_types({"t": [type(columns["events"][0])("c", "HUGEINT", False)]}, spark.column_type, "Spark")


def _servers(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.engines.servers", *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )


def test_server_helper_rejects_unknown_engines_and_actions() -> None:
    for args, expected in (
        (["mysql", "start"], "invalid choice: 'mysql' (choose from postgres, spark)"),
        (["spark", "restart"], "invalid choice: 'restart' (choose from start, status, stop)"),
        (["postgres", "stop"], "give the server's directory or set CONVOPT_PG_DATA"),
    ):
        result = _servers(*args)
        assert result.returncode == 2, args
        assert expected in result.stderr.replace("'postgres', 'spark'", "postgres, spark").replace(
            "'start', 'status', 'stop'", "start, status, stop"
        ), result.stderr


def test_spark_helper_without_a_cluster(tmp_path: Path) -> None:
    """status and stop read only the state folder's pid files: they run without pyspark or Java."""
    env = {"CONVOPT_SPARK_DIR": str(tmp_path)}
    status = _servers("spark", "status", env=env)
    assert status.returncode == 1
    assert status.stdout.splitlines() == ["master: stopped", "worker: stopped", "thrift: stopped"]
    assert _servers("spark", "stop", env=env).returncode == 0


def test_postgres_helper_status_of_a_folder_without_a_server(tmp_path: Path) -> None:
    status = _servers("postgres", "status", str(tmp_path))
    assert status.returncode == 1
    assert status.stdout.strip() == f"not running (data {tmp_path})"
    stop = _servers("postgres", "stop", str(tmp_path))
    assert stop.returncode == 1
    assert "is not a directory made by" in stop.stderr
