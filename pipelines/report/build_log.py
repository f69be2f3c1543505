"""What the warehouse holds for a report: its tables, and the dbt build that made the marts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

BUILD_LOG = "audit.dbt_build_log"


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether ``schema.table`` exists (table or view)."""
    schema, table = qualified.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def latest_build(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The latest dbt build/run recorded by the on-run-end hook (macros/record_build.sql), if any."""
    if not table_exists(con, BUILD_LOG):
        return None
    cursor = con.execute(
        f"select * from {BUILD_LOG} where command in ('build', 'run') order by finished_at desc limit 1"
    )
    names = [d[0] for d in cursor.description]
    row = cursor.fetchall()[0]
    if row is None:
        return None
    # The hook writes UTC wall-clock times (timestamp without zone).
    return {
        name: (value.isoformat() + "Z" if isinstance(value, dt.datetime) else value)
        for name, value in zip(names, row, strict=True)
    }
