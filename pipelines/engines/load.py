"""`convopt load-target`: copy the validated raw tables of the DuckDB warehouse into another engine.

DuckDB is the landing zone of every engine: ``convopt ingest`` validates files into its ``raw``
schema once. This module holds what loading PostgreSQL and loading Spark share:

* which targets exist (the dbt target names of ``profiles.yml``) and how each is reached: the
  target's output of the dbt profile, rendered with the same environment variables dbt reads;
* which raw tables there are and their columns, from the raw contract (the DuckDB DDL that
  ``pipelines.warehouse.ensure_raw_schema`` creates), and reading them from a warehouse file in
  contract order (a column or table an older file lacks reads as nulls / no rows);
* what a load reports: one :class:`TableCopy` per table (or per stream of ingest loads), and the
  one-line summaries the command prints.

The engine modules (``pipelines.engines.postgres``, ``pipelines.engines.spark``) have the same
shape: how to connect from the profile, how to copy the raw tables, and their type mapping.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.contract import STREAMS
from pipelines.warehouse import PROJECT_DIR, connect, ensure_raw_schema

# dbt target names `load-target --target` accepts (profiles.yml outputs other than DuckDB's `dev`).
TARGETS: tuple[str, ...] = ("postgres", "spark", "spark_session")
PROFILE = "convopt"  # dbt_project.yml `profile:`
RAW_TABLES: tuple[str, ...] = (*STREAMS, "load_log", "rejected_rows", "meta_delivery_log")


class LoadTargetError(RuntimeError):
    """The target cannot be loaded: unknown target, server unreachable, missing extra, or a check
    failed after copying. The message is one line saying what and where."""


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str  # information_schema.columns.data_type, e.g. VARCHAR, TIMESTAMP WITH TIME ZONE
    not_null: bool


@dataclass(frozen=True)
class TableCopy:
    table: str  # raw table, or for PostgreSQL the stream whose ingest loads were copied
    rows: int
    seconds: float
    loads: int | None = None  # new ingest loads copied (PostgreSQL); None when the table is replaced whole
    location: str | None = None  # where the engine reads the copy from (Spark: the Parquet folder)

    def summary(self) -> str:
        loads = "" if self.loads is None else f" from {self.loads} new load(s)"
        where = f", at {self.location}" if self.location else ""
        return f"{self.table}: {self.rows} row(s){loads} in {self.seconds:.2f} s{where}"


@dataclass
class LoadReport:
    target: str
    copies: list[TableCopy] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.copies)

    def summary(self) -> str:
        return f"{self.rows} row(s) copied to {self.target}"


OnTable = Callable[[TableCopy], None]


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise LoadTargetError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    return target


def choose_tables(tables: Sequence[str] | None = None) -> tuple[str, ...]:
    """The raw tables to copy: all of them, or the given ones (each must be a raw table)."""
    if tables is None:
        return RAW_TABLES
    unknown = [t for t in tables if t not in RAW_TABLES]
    if unknown:
        raise LoadTargetError(f"unknown raw table(s) {', '.join(unknown)}; expected {', '.join(RAW_TABLES)}")
    return tuple(tables)


def contract_columns() -> dict[str, list[Column]]:
    """Columns of every raw table, in order, from the DuckDB DDL of the raw contract."""
    con = duckdb.connect(":memory:")
    try:
        ensure_raw_schema(con)
        rows = con.execute(
            "select table_name, column_name, data_type, is_nullable = 'NO' from information_schema.columns "
            "where table_schema = 'raw' order by table_name, ordinal_position"
        ).fetchall()
    finally:
        con.close()
    tables: dict[str, list[Column]] = {}
    for table, column, duck_type, not_null in rows:
        tables.setdefault(table, []).append(Column(column, duck_type, bool(not_null)))
    return tables


_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def decimal_precision(duckdb_type: str) -> tuple[int, int] | None:
    """(precision, scale) of a DuckDB DECIMAL(p,s) type; None for any other type."""
    match = _DECIMAL.fullmatch(duckdb_type.upper())
    return (int(match[1]), int(match[2])) if match else None


def map_types(
    columns: Mapping[str, Sequence[Column]], column_type: Callable[[str], str | None], engine: str
) -> dict[str, list[tuple[Column, str]]]:
    """Each contract column with its type on `engine`; an unmapped DuckDB type is an error naming it."""
    mapped: dict[str, list[tuple[Column, str]]] = {}
    for table, table_columns in columns.items():
        for column in table_columns:
            engine_type = column_type(column.duckdb_type)
            if engine_type is None:
                raise LoadTargetError(
                    f"raw.{table}.{column.name} has DuckDB type {column.duckdb_type}, which has no {engine} "
                    f"type (add it to the type mapping of pipelines.engines.{engine.lower()})"
                )
            mapped.setdefault(table, []).append((column, engine_type))
    return mapped


class RawSource:
    """The raw tables of one warehouse file, read in contract order (see :func:`open_raw`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.con = con
        self.path = path
        self.columns = contract_columns()
        present: dict[str, set[str]] = {}
        for table, column in con.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'raw'"
        ).fetchall():
            present.setdefault(table, set()).add(column)
        self.present = present

    def select(self, table: str, where: str | None = None) -> str:
        """A query for raw.`table`'s rows (filtered by `where`) with the contract's columns in order.

        A column the file lacks (added to the contract later) reads as null; a table it lacks has no rows."""
        have = self.present.get(table)
        parts = [
            f'"{c.name}"' if have and c.name in have else f'cast(null as {c.duckdb_type}) as "{c.name}"'
            for c in self.columns[table]
        ]
        if not have:
            return f"select {', '.join(parts)} where false"
        return f"select {', '.join(parts)} from raw.{table}" + (f" where {where}" if where else "")

    def copy(self, query: str, path: Path, options: str) -> int:
        """Write the rows of `query` to the file `path` with DuckDB's COPY; the number of rows written."""
        target = str(path).replace("'", "''")
        (rows,) = self.con.execute(f"copy ({query}) to '{target}' ({options})").fetchone()  # type: ignore[misc]
        return int(rows)

    def count(self, table: str) -> int:
        if table not in self.present:
            return 0
        (rows,) = self.con.execute(f"select count(*) from raw.{table}").fetchone()  # type: ignore[misc]
        return int(rows)

    def values(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """The first column of `query`'s rows."""
        return [row[0] for row in self.con.execute(query, list(params)).fetchall()]


def check_warehouse(warehouse: Path) -> None:
    if not Path(warehouse).exists():
        raise LoadTargetError(f"warehouse {warehouse} does not exist: run `convopt ingest` first")


@contextmanager
def open_raw(warehouse: Path) -> Iterator[RawSource]:
    """The warehouse's raw tables, opened read-only (a missing file or raw schema is a LoadTargetError;
    a file locked by a writer raises pipelines.warehouse.WarehouseLockedError)."""
    check_warehouse(warehouse)
    con = connect(warehouse, read_only=True)
    try:
        source = RawSource(con, Path(warehouse))
        if not source.present:
            raise LoadTargetError(f"warehouse {warehouse} has no raw tables: run `convopt ingest` first")
        yield source
    finally:
        con.close()


def profile_target(target: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The `target` output of the convopt profile, rendered as dbt renders it: ``env_var(name, default)``
    reads `env` (default: the process environment), and the profile is the profiles.yml in
    ``$DBT_PROFILES_DIR``, else the project's. Values stay strings, as the template gives them."""
    import jinja2
    import yaml

    env = os.environ if env is None else env
    folder = Path(env.get("DBT_PROFILES_DIR") or PROJECT_DIR)
    path = folder / "profiles.yml"
    try:
        profiles = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise LoadTargetError(f"cannot read the dbt profile {path}: {exc.strerror}") from exc
    outputs = (profiles or {}).get(PROFILE, {}).get("outputs", {})
    if target not in outputs:
        raise LoadTargetError(f"{path} has no target {target!r} in profile {PROFILE!r}")

    def env_var(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is None:
            raise LoadTargetError(f"{path} target {target!r} needs the environment variable {name}")
        return default

    renderer = jinja2.Environment(undefined=jinja2.StrictUndefined)
    renderer.globals["env_var"] = env_var
    for name in ("as_number", "as_bool", "as_text", "as_native"):
        renderer.filters[name] = lambda value: value

    def render(value: Any) -> Any:
        if isinstance(value, str) and "{" in value:
            return renderer.from_string(value).render()
        if isinstance(value, dict):
            return {key: render(item) for key, item in value.items()}
        if isinstance(value, list):
            return [render(item) for item in value]
        return value

    return render(outputs[target])


def load_target(
    target: str,
    warehouse: Path,
    *,
    env: Mapping[str, str] | None = None,
    on_table: OnTable | None = None,
) -> LoadReport:
    """Copy the raw tables of `warehouse` into the engine of dbt target `target`, reached as the
    profile says (with `env` for its variables); `on_table` sees each table as it is done."""
    check_target(target)
    check_warehouse(warehouse)  # before connecting: the same first error whatever the engine
    profile = profile_target(target, env)
    if target == "postgres":
        from pipelines.engines import postgres

        return postgres.load_raw(warehouse, postgres.conninfo(profile), on_table=on_table)
    from pipelines.engines import spark

    with spark.connect(profile) as execute:
        return spark.load_raw(
            warehouse,
            execute,
            target=target,
            parquet_dir=spark.default_parquet_dir(warehouse, env),
            on_table=on_table,
        )
