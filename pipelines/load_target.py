"""Copy the validated raw tables of the DuckDB warehouse into another engine (``convopt load-target``).

DuckDB stays the landing zone: ``convopt ingest`` validates files into ``raw.*`` there. This job
copies the ``raw`` schema into PostgreSQL so the same dbt project runs with ``--target postgres``.

* **Types** follow the raw contract: the Postgres tables are created from the same DDL as the
  DuckDB ones (``pipelines.warehouse.ensure_raw_schema``, built from ``pipelines/contract.py``),
  with each DuckDB type mapped to its PostgreSQL equivalent (varchar → text, bigint, integer,
  boolean, timestamp with time zone → timestamptz, date) and the same not-null constraints.
* **Bulk copy**: DuckDB writes the selected rows as CSV into a temporary file, which is streamed
  into ``COPY … FROM STDIN (FORMAT csv)``; no row-by-row inserts. CSV keeps null (unquoted empty)
  apart from the empty string (``""``).
* **Exactly once, per load**: the landing streams (events, conversions, ad_spend) are copied per
  ingest load (``raw.load_log.load_id``). In one PostgreSQL transaction per stream, the rows of
  every load of that stream not yet in the target's ``raw.load_log`` are copied together with
  their ``raw.rejected_rows`` and the ``raw.load_log`` rows themselves. A load is therefore in the
  target completely or not at all, and a rerun (after a crash, or after more ingests) copies only
  the loads not yet there: appending is idempotent. Load-log rows without a stream (files that
  could not be read) go the same way in a transaction of their own.
* ``raw.meta_delivery_log`` (append-only in DuckDB, no load id) is **replaced** in one transaction
  (truncate + copy), so the target always holds exactly DuckDB's log.
* The target database gets ``jit = off`` (``alter database``): PostgreSQL's JIT spends about a
  minute compiling the Meta normalization expressions of a query that runs in two seconds without it.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.contract import STREAMS
from pipelines.warehouse import connect, ensure_raw_schema

TARGETS = ("postgres",)

# DuckDB type (information_schema.columns.data_type) → PostgreSQL type.
_PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "TIMESTAMP": "timestamp",
    "DOUBLE": "double precision",
}

RAW_TABLES = (*STREAMS, "load_log", "rejected_rows", "meta_delivery_log")


class LoadTargetError(RuntimeError):
    """The target cannot be loaded (unknown target, server unreachable, schema mismatch)."""


@dataclass
class TableCopy:
    table: str
    rows: int
    loads: int | None = None  # None for tables replaced whole
    seconds: float = 0.0


@dataclass
class LoadTargetReport:
    target: str
    copies: list[TableCopy] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.copies)


def raw_columns() -> dict[str, list[tuple[str, str, bool]]]:
    """(name, PostgreSQL type, not null) of every raw table, from the DuckDB DDL of the contract."""
    con = duckdb.connect(":memory:")
    try:
        ensure_raw_schema(con)
        rows = con.execute(
            "select table_name, column_name, data_type, is_nullable = 'NO' from information_schema.columns "
            "where table_schema = 'raw' order by table_name, ordinal_position"
        ).fetchall()
    finally:
        con.close()
    tables: dict[str, list[tuple[str, str, bool]]] = {}
    for table, column, duck_type, not_null in rows:
        if duck_type not in _PG_TYPES:
            raise LoadTargetError(f"raw.{table}.{column}: no PostgreSQL type for DuckDB type {duck_type}")
        tables.setdefault(table, []).append((column, _PG_TYPES[duck_type], bool(not_null)))
    return tables


def postgres_ddl(table: str, columns: list[tuple[str, str, bool]]) -> str:
    body = ",\n    ".join(
        f'"{name}" {typ}' + (" not null" if not_null else "") for name, typ, not_null in columns
    )
    return f"create table if not exists raw.{table} (\n    {body}\n)"


def _add_missing_columns(pg, table: str, columns: list[tuple[str, str, bool]]) -> None:
    """Columns added to the contract after the target table was created (nullable, like DuckDB's
    `add column if not exists` in pipelines/meta/delivery_log.py)."""
    existing = pg.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = %s "
        "order by ordinal_position",
        [table],
    ).fetchall()
    names = [row[0] for row in existing]
    missing = [name for name, _, _ in columns if name not in names]
    if missing:
        for name, typ, _ in columns:
            if name in missing:
                pg.execute(f'alter table raw.{table} add column if not exists "{name}" {typ}')


def _disable_jit(pg) -> None:
    """`alter database … set jit = off`: PostgreSQL's JIT compiles the large expressions of the Meta
    normalization for about a minute before running a query that takes two seconds without it
    (int_conversion_identities). Needs the database's owner; otherwise a warning, and the models
    still build (slowly)."""
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


def _id_list(load_ids: list[str]) -> str:
    """A SQL literal list of load ids (COPY takes no prepared parameters in DuckDB)."""
    return "(" + ", ".join("'" + load_id.replace("'", "''") + "'" for load_id in load_ids) + ")"


def _copy_query(duck: duckdb.DuckDBPyConnection, pg, table: str, columns: list[str], query: str) -> int:
    """Rows of the DuckDB `query` appended to PostgreSQL raw.`table` with COPY (in pg's open transaction)."""
    with tempfile.TemporaryDirectory(prefix="convopt-load-") as tmp:
        path = Path(tmp) / f"{table}.csv"
        written = duck.execute(
            f"copy ({query}) to '{path}' (format csv, header false, delimiter ',', quote '\"', "
            "escape '\"', nullstr '')"
        ).fetchone()[0]
        column_list = ", ".join(f'"{c}"' for c in columns)
        with (
            pg.cursor() as cur,
            cur.copy(f"copy raw.{table} ({column_list}) from stdin (format csv, null '')") as copy,
            path.open("rb") as source,
        ):
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        return int(written)


def _load_ids(con, query: str, params=()) -> list[str]:
    return [row[0] for row in con.execute(query, params).fetchall()]


def load_postgres(warehouse: Path, conninfo: str) -> LoadTargetReport:
    """Copy the DuckDB raw tables into PostgreSQL's raw schema (see the module docstring)."""
    import psycopg

    tables = raw_columns()
    report = LoadTargetReport(target="postgres")
    duck = connect(warehouse, read_only=True)
    try:
        # Columns of each raw table in the DuckDB file; a table missing there has nothing to copy.
        source: dict[str, set[str]] = {}
        for table, column in duck.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'raw'"
        ).fetchall():
            source.setdefault(table, set()).add(column)

        def cols(table: str) -> list[str]:
            return [c for c, _, _ in tables[table] if c in source.get(table, set())]

        try:
            pg = psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split())  # one line
            raise LoadTargetError(
                f"cannot connect to PostgreSQL ({conninfo}): {reason}; start one with "
                '`eval "$(scripts/pg_server.sh start)"` or set CONVOPT_PG_HOST/PORT/USER/PASSWORD/DBNAME'
            ) from exc
        with pg:
            _disable_jit(pg)
            with pg.transaction():
                pg.execute("create schema if not exists raw")
                for table in RAW_TABLES:
                    pg.execute(postgres_ddl(table, tables[table]))
                    _add_missing_columns(pg, table, tables[table])
                pg.execute("create index if not exists load_log_load_id on raw.load_log (load_id)")

            copied = set(_load_ids(pg, "select load_id from raw.load_log"))
            groups: list[tuple[str, str | None]] = [(s, s) for s in STREAMS] + [("load_log", None)]
            for label, stream in groups if "load_log" in source else []:
                where = "stream = ?" if stream else "stream is null"
                pending = [
                    load_id
                    for load_id in _load_ids(
                        duck,
                        f"select load_id from raw.load_log where {where} order by loaded_at, load_id",
                        [stream] if stream else [],
                    )
                    if load_id not in copied
                ]
                started = time.perf_counter()
                rows = 0
                if pending:
                    ids = _id_list(pending)
                    with pg.transaction():
                        if stream and stream in source:
                            rows = _copy_query(
                                duck,
                                pg,
                                stream,
                                cols(stream),
                                f"select {', '.join(cols(stream))} from raw.{stream} where _load_id in {ids}",
                            )
                        if "rejected_rows" in source:
                            _copy_query(
                                duck,
                                pg,
                                "rejected_rows",
                                cols("rejected_rows"),
                                f"select {', '.join(cols('rejected_rows'))} from raw.rejected_rows where load_id in {ids}",
                            )
                        _copy_query(
                            duck,
                            pg,
                            "load_log",
                            cols("load_log"),
                            f"select {', '.join(cols('load_log'))} from raw.load_log where load_id in {ids}",
                        )
                report.copies.append(
                    TableCopy(label, rows, loads=len(pending), seconds=time.perf_counter() - started)
                )

            started = time.perf_counter()
            rows = 0
            with pg.transaction():
                pg.execute("truncate raw.meta_delivery_log")
                if "meta_delivery_log" in source:
                    rows = _copy_query(
                        duck,
                        pg,
                        "meta_delivery_log",
                        cols("meta_delivery_log"),
                        f"select {', '.join(cols('meta_delivery_log'))} from raw.meta_delivery_log",
                    )
            report.copies.append(TableCopy("meta_delivery_log", rows, seconds=time.perf_counter() - started))
            for table in RAW_TABLES:
                pg.execute(f"analyze raw.{table}")
    finally:
        duck.close()
    return report
