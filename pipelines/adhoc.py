"""Ad-hoc questions against the warehouse: one read-only query, its result as a polars frame.

The CLI prints the result (a table, CSV or JSON) with pipelines.cli_output.render_frame.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb
import polars as pl

from pipelines.warehouse import connect

# Where an unqualified name (`conversion_event`) is looked up, in this order: the schemas of this list that
# exist in the warehouse (then DuckDB's default schema, main). A name in several schemas is the first one's.
SEARCH_PATH = ("marts", "reports", "intermediate", "staging", "raw", "reference", "audit")
_MISSING_TABLE = re.compile(
    r'Table with name (?P<name>\S+) does not exist!(?:\s*Did you mean "(?P<hint>[^"]+)"\?)?'
)


class QueryError(ValueError):
    """The query could not run (syntax, unknown table, a write on the read-only connection)."""


def set_search_path(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Look unqualified names up in the schemas of ``SEARCH_PATH`` that exist; returns them in order."""
    present = {
        name
        for (name,) in con.execute(
            "select schema_name from information_schema.schemata where catalog_name = current_database()"
        ).fetchall()
    }
    schemas = [schema for schema in SEARCH_PATH if schema in present]
    if schemas:
        con.execute(f"set search_path = '{','.join(schemas)}'")
    return schemas


def _failure_message(exc: duckdb.Error, schemas: list[str]) -> str:
    """One line: DuckDB's first line, or for an unknown table where unqualified names are looked up."""
    text = str(exc)
    missing = _MISSING_TABLE.search(text) if isinstance(exc, duckdb.CatalogException) else None
    if missing is None:
        return f"query failed: {text.splitlines()[0]}"
    searched = ", ".join([*schemas, "main"])
    hint = f'; did you mean "{missing["hint"]}"?' if missing["hint"] else ""
    return (
        f"query failed: no table or view named {missing['name']} (an unqualified name is looked up in the "
        f"schemas {searched}, in this order; qualify it as <schema>.<name>){hint}"
    )


def run_query(
    sql: str, *, warehouse: str | os.PathLike[str] | None = None, params: list | dict | None = None
) -> pl.DataFrame:
    """Run ``sql`` (with optional prepared ``params``) on a read-only connection; the warehouse is never modified.

    Unqualified names resolve through ``SEARCH_PATH``: ``select count(*) from conversion_event`` reads
    ``marts.conversion_event``.
    """
    with connect(warehouse, read_only=True) as con:
        schemas = set_search_path(con)
        try:
            relation = con.sql(sql, params=params) if params else con.sql(sql)
            # A statement without a result (e.g. `set …`) returns no relation.
            return relation.pl() if relation is not None else pl.DataFrame()
        except duckdb.Error as exc:
            raise QueryError(_failure_message(exc, schemas)) from exc


def read_sql_argument(query: str | None, file: Path | None) -> str:
    """The SQL text from the argument or the file; exactly one of them must be given."""
    if (query is None) == (file is None):
        raise ValueError('give either a query ("select …") or --file PATH, not both or neither')
    if file is not None:
        if not file.exists():
            raise ValueError(f"SQL file {file} does not exist")
        return file.read_text(encoding="utf-8")
    return str(query)
