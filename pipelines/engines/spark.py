"""Spark as a target of `convopt load-target` (dbt targets `spark` and `spark_session`).

* **Connection**: the target's output of the dbt profile. `spark` (``method: thrift``) reaches the
  Thrift server at its host and port (``CONVOPT_SPARK_HOST`` / ``CONVOPT_SPARK_PORT``) with the
  profile's session settings; `spark_session` (``method: session``) builds an in-process
  SparkSession with the profile's settings, so the tables land in the metastore dbt's session reads.
* **Copy**: DuckDB writes each raw table as one Parquet file (zstd) into a fresh folder per load
  under the Parquet folder (``$CONVOPT_SPARK_PARQUET_DIR``, else ``spark_raw/`` beside the
  warehouse), and Spark registers it as an external table of database ``raw``
  (``create table … using parquet location …``). The table is then counted in Spark, which must
  match DuckDB's count. Every load replaces every table (Spark's Parquet tables cannot delete), so a
  failed load leaves the previous tables readable; older folders of a table are removed once its
  new one is registered. The Parquet folder must be readable by every Spark executor under the
  same path: on one machine any local folder is; a multi-host cluster needs shared storage.
* **Types** (:data:`TYPES`): ``varchar`` → ``string``, ``integer`` → ``int``,
  ``timestamp with time zone`` → ``timestamp`` (an instant; DuckDB writes it as UTC-adjusted
  microseconds, Spark shows it in the session time zone, UTC in our profiles), ``timestamp`` →
  ``timestamp_ntz``, ``decimal(p, s)`` as is.

pyspark and PyHive (the `.[spark]` extra) are imported only when a connection is made.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipelines.engines.load import (
    LoadReport,
    LoadTargetError,
    OnTable,
    RawSource,
    TableCopy,
    choose_tables,
    contract_columns,
    decimal_precision,
    map_types,
    open_raw,
)

DATABASE = "raw"
PARQUET_DIR_ENV = "CONVOPT_SPARK_PARQUET_DIR"
START_HINT = 'start one with `eval "$(python -m pipelines.engines.servers spark start)"`'
EXTRA_HINT = "the Spark targets need the `.[spark]` extra: pip install -e '.[spark]'"

# DuckDB column type (information_schema.columns.data_type) → Spark SQL type.
TYPES: dict[str, str] = {
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
Execute = Callable[[str], list[tuple]]  # runs one Spark SQL statement, returns its rows


def column_type(duckdb_type: str) -> str | None:
    """The Spark SQL type of a DuckDB column type (DECIMAL(p,s) → decimal(p, s)); None if unmapped."""
    upper = duckdb_type.upper()
    if precision := decimal_precision(upper):
        return f"decimal({precision[0]}, {precision[1]})"
    return TYPES.get(upper)


# --- connection -------------------------------------------------------------------------------------


def _thrift_connect(host: str, port: int, settings: Mapping[str, str]) -> Any:
    try:
        from pyhive import hive
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise LoadTargetError(f"{EXTRA_HINT} (PyHive is not importable)") from exc
    try:
        return hive.connect(host=host, port=port, configuration=dict(settings))
    except Exception as exc:
        reason = " ".join(str(exc).split())
        raise LoadTargetError(
            f"cannot connect to the Spark Thrift server at {host}:{port} ({reason}); {START_HINT} "
            "or set CONVOPT_SPARK_HOST/PORT"
        ) from exc


def _cursor_executor(conn: Any) -> Execute:
    from pyhive import hive

    def execute(statement: str) -> list[tuple]:
        cursor = conn.cursor()
        try:
            cursor.execute(statement)
            return list(cursor.fetchall()) if cursor.description else []
        except hive.OperationalError as exc:
            raise LoadTargetError(
                f"Spark rejected `{statement.splitlines()[0]} …`: {_thrift_message(exc)}"
            ) from exc
        finally:
            cursor.close()

    return execute


def thrift_executor(
    host: str, port: int, *, timezone: str = "UTC", configuration: Mapping[str, str] | None = None
) -> Execute:
    """Run statements through the Spark Thrift server at `host`:`port`.

    Session settings are sent as the connection's configuration. The Thrift server applies them
    only under the form ``set:hiveconf:<key>`` and ignores a plain ``spark.sql.…`` key; the session
    time zone is `timezone` unless `configuration` sets it."""
    settings = {"set:hiveconf:spark.sql.session.timeZone": timezone, **(configuration or {})}
    return _cursor_executor(_thrift_connect(host, port, settings))


def _thrift_message(exc: Exception) -> str:
    """The one-line errorMessage of a PyHive OperationalError (whose str() is the whole Java stack)."""
    response = exc.args[0] if exc.args else None
    status = getattr(response, "status", None)
    return getattr(status, "errorMessage", None) or str(exc)[:500]


def session_executor(spark: Any) -> Execute:
    """Run statements in a pyspark ``SparkSession``."""

    def execute(statement: str) -> list[tuple]:
        return [tuple(row) for row in spark.sql(statement).collect()]

    return execute


def build_session(settings: Mapping[str, str]) -> Any:
    """An in-process SparkSession with Hive support and the given settings, built as dbt-spark's
    `session` method builds its own (so both use the same metastore and warehouse folder)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise LoadTargetError(f"{EXTRA_HINT} (pyspark is not importable)") from exc
    builder = SparkSession.builder.appName("convopt load-target").enableHiveSupport()
    for key, value in settings.items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()


@contextmanager
def connect(profile: Mapping[str, Any]) -> Iterator[Execute]:
    """A statement executor for a dbt Spark profile output (`method: thrift` or `method: session`)."""
    method = profile.get("method")
    settings = {key: str(value) for key, value in (profile.get("server_side_parameters") or {}).items()}
    if method == "thrift":
        conn = _thrift_connect(
            str(profile.get("host", "127.0.0.1")), int(profile.get("port", 10000)), settings
        )
        try:
            yield _cursor_executor(conn)
        finally:
            conn.close()
    elif method == "session":
        session = build_session(settings)
        try:
            yield session_executor(session)
        finally:
            session.stop()
    else:
        raise LoadTargetError(
            f"Spark connection method {method!r} is not supported; expected thrift or session"
        )


# --- copy -------------------------------------------------------------------------------------------


def default_parquet_dir(warehouse: Path, env: Mapping[str, str] | None = None) -> Path:
    """``$CONVOPT_SPARK_PARQUET_DIR``, else ``spark_raw/`` beside the DuckDB file."""
    env = os.environ if env is None else env
    explicit = env.get(PARQUET_DIR_ENV)
    return Path(explicit) if explicit else Path(warehouse).parent / "spark_raw"


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def load_raw(
    warehouse: Path,
    execute: Execute,
    *,
    target: str = "spark",
    parquet_dir: Path | None = None,
    tables: Sequence[str] | None = None,
    database: str = DATABASE,
    on_table: OnTable | None = None,
) -> LoadReport:
    """Copy the raw tables of `warehouse` (all, or `tables`) into Spark database `database` through
    `execute` (see :func:`connect`), replacing them; each table's rows are counted in Spark."""
    chosen = choose_tables(tables)
    columns = map_types(contract_columns(), column_type, "Spark")
    root = Path(parquet_dir or default_parquet_dir(warehouse)).resolve()
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    report = LoadReport(target=target)
    with open_raw(warehouse) as source:
        execute(f"create database if not exists {_ident(database)}")
        for table in chosen:
            started = time.perf_counter()
            rows, location = _load_table(
                source, execute, table, columns[table], database, root / table, run_id
            )
            copy = TableCopy(table, rows, time.perf_counter() - started, location=str(location))
            report.copies.append(copy)
            if on_table:
                on_table(copy)
    return report


def _load_table(
    source: RawSource,
    execute: Execute,
    table: str,
    columns: Sequence[tuple[Any, str]],
    database: str,
    table_root: Path,
    run_id: str,
) -> tuple[int, Path]:
    location = table_root / run_id
    location.mkdir(parents=True, exist_ok=True)
    # One file per table: the raw tables are small next to what Spark reads per task.
    expected = source.copy(
        source.select(table),
        location / "part-0.parquet",
        "format parquet, compression zstd, row_group_size 1000000",
    )
    qualified = f"{_ident(database)}.{_ident(table)}"
    column_sql = ",\n    ".join(f"{_ident(column.name)} {typ}" for column, typ in columns)
    try:
        execute(f"drop table if exists {qualified}")
        execute(
            f"create table {qualified} (\n    {column_sql}\n) using parquet location {_string(location.as_uri())}"
        )
        ((counted,),) = execute(f"select count(*) from {qualified}")
    except LoadTargetError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())[:500]
        raise LoadTargetError(f"registering {database}.{table} at {location} failed: {reason}") from exc
    if counted != expected:
        raise LoadTargetError(
            f"{database}.{table}: Spark counts {counted} rows in {location}, DuckDB raw.{table} has {expected}"
        )
    for old in table_root.iterdir():
        if old.is_dir() and old != location:
            shutil.rmtree(old, ignore_errors=True)
    return int(counted), location
