"""`convopt sql`: read-only answers as table, CSV or JSON, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


@pytest.fixture()
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.conversion_event as select * from (values "
            "('a', 'purchase', 2999), ('b', 'signup', 0), ('c', 'purchase', 1000)) t(id, conversion_type, value_cents)"
        )
    return path


def invoke(*args: str):
    return runner.invoke(app, ["sql", *args])


def test_table_output_is_aligned_with_a_row_count(warehouse: Path) -> None:
    result = invoke(
        "select conversion_type, sum(value_cents) as cents from marts.conversion_event group by 1 order by 1",
        "--warehouse",
        str(warehouse),
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "conversion_type" in lines[0] and "cents" in lines[0]
    assert any("purchase" in line and "3999" in line for line in lines)
    assert lines[-1] == "(2 rows)"


def test_csv_and_json_outputs(warehouse: Path) -> None:
    query = "select id, value_cents from marts.conversion_event order by id"
    csv_out = invoke(query, "--format", "csv", "--warehouse", str(warehouse))
    assert csv_out.output.splitlines() == ["id,value_cents", "a,2999", "b,0", "c,1000"]
    json_out = invoke(query, "--format", "json", "--warehouse", str(warehouse))
    assert json.loads(json_out.output)[0] == {"id": "a", "value_cents": 2999}


def test_query_from_file(warehouse: Path, tmp_path: Path) -> None:
    sql_file = tmp_path / "q.sql"
    sql_file.write_text("select count(*) as n from marts.conversion_event")
    result = invoke("--file", str(sql_file), "--format", "csv", "--warehouse", str(warehouse))
    assert result.output.splitlines() == ["n", "3"]


def test_table_output_truncates_long_results(warehouse: Path) -> None:
    result = invoke("select * from range(250) t(i)", "--max-rows", "10", "--warehouse", str(warehouse))
    assert result.exit_code == 0
    assert "(250 rows, first 10 shown; use --format csv for all)" in result.output


def test_writes_are_refused_and_nothing_changes(warehouse: Path) -> None:
    result = invoke("delete from marts.conversion_event", "--warehouse", str(warehouse))
    assert result.exit_code == 2
    assert "query failed" in result.output and "read-only" in result.output
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from marts.conversion_event").fetchone() == (3,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["select 1", "--format", "xml"], "--format must be one of table, csv, json"),
        ([], "give either a query"),
        (["select 1", "--file", "x.sql"], "give either a query"),
        (["--file", "missing.sql"], "missing.sql does not exist"),
        (["select * from nowhere"], "query failed"),
    ],
)
def test_bad_arguments_get_one_clear_line(warehouse: Path, args: list[str], message: str) -> None:
    result = invoke(*args, "--warehouse", str(warehouse))
    assert result.exit_code == 2
    assert message in result.output


@pytest.fixture()
def layered(tmp_path: Path) -> Path:
    """A warehouse with a table of the same name in several schemas, each saying where it is."""
    path = tmp_path / "layered.duckdb"
    with duckdb.connect(str(path)) as con:
        for schema in ("marts", "reports", "intermediate", "staging", "raw", "reference", "audit"):
            con.execute(f"create schema {schema}")
            con.execute(f"create table {schema}.only_in_{schema} as select '{schema}' as found_in")
        for schema in ("staging", "intermediate", "reports"):
            con.execute(f"create table {schema}.everywhere as select '{schema}' as found_in")
        con.execute("create table marts.everywhere as select 'marts' as found_in")
        con.execute("create table raw.beside_reference as select 'raw' as found_in")
        con.execute("create table reference.beside_reference as select 'reference' as found_in")
    return path


def test_unqualified_names_are_found_in_the_marts_first(warehouse: Path) -> None:
    result = invoke(
        "select count(*) as n from conversion_event", "--format", "csv", "--warehouse", str(warehouse)
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["n", "3"]


@pytest.mark.parametrize(
    ("table", "found_in"),
    [
        ("everywhere", "marts"),
        ("beside_reference", "raw"),
        *[
            (f"only_in_{s}", s)
            for s in ("marts", "reports", "intermediate", "staging", "raw", "reference", "audit")
        ],
    ],
)
def test_search_path_is_marts_reports_intermediate_staging_raw_reference_audit(
    layered: Path, table: str, found_in: str
) -> None:
    result = invoke(f"select found_in from {table}", "--format", "csv", "--warehouse", str(layered))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["found_in", found_in]


def test_qualified_names_still_read_their_own_schema(layered: Path) -> None:
    result = invoke("select found_in from staging.everywhere", "--format", "csv", "--warehouse", str(layered))
    assert result.output.splitlines() == ["found_in", "staging"]


def test_a_name_in_no_schema_gets_one_clear_line(warehouse: Path) -> None:
    result = invoke("select * from conversion_evnt", "--warehouse", str(warehouse))
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "query failed: no table or view named conversion_evnt" in message
    # Only the schemas this warehouse has are searched (and DuckDB's default, main).
    assert "looked up in the schemas marts, main, in this order" in message
    assert 'did you mean "conversion_event"?' in message


def test_missing_warehouse_says_how_to_create_it(tmp_path: Path) -> None:
    result = invoke("select 1", "--warehouse", str(tmp_path / "none.duckdb"))
    assert result.exit_code == 2
    assert "does not exist yet" in result.output


def test_locked_warehouse_gets_a_clear_message(warehouse: Path, warehouse_held_open) -> None:
    with warehouse_held_open(warehouse):
        result = invoke("select 1", "--warehouse", str(warehouse))
        assert result.exit_code == 2
        assert "is locked by another process" in result.output
