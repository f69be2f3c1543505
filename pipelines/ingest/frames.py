"""What the ingest steps hand each other: a file's values as read (``Source``), the names of
the working columns beside them, and the way frames cross into DuckDB."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import polars as pl
import pyarrow as pa

ROW = "_source_row"
JTYPE_SUFFIX = "__jtype"  # suffix: the JSON type of a JSONL field (or the refined kind of a json column)
JSON_SUFFIX = "__json"  # suffix: a json column's text parsed and written back minified (null if not JSON)
# What a JSON type other than an object means for a json column (a problem code).
JSON_KIND_PROBLEMS = {
    "ARRAY": "json_array",
    "VARCHAR": "json_string",
    "BIGINT": "json_number",
    "UBIGINT": "json_number",
    "DOUBLE": "json_number",
    "BOOLEAN": "json_boolean",
    "NULL": "json_null",
    "INVALID": "invalid_json",
}


@dataclass
class Source:
    """A landing file as read, before typing.

    ``values`` has ``_source_row`` and one column per contract column (missing optional columns
    null), plus ``<column>__jtype`` for what JSON said a value was (JSONL string fields, json
    columns) and ``<column>__json`` for a json column's minified text.
    ``payloads(idx)`` gives the original rows at positions ``idx`` of ``values`` as JSON text.
    """

    values: pl.DataFrame
    payloads: Callable[[pl.Series], pl.Series]


def query_row(con: duckdb.DuckDBPyConnection, query: str, params: object = None) -> tuple | None:
    """The first row of a query, or None; the result is consumed (DuckDB 2.0 wants it finished)."""
    found = con.execute(query, params).fetchall()
    return found[0] if found else None


def arrow_view(frame: pl.DataFrame) -> pa.Table:
    """Zero-copy Arrow view of a polars frame, in batches DuckDB can scan on all threads."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    return pa.Table.from_batches(table.to_batches(max_chunksize=122_880), schema=table.schema)


def execute_with(
    con: duckdb.DuckDBPyConnection, query: str, frame: pl.DataFrame, params: object = None
) -> list[tuple]:
    """Run ``query``, in which the name ``_frame`` reads ``frame``; its rows, consumed.

    DuckDB finds ``_frame`` among this function's local variables (its replacement scan), so the
    frame is read for this one statement. ``con.register`` would not do inside a transaction: a
    registered view stays in the transaction's catalog until commit, and with it every chunk's data
    (a whole file held in memory for a one-transaction load).
    """
    _frame = arrow_view(frame)  # read by name in the query
    return con.execute(query, params).fetchall()


def quoted(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
