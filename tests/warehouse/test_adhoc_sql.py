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


def test_missing_warehouse_says_how_to_create_it(tmp_path: Path) -> None:
    result = invoke("select 1", "--warehouse", str(tmp_path / "none.duckdb"))
    assert result.exit_code == 2
    assert "does not exist yet" in result.output


def test_locked_warehouse_gets_a_clear_message(warehouse: Path, warehouse_held_open) -> None:
    with warehouse_held_open(warehouse):
        result = invoke("select 1", "--warehouse", str(warehouse))
        assert result.exit_code == 2
        assert "is locked by another process" in result.output
