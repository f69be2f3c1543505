"""Ad-hoc questions against the warehouse: one read-only query, printed as a table, CSV or JSON."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import duckdb
import polars as pl
from rich.console import Console
from rich.table import Table

from pipelines.warehouse import connect

FORMATS = ("table", "csv", "json")


class QueryError(ValueError):
    """The query could not run (syntax, unknown table, a write on the read-only connection)."""


def run_query(
    sql: str, *, warehouse: str | os.PathLike[str] | None = None, params: list | dict | None = None
) -> pl.DataFrame:
    """Run ``sql`` (with optional prepared ``params``) on a read-only connection; the warehouse is never modified."""
    with connect(warehouse, read_only=True) as con:
        try:
            relation = con.sql(sql, params=params) if params else con.sql(sql)
            # A statement without a result (e.g. `set …`) returns no relation.
            return relation.pl() if relation is not None else pl.DataFrame()
        except duckdb.Error as exc:
            raise QueryError(f"query failed: {str(exc).splitlines()[0]}") from exc


def render(frame: pl.DataFrame, fmt: str, *, max_rows: int = 100) -> str:
    """The result as text: an aligned table (at most ``max_rows`` rows), CSV with a header, or JSON rows."""
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        return json.dumps(frame.to_dicts(), default=str, indent=2) + "\n"
    table = Table(show_edge=False, header_style="bold")
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in frame.head(max_rows).iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    buffer = io.StringIO()
    Console(file=buffer, width=max(80, min(400, 24 * max(1, frame.width))), force_terminal=False).print(table)
    shown = min(max_rows, frame.height)
    note = f"({frame.height} row{'s' if frame.height != 1 else ''}"
    note += f", first {shown} shown; use --format csv for all)" if shown < frame.height else ")"
    return buffer.getvalue() + note + "\n"


def read_sql_argument(query: str | None, file: Path | None) -> str:
    """The SQL text from the argument or the file; exactly one of them must be given."""
    if (query is None) == (file is None):
        raise ValueError('give either a query ("select …") or --file PATH, not both or neither')
    if file is not None:
        if not file.exists():
            raise ValueError(f"SQL file {file} does not exist")
        return file.read_text(encoding="utf-8")
    return str(query)
