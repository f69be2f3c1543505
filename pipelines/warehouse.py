"""Where the warehouse lives, how to open it, and the DDL of the ``raw`` schema the loader owns."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from pipelines.contract import LINEAGE_COLUMNS, STREAMS, columns

PROJECT_DIR = Path(__file__).resolve().parent.parent
WAREHOUSE_ENV = "CONVOPT_WAREHOUSE"
DEFAULT_WAREHOUSE = "warehouse/convopt.duckdb"
LANDING_ENV = "CONVOPT_LANDING"
DEFAULT_LANDING = "data/landing"
# DuckDB's memory budget: the same variables and default as the dbt profile's `dev` target.
MEMORY_LIMIT_ENV = "CONVOPT_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "4GB"
TEMP_DIRECTORY_ENV = "CONVOPT_DUCKDB_TEMP_DIRECTORY"


class WarehouseUnavailableError(RuntimeError):
    """The warehouse cannot be opened; the message is one line saying why (CLI exit code 2)."""


class WarehouseLockedError(WarehouseUnavailableError):
    """The DuckDB file is held by another process (a running build or load)."""


class WarehouseOpenError(WarehouseUnavailableError):
    """The warehouse path is not a DuckDB database file (a folder, or a file of other content)."""


_DUCKDB_MAGIC = (8, b"DUCK")  # a DuckDB database file has these bytes at this offset


def check_warehouse_file(path: str | os.PathLike[str]) -> None:
    """Raise WarehouseOpenError when ``path`` exists but is not a DuckDB database file."""
    target = Path(path)
    if target.is_dir():
        raise WarehouseOpenError(
            f"warehouse {target} is a folder: expected a DuckDB database file (e.g. {target}/convopt.duckdb)"
        )
    if not target.exists():
        return
    try:
        with target.open("rb") as f:
            head = f.read(_DUCKDB_MAGIC[0] + len(_DUCKDB_MAGIC[1]))
    except OSError as exc:
        raise WarehouseOpenError(f"warehouse {target} cannot be read: {exc.strerror or exc}") from None
    if head and head[_DUCKDB_MAGIC[0] :] != _DUCKDB_MAGIC[1]:
        raise WarehouseOpenError(
            f"warehouse {target} is not a DuckDB database file: expected a file written by DuckDB, "
            "or a path that does not exist yet"
        )


class WarehouseSettingError(ValueError):
    """A DuckDB setting taken from the environment that does not work: rejected by DuckDB, or a
    memory limit too small for it to run in."""


def warehouse_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The warehouse file: the explicit argument, else ``$CONVOPT_WAREHOUSE``, else the default.

    Relative paths are relative to the current directory, exactly as dbt's ``profiles.yml`` reads
    the same variable, so the Python jobs and ``dbt build`` always agree on the file.
    """
    return Path(explicit or os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE)


def landing_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The landing folder: the explicit argument, else ``$CONVOPT_LANDING``, else ``data/landing``."""
    return Path(explicit or os.environ.get(LANDING_ENV) or DEFAULT_LANDING)


def connect(
    path: str | os.PathLike[str] | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; a lock held by another process becomes a one-line WarehouseLockedError,
    a path that is not a DuckDB file a one-line WarehouseOpenError."""
    target = warehouse_path(path)
    if read_only and not target.exists():
        raise FileNotFoundError(
            f"warehouse {target} does not exist yet: run `convopt ingest` or `make demo` first"
        )
    check_warehouse_file(target)
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The real file: DuckDB puts its write-ahead log beside the name it opens, so one warehouse
        # must always be opened by one name whatever symlink or relative spelling the user gave.
        con = duckdb.connect(str(target.resolve()), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseLockedError(
                f"warehouse {target} is locked by another process (a running `dbt build`, `convopt ingest` "
                "or `convopt run`?); wait for it to finish and retry"
            ) from exc
        raise WarehouseOpenError(f"warehouse {target} cannot be opened: {_first_line(exc)}") from exc
    con.execute("set TimeZone = 'UTC'")
    return con


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def memory_settings() -> dict[str, str]:
    """DuckDB's memory budget from the environment, checked: ``{setting: value}``.

    ``memory_limit`` is ``$CONVOPT_DUCKDB_MEMORY_LIMIT`` (default 4GB): DuckDB keeps its buffers
    within it and writes what does not fit to ``temp_directory``, which is
    ``$CONVOPT_DUCKDB_TEMP_DIRECTORY`` when set (else DuckDB's default, ``<warehouse file>.tmp``).
    An empty variable counts as unset. Raises WarehouseSettingError for a value DuckDB rejects.
    """
    settings = {"memory_limit": os.environ.get(MEMORY_LIMIT_ENV) or DEFAULT_MEMORY_LIMIT}
    if os.environ.get(TEMP_DIRECTORY_ENV):
        settings["temp_directory"] = os.environ[TEMP_DIRECTORY_ENV]
    envs = {"memory_limit": MEMORY_LIMIT_ENV, "temp_directory": TEMP_DIRECTORY_ENV}
    with duckdb.connect() as probe:  # checked on a scratch database: a bad value touches no warehouse
        for name, value in settings.items():
            try:
                _set(probe, name, value)
            except duckdb.Error as exc:
                expected = "a size such as 4GB, 512MB or 2GiB" if name == "memory_limit" else "a folder"
                detail = str(exc).strip().splitlines()[0]
                raise WarehouseSettingError(
                    f"{envs[name]}={value!r} is not a DuckDB {name}: expected {expected} ({detail})"
                ) from exc
    return settings


def apply_memory_settings(con: duckdb.DuckDBPyConnection, settings: dict[str, str]) -> None:
    """Give ``con``'s database the memory budget of :func:`memory_settings`."""
    for name, value in settings.items():
        _set(con, name, value)


def _set(con: duckdb.DuckDBPyConnection, name: str, value: str) -> None:
    literal = "'" + value.replace("'", "''") + "'"
    con.execute(f"set {name} = {literal}")


def raw_table_ddl(stream: str) -> str:
    cols = [f"{c.name} {c.duckdb_type}" + (" not null" if c.required else "") for c in columns(stream)]
    cols += [f"{name} {typ} not null" for name, typ in LINEAGE_COLUMNS]
    return f"create table if not exists raw.{stream} (\n    " + ",\n    ".join(cols) + "\n)"


LOAD_LOG_DDL = """
create table if not exists raw.load_log (
    load_id varchar primary key,
    file_name varchar not null,
    content_sha256 varchar not null,
    stream varchar,
    file_format varchar,
    rows_read bigint,
    rows_loaded bigint,
    rows_rejected bigint,
    started_at timestamp with time zone not null,
    loaded_at timestamp with time zone not null,
    status varchar not null,   -- loaded | failed
    error varchar
)
"""

REJECTED_ROWS_DDL = """
create table if not exists raw.rejected_rows (
    load_id varchar not null,
    file_name varchar not null,
    stream varchar not null,
    row_number bigint not null,
    failing_fields varchar not null,  -- comma-separated contract column names
    reason varchar not null,
    payload varchar not null,         -- the original row as JSON text
    rejected_at timestamp with time zone not null
)
"""


# Append-only record of every delivery attempt to Meta's Conversions API (written by
# `convopt export-meta`, read by dbt: conversion_event.is_optimized / meta_conversion_id).
META_DELIVERY_LOG_DDL = """
create table if not exists raw.meta_delivery_log (
    conversion_id varchar not null,    -- conversion_event.id
    event_id varchar not null,         -- the event_id sent (Meta dedups pixel/server copies on it)
    pixel_id varchar,
    batch_id varchar not null,         -- one request (a bisected half gets its own batch_id)
    attempt integer not null,          -- 1 for the first request of this event, +1 per retry
    status varchar not null,           -- sent | failed | expired | skipped | unknown
    events_received integer,           -- Meta's events_received for the request (sent only)
    fbtrace_id varchar,                -- Meta's trace id of the request; meta_conversion_id of a sent row
    error_type varchar,
    error_code integer,
    error_subcode integer,
    error_message varchar,
    http_status integer,
    test_event_code varchar,
    requested_at timestamp with time zone,
    recorded_at timestamp with time zone not null,
    run_id varchar,                    -- one `convopt export-meta` run
    is_retryable boolean,              -- failed/unknown rows only: true = sent again by the next run
    as_of timestamp with time zone     -- the run's --as-of (the 7-day window reference), if given
)
"""


def _add_missing_columns(con: duckdb.DuckDBPyConnection) -> None:
    """A raw table created before an optional column joined the contract gets it (nullable): its old
    rows read as "not given", which is what an absent column means in a landing file. A column the
    contract no longer requires loses its NOT NULL."""
    found = con.execute(
        "select table_name, column_name, is_nullable from information_schema.columns where table_schema = 'raw' "
        "and table_catalog = current_database()"
    ).fetchall()
    present = {(table, column) for table, column, _ in found}
    not_null = {(table, column) for table, column, nullable in found if nullable == "NO"}
    for stream in STREAMS:
        for column in columns(stream):
            if (stream, column.name) not in present:
                con.execute(f"alter table raw.{stream} add column {column.name} {column.duckdb_type}")
            elif not column.required and (stream, column.name) in not_null:
                # A column that became optional (events' and conversions' person_id, once anonymous_id
                # could stand in for it) loses its NOT NULL on a raw table created before.
                con.execute(f"alter table raw.{stream} alter column {column.name} drop not null")


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``raw`` schema and its tables if they are missing (idempotent)."""
    con.execute("create schema if not exists raw")
    for stream in STREAMS:
        con.execute(raw_table_ddl(stream))
    _add_missing_columns(con)
    con.execute(LOAD_LOG_DDL)
    con.execute(REJECTED_ROWS_DDL)
    con.execute(META_DELIVERY_LOG_DDL)
