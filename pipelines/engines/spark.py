"""Put the validated raw tables of the DuckDB warehouse into Spark, for the `spark` dbt targets.

`convopt ingest` validates landing files into DuckDB (``raw.*``, the one place that enforces the raw
contract). This module copies those tables to Spark: DuckDB writes each table as a Parquet file
(``COPY … TO … (FORMAT parquet)``), and Spark registers it as an external table of database ``raw``
(``CREATE TABLE raw.<table> (<columns>) USING parquet LOCATION …``) with the contract's types:
``varchar`` → ``string``, ``bigint`` → ``bigint``, ``integer`` → ``int``, ``date`` → ``date``,
``timestamp with time zone`` → ``timestamp`` (an instant; DuckDB writes it as UTC-adjusted
microseconds, Spark shows it in the session time zone, UTC in our profiles).

Each load writes a fresh folder per table under ``parquet_dir`` and then swaps the table to it, so
a failed load leaves the previous tables readable; older folders of that table are removed after the
swap. ``parquet_dir`` must be readable by every Spark executor under the same path: on the loopback
cluster of ``scripts/spark_cluster.sh`` any local folder is; on a real cluster use shared storage.

Run it as ``python -m pipelines.engines.spark --host 127.0.0.1 --port 10000`` (see ``--help``), or
call :func:`load_raw_to_spark`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipelines.warehouse import connect, warehouse_path

# Every table of DuckDB's `raw` schema that dbt reads (models/staging/_sources.yml, _meta_sources.yml).
RAW_TABLES: tuple[str, ...] = (
    "events",
    "conversions",
    "ad_spend",
    "load_log",
    "rejected_rows",
    "meta_delivery_log",
)
SPARK_DATABASE = "raw"
HOST_ENV, PORT_ENV, PARQUET_DIR_ENV = "CONVOPT_SPARK_HOST", "CONVOPT_SPARK_PORT", "CONVOPT_SPARK_PARQUET_DIR"

# DuckDB column type (information_schema.columns.data_type) → Spark SQL type.
_SPARK_TYPES: dict[str, str] = {
    "VARCHAR": "string",
    "BIGINT": "bigint",
    "INTEGER": "int",
    "SMALLINT": "smallint",
    "BOOLEAN": "boolean",
    "DOUBLE": "double",
    "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "TIMESTAMP": "timestamp_ntz",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


class SparkLoadError(RuntimeError):
    """The raw tables could not be put into Spark (the message says which table and why)."""


@dataclass(frozen=True)
class LoadedTable:
    name: str  # e.g. raw.events
    rows: int  # rows Spark counts after registering (equal to DuckDB's, checked)
    location: Path  # folder of the Parquet file
    columns: tuple[tuple[str, str], ...]  # (name, Spark type)
    seconds: float


def spark_type(duckdb_type: str, *, table: str = "?", column: str = "?") -> str:
    """The Spark SQL type of a DuckDB column type; an unmapped type is an error naming the column."""
    upper = duckdb_type.upper()
    if upper in _SPARK_TYPES:
        return _SPARK_TYPES[upper]
    if match := _DECIMAL.fullmatch(upper):
        return f"decimal({match[1]}, {match[2]})"
    raise SparkLoadError(
        f"raw.{table}.{column} has DuckDB type {duckdb_type}, which has no Spark mapping in "
        f"pipelines/engines/spark.py; expected one of {', '.join(sorted(_SPARK_TYPES))} or DECIMAL(p, s)"
    )


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def thrift_executor(host: str, port: int, *, timezone: str = "UTC") -> Callable[[str], list[tuple]]:
    """A function running one Spark SQL statement through the Thrift server and returning its rows.

    The session's time zone is sent as `set:hiveconf:spark.sql.session.timeZone`: the Thrift server
    applies session settings only under that form and ignores a plain `spark.sql.…` key."""
    try:
        from pyhive import hive
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SparkLoadError("PyHive is missing: pip install -e '.[spark]'") from exc
    try:
        conn = hive.connect(
            host=host, port=port, configuration={"set:hiveconf:spark.sql.session.timeZone": timezone}
        )
    except Exception as exc:
        raise SparkLoadError(
            f"cannot connect to the Spark Thrift server at {host}:{port} ({exc}); "
            'start one with `eval "$(scripts/spark_cluster.sh start)"`'
        ) from exc

    def execute(statement: str) -> list[tuple]:
        cursor = conn.cursor()
        try:
            cursor.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []
        except hive.OperationalError as exc:
            raise SparkLoadError(
                f"Spark rejected `{statement.splitlines()[0]} …`: {_thrift_message(exc)}"
            ) from exc
        finally:
            cursor.close()

    return execute


def _thrift_message(exc: Exception) -> str:
    """The one-line errorMessage of a PyHive OperationalError (whose str() is the whole Java stack)."""
    response = exc.args[0] if exc.args else None
    status = getattr(response, "status", None)
    return getattr(status, "errorMessage", None) or str(exc)[:500]


def session_executor(spark: Any) -> Callable[[str], list[tuple]]:
    """The same for a pyspark ``SparkSession`` (e.g. one built with the `spark_session` profile's conf)."""

    def execute(statement: str) -> list[tuple]:
        return [tuple(row) for row in spark.sql(statement).collect()]

    return execute


def _duckdb_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        """
        select column_name, data_type
        from information_schema.columns
        where table_schema = 'raw' and table_name = ?
        order by ordinal_position
        """,
        [table],
    ).fetchall()
    return [(name, spark_type(typ, table=table, column=name)) for name, typ in rows]


def default_parquet_dir(warehouse: Path) -> Path:
    """``$CONVOPT_SPARK_PARQUET_DIR``, else ``spark_raw/`` beside the DuckDB file."""
    explicit = os.environ.get(PARQUET_DIR_ENV)
    return Path(explicit) if explicit else warehouse.parent / "spark_raw"


def load_raw_to_spark(
    warehouse: str | os.PathLike[str] | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    execute: Callable[[str], list[tuple]] | None = None,
    parquet_dir: str | os.PathLike[str] | None = None,
    tables: Sequence[str] = RAW_TABLES,
    database: str = SPARK_DATABASE,
    on_table: Callable[[LoadedTable], None] | None = None,
) -> list[LoadedTable]:
    """Copy DuckDB's ``raw.<table>`` for each of ``tables`` into Spark database ``database``.

    Spark is reached through ``execute`` (a function running one SQL statement, see
    :func:`thrift_executor` / :func:`session_executor`), else the Thrift server at ``host``:``port``
    (default ``$CONVOPT_SPARK_HOST`` / ``$CONVOPT_SPARK_PORT``, as `scripts/spark_cluster.sh start`
    exports them). Replaces the Spark tables; returns one :class:`LoadedTable` per table after
    checking that Spark counts as many rows as DuckDB has.
    """
    source = warehouse_path(warehouse)
    if not source.exists():
        raise SparkLoadError(f"warehouse {source} does not exist: run `convopt ingest` first")
    if execute is None:
        host = host or os.environ.get(HOST_ENV) or "127.0.0.1"
        port = int(port or os.environ.get(PORT_ENV) or 10000)
        execute = thrift_executor(host, port)
    target_root = Path(parquet_dir) if parquet_dir else default_parquet_dir(source)
    target_root = target_root.resolve()
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")

    con = connect(source, read_only=True)
    try:
        present = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            ).fetchall()
        }
        missing = [t for t in tables if t not in present]
        if missing:
            raise SparkLoadError(
                f"warehouse {source} has no raw.{', raw.'.join(missing)}: run `convopt ingest` first"
            )
        execute(f"create database if not exists {_quote_ident(database)}")
        loaded = []
        for table in tables:
            result = _load_table(con, execute, table, database, target_root / table, run_id)
            loaded.append(result)
            if on_table:
                on_table(result)
        return loaded
    finally:
        con.close()


def _load_table(
    con: duckdb.DuckDBPyConnection,
    execute: Callable[[str], list[tuple]],
    table: str,
    database: str,
    table_root: Path,
    run_id: str,
) -> LoadedTable:
    started = time.perf_counter()
    columns = _duckdb_columns(con, table)
    location = table_root / run_id
    location.mkdir(parents=True, exist_ok=True)
    (expected,) = con.execute(f"select count(*) from raw.{table}").fetchone()  # type: ignore[misc]
    # One file per table: the raw tables are small next to what Spark reads per task. DuckDB writes
    # timestamptz as UTC-adjusted INT64 microseconds, which Spark reads as TIMESTAMP.
    con.execute(
        f"copy (select * from raw.{table}) to '{location / 'part-0.parquet'}' "
        "(format parquet, compression zstd, row_group_size 1000000)"
    )
    qualified = f"{_quote_ident(database)}.{_quote_ident(table)}"
    column_sql = ",\n    ".join(f"{_quote_ident(name)} {typ}" for name, typ in columns)
    try:
        execute(f"drop table if exists {qualified}")
        execute(
            f"create table {qualified} (\n    {column_sql}\n) using parquet "
            f"location {_sql_string(location.as_uri())}"
        )
        (counted,) = execute(f"select count(*) from {qualified}")[0]
    except SparkLoadError:
        raise
    except Exception as exc:
        raise SparkLoadError(f"registering {database}.{table} at {location} failed: {exc}") from exc
    if counted != expected:
        raise SparkLoadError(
            f"{database}.{table}: Spark counts {counted} rows in {location}, DuckDB raw.{table} has {expected}"
        )
    for old in _older_runs(table_root, keep=location):
        shutil.rmtree(old, ignore_errors=True)
    return LoadedTable(
        name=f"{database}.{table}",
        rows=int(counted),
        location=location,
        columns=tuple(columns),
        seconds=time.perf_counter() - started,
    )


def _older_runs(table_root: Path, keep: Path) -> Iterable[Path]:
    return (p for p in table_root.iterdir() if p.is_dir() and p != keep)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.engines.spark`: load the raw tables into the Spark Thrift server."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pipelines.engines.spark",
        description="Copy the validated DuckDB raw tables into Spark (Parquet + external tables in `raw`).",
    )
    parser.add_argument("--warehouse", help="DuckDB file (default: $CONVOPT_WAREHOUSE)")
    parser.add_argument("--host", help=f"Thrift host (default: ${HOST_ENV} or 127.0.0.1)")
    parser.add_argument("--port", type=int, help=f"Thrift port (default: ${PORT_ENV} or 10000)")
    parser.add_argument(
        "--parquet-dir",
        help=f"where the Parquet files go (default: ${PARQUET_DIR_ENV} or spark_raw/ beside the warehouse)",
    )
    args = parser.parse_args(argv)

    def report(table: LoadedTable) -> None:
        print(f"{table.name:<24} {table.rows:>12,} rows  {table.seconds:6.2f} s  {table.location}")

    try:
        load_raw_to_spark(
            args.warehouse, host=args.host, port=args.port, parquet_dir=args.parquet_dir, on_table=report
        )
    except SparkLoadError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
