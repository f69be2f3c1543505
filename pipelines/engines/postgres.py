"""PostgreSQL as a target of `convopt load-target` (dbt target `postgres`).

* **Connection**: the `postgres` output of the dbt profile (host, port, user, password, dbname from
  ``CONVOPT_PG_*``), so the load and ``dbt build --target postgres`` reach the same database.
* **Types** follow the raw contract: each table is created from the contract's DuckDB DDL with
  every DuckDB type mapped to its PostgreSQL equivalent (:data:`TYPES`) and the same not-null
  constraints; columns added to the contract later are added to an existing table (nullable).
* **Bulk copy**: DuckDB writes the rows as CSV into a temporary file, which is streamed into
  ``COPY … FROM STDIN (FORMAT csv)``; no row-by-row inserts. CSV keeps null (unquoted empty) apart
  from the empty string (``""``).
* **Exactly once, per ingest load**: the landing streams (events, conversions, ad_spend) are copied
  per load (``raw.load_log.load_id``). In one transaction per stream, the rows of every load of that
  stream not yet in the target's ``raw.load_log`` are copied together with their
  ``raw.rejected_rows`` and their ``raw.load_log`` rows. A load is in the target completely or not
  at all, and a rerun (after a crash, or after more ingests) copies only the loads not yet there.
  Load-log rows without a stream (files that could not be read) go the same way in a transaction of
  their own.
* ``raw.meta_delivery_log`` (append-only in DuckDB, without a load id) is **replaced** in one
  transaction (truncate + copy), so the target always holds exactly DuckDB's log.
* The database gets ``jit = off``: PostgreSQL's JIT spends about a minute compiling the Meta
  normalization expressions of a query that runs in two seconds without it.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipelines.contract import STREAMS
from pipelines.engines.load import (
    RAW_TABLES,
    Column,
    LoadReport,
    LoadTargetError,
    OnTable,
    RawSource,
    TableCopy,
    contract_columns,
    decimal_precision,
    map_types,
    open_raw,
    profile_target,
)

# DuckDB type (information_schema.columns.data_type) → PostgreSQL type.
TYPES: dict[str, str] = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "BOOLEAN": "boolean",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "TIMESTAMP": "timestamp",
}
START_HINT = (
    'start one with `eval "$(python -m pipelines.engines.servers postgres start)"` '
    "or set CONVOPT_PG_HOST/PORT/USER/PASSWORD/DBNAME"
)


def column_type(duckdb_type: str) -> str | None:
    """The PostgreSQL type of a DuckDB column type (DECIMAL(p,s) → numeric(p, s)); None if unmapped."""
    upper = duckdb_type.upper()
    if precision := decimal_precision(upper):
        return f"numeric({precision[0]}, {precision[1]})"
    return TYPES.get(upper)


# --- connection -------------------------------------------------------------------------------------


def _quote(value: str) -> str:
    if value and not any(c in value for c in " '\\"):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo(profile: Mapping[str, Any]) -> str:
    """libpq connection string of a dbt `postgres` profile output (host, port, user, password, dbname)."""
    parts = {
        "host": profile.get("host", "127.0.0.1"),
        "port": profile.get("port", 5432),
        "user": profile.get("user", "postgres"),
        "dbname": profile.get("dbname") or profile.get("database", "convopt"),
        "connect_timeout": profile.get("connect_timeout", 10),
    }
    if profile.get("password"):
        parts["password"] = profile["password"]
    return " ".join(f"{key}={_quote(str(value))}" for key, value in parts.items())


def conninfo_from_env(env: Mapping[str, str] | None = None) -> str:
    """The connection string dbt's `postgres` target uses with these CONVOPT_PG_* variables."""
    return conninfo(profile_target("postgres", env))


def connect(info: str) -> Any:
    """An autocommit psycopg connection; an unreachable server is a one-line LoadTargetError."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise LoadTargetError(
            "PostgreSQL needs the `.[postgres]` extra (psycopg is not importable): pip install -e '.[postgres]'"
        ) from exc
    try:
        return psycopg.connect(info, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        raise LoadTargetError(f"cannot connect to PostgreSQL ({info}): {reason}; {START_HINT}") from exc


# --- schema -----------------------------------------------------------------------------------------


def ddl(table: str, columns: Sequence[tuple[Column, str]]) -> str:
    body = ",\n    ".join(f'"{c.name}" {typ}' + (" not null" if c.not_null else "") for c, typ in columns)
    return f"create table if not exists raw.{table} (\n    {body}\n)"


def _add_missing_columns(pg: Any, table: str, columns: Sequence[tuple[Column, str]]) -> None:
    """Columns added to the contract after the target table was created (nullable, as DuckDB adds them)."""
    existing = {
        row[0]
        for row in pg.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s",
            [table],
        ).fetchall()
    }
    for column, typ in columns:
        if column.name not in existing:
            pg.execute(f'alter table raw.{table} add column if not exists "{column.name}" {typ}')


def _disable_jit(pg: Any) -> None:
    """`alter database … set jit = off`. Needs the database's owner; otherwise a warning, and the
    models still build (slowly: int_conversion_identities spends a minute in JIT compilation)."""
    import psycopg

    try:
        with pg.transaction():
            pg.execute("select set_config('jit', 'off', false)")
            (dbname,) = pg.execute("select current_database()").fetchone()
            pg.execute(f'alter database "{dbname}" set jit = off')
    except psycopg.errors.InsufficientPrivilege as exc:
        warnings.warn(
            f"could not turn PostgreSQL JIT off ({exc}); run: alter database … set jit = off", stacklevel=2
        )


# --- copy -------------------------------------------------------------------------------------------


def _id_list(load_ids: Sequence[str]) -> str:
    """A SQL literal list of load ids (DuckDB's COPY takes no prepared parameters)."""
    return "(" + ", ".join("'" + load_id.replace("'", "''") + "'" for load_id in load_ids) + ")"


def _copy_rows(source: RawSource, pg: Any, table: str, where: str | None = None) -> int:
    """Rows of raw.`table` (filtered by `where`) appended to PostgreSQL raw.`table` with COPY, in
    pg's open transaction; the number of rows."""
    columns = ", ".join(f'"{c.name}"' for c in source.columns[table])
    with tempfile.TemporaryDirectory(prefix="convopt-load-") as tmp:
        path = Path(tmp) / f"{table}.csv"
        written = source.copy(
            source.select(table, where),
            path,
            "format csv, header false, delimiter ',', quote '\"', escape '\"', nullstr ''",
        )
        with (
            pg.cursor() as cur,
            cur.copy(f"copy raw.{table} ({columns}) from stdin (format csv, null '')") as copy,
            path.open("rb") as rows,
        ):
            while chunk := rows.read(1 << 20):
                copy.write(chunk)
    return written


def load_raw(warehouse: Path, info: str, *, on_table: OnTable | None = None) -> LoadReport:
    """Copy the raw tables of `warehouse` into the raw schema of the PostgreSQL database `info`
    names: new ingest loads per stream, then raw.meta_delivery_log whole (see the module docstring)."""
    tables = map_types(contract_columns(), column_type, "PostgreSQL")
    report = LoadReport(target="postgres")

    def done(copy: TableCopy) -> None:
        report.copies.append(copy)
        if on_table:
            on_table(copy)

    with open_raw(warehouse) as source, connect(info) as pg:
        _disable_jit(pg)
        with pg.transaction():
            pg.execute("create schema if not exists raw")
            for table in RAW_TABLES:
                pg.execute(ddl(table, tables[table]))
                _add_missing_columns(pg, table, tables[table])
            pg.execute("create index if not exists load_log_load_id on raw.load_log (load_id)")

        copied = {row[0] for row in pg.execute("select load_id from raw.load_log").fetchall()}
        for stream in (*STREAMS, None):
            started = time.perf_counter()
            where = "stream = ?" if stream else "stream is null"
            pending = [
                load_id
                for load_id in source.values(
                    f"select load_id from raw.load_log where {where} order by loaded_at, load_id",
                    [stream] if stream else [],
                )
                if load_id not in copied
            ]
            rows = 0
            if pending:
                ids = _id_list(pending)
                with pg.transaction():
                    if stream:
                        rows = _copy_rows(source, pg, stream, f"_load_id in {ids}")
                    _copy_rows(source, pg, "rejected_rows", f"load_id in {ids}")
                    _copy_rows(source, pg, "load_log", f"load_id in {ids}")
            done(TableCopy(stream or "load_log", rows, time.perf_counter() - started, loads=len(pending)))

        started = time.perf_counter()
        with pg.transaction():
            pg.execute("truncate raw.meta_delivery_log")
            rows = _copy_rows(source, pg, "meta_delivery_log")
        done(TableCopy("meta_delivery_log", rows, time.perf_counter() - started))
        for table in RAW_TABLES:
            pg.execute(f"analyze raw.{table}")
    return report
