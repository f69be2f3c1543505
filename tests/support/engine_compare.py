"""Compare every relation the dbt project builds on DuckDB with the same relation on another engine.

Shared by the engine-equivalence tests (tests/engines/test_engines_equivalence.py for PostgreSQL,
tests/engines/test_engines_equivalence_spark.py for Spark). An engine is described by an :class:`Engine`:
how to list a relation's columns and types, how to fetch its rows, and how its type names map to
type families. For each relation of the DuckDB warehouse in ``SCHEMAS`` the comparison checks the
same columns, compatible types (same family: a DuckDB HUGEINT against a PostgreSQL numeric means a
`sum(bigint)` without its cast) and the same rows, with EXCEPT ALL both ways after normalizing
types: both sides are read into a scratch DuckDB and cast to the DuckDB column types; floating-point
and decimal values are rounded to 6 decimals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

SCHEMAS = ("reference", "staging", "intermediate", "marts", "reports")

# Type families: the engines spell types differently, but a column must land in the same family.
DUCK_FAMILIES = {
    "VARCHAR": "text",
    "BIGINT": "integer",
    "INTEGER": "integer",
    "SMALLINT": "integer",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIMESTAMP": "timestamp",
    "DOUBLE": "float",
    "FLOAT": "float",
}
PG_FAMILIES = {
    "text": "text",
    "character varying": "text",
    "bigint": "integer",
    "integer": "integer",
    "smallint": "integer",
    "boolean": "boolean",
    "date": "date",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "double precision": "float",
    "real": "float",
    "numeric": "decimal",
}
# Spark's `timestamp` is an instant (shown in the session time zone, UTC here); `timestamp_ntz` is local.
SPARK_FAMILIES = {
    "string": "text",
    "bigint": "integer",
    "int": "integer",
    "smallint": "integer",
    "tinyint": "integer",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
    "timestamp_ntz": "timestamp",
    "double": "float",
    "float": "float",
}


def duck_family(duck_type: str) -> str:
    return "decimal" if duck_type.startswith("DECIMAL") else DUCK_FAMILIES.get(duck_type, duck_type)


def pg_family(pg_type: str) -> str:
    return PG_FAMILIES.get(pg_type, pg_type)


def spark_family(spark_type: str) -> str:
    if re.fullmatch(r"decimal\(\d+,\s*\d+\)", spark_type):
        return "decimal"
    return (
        "text" if spark_type.startswith(("varchar", "char")) else SPARK_FAMILIES.get(spark_type, spark_type)
    )


@dataclass(frozen=True)
class Engine:
    """The other engine: `columns(schema, table)` gives {column: type} (empty when the relation is
    missing), `rows(sql)` the rows of a query as tuples, `family(type)` the type family."""

    name: str
    columns: Callable[[str, str], dict[str, str]]
    rows: Callable[[str], Sequence[Sequence[Any]]]
    family: Callable[[str], str]


def _normalized(alias: str, duck_columns: list[tuple[str, str]]) -> str:
    """Select list reading `alias` with DuckDB's column types; floating values rounded to 6 decimals."""
    parts = []
    for column, duck_type in duck_columns:
        value = f'cast({alias}."{column}" as {duck_type})'
        if duck_family(duck_type) in ("float", "decimal"):
            value = f'round(cast({alias}."{column}" as double), 6)'
        parts.append(f'{value} as "{column}"')
    return ", ".join(parts)


def _arrow(names: list[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    if not rows:
        return pa.table({c: pa.array([], type=pa.string()) for c in names})
    return pa.table({c: pa.array([row[i] for row in rows]) for i, c in enumerate(names)})


def differences(warehouse: Path, other: Engine, *, quote: str = '"') -> list[str]:
    """One line per relation whose columns, types or rows differ between DuckDB and `other`.

    `quote` is the other engine's identifier quote (PostgreSQL `"`, Spark `` ` ``)."""
    problems: list[str] = []
    with duckdb.connect(str(warehouse), read_only=True) as duck, duckdb.connect(":memory:") as scratch:
        duck.execute("set TimeZone = 'UTC'")
        scratch.execute("set TimeZone = 'UTC'")
        relations = duck.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in {SCHEMAS} order by 1, 2"
        ).fetchall()
        assert len(relations) > 20, relations
        for schema, table in relations:
            name = f"{schema}.{table}"
            duck_columns = duck.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            other_columns = other.columns(schema, table)
            if not other_columns:
                problems.append(f"{name}: missing on {other.name}")
                continue
            if {c for c, _ in duck_columns} != set(other_columns):
                problems.append(
                    f"{name}: columns differ: duckdb {[c for c, _ in duck_columns]} vs {list(other_columns)}"
                )
                continue
            mismatched = [
                f"{column} ({duck_type} vs {other_columns[column]})"
                for column, duck_type in duck_columns
                if duck_family(duck_type) != other.family(other_columns[column])
            ]
            if mismatched:
                problems.append(f"{name}: types differ: {', '.join(mismatched)}")

            names = [c for c, _ in duck_columns]
            duck_list = ", ".join(f'"{c}"' for c in names)
            other_list = ", ".join(f"{quote}{c}{quote}" for c in names)
            scratch.register("duck_rows", duck.sql(f"select {duck_list} from {name}").to_arrow_table())
            scratch.register("other_rows", _arrow(names, other.rows(f"select {other_list} from {name}")))

            left = f"select {_normalized('d', duck_columns)} from duck_rows as d"
            right = f"select {_normalized('o', duck_columns)} from other_rows as o"
            only_duck = scratch.execute(f"{left} except all {right}").fetchall()
            only_other = scratch.execute(f"{right} except all {left}").fetchall()
            if only_duck or only_other:
                problems.append(
                    f"{name}: {len(only_duck)} row(s) only on DuckDB, {len(only_other)} only on {other.name}; "
                    f"first DuckDB-only {only_duck[:2]}; first {other.name}-only {only_other[:2]}"
                )
            scratch.unregister("duck_rows")
            scratch.unregister("other_rows")
    return problems
