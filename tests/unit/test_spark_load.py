"""`pipelines.engines.spark.load_raw` without a Spark: the statements it sends are run by a stand-in
that registers each Parquet location as a DuckDB view, so the copy (files, types, counts, replacing
old files) is checked where pyspark is not installed. test_spark_engine.py does the same on a real
cluster."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import duckdb
import pytest

from pipelines.engines import spark
from pipelines.engines.load import RAW_TABLES, LoadTargetError
from pipelines.warehouse import ensure_raw_schema

CREATE = re.compile(r"create table `raw`\.`(\w+)` \((.*)\) using parquet location '([^']+)'", re.DOTALL)


class FakeSpark:
    """Runs the loader's statements on DuckDB: a registered table is a view over its Parquet folder."""

    def __init__(self, miscount: str | None = None) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.execute("set TimeZone = 'UTC'")
        self.columns: dict[str, list[str]] = {}
        self.miscount = miscount

    def __call__(self, statement: str) -> list[tuple]:
        if statement.startswith("create database"):
            self.con.execute("create schema if not exists raw")
        elif statement.startswith("drop table"):
            self.con.execute(f"drop view if exists {statement.split()[-1].replace('`', '')}")
        elif match := CREATE.fullmatch(statement):
            table, columns, location = match.groups()
            self.columns[table] = [line.strip().rstrip(",") for line in columns.strip().splitlines()]
            folder = unquote(urlparse(location).path)
            self.con.execute(f"create view raw.{table} as select * from read_parquet('{folder}/*.parquet')")
        elif statement.startswith("select count(*)"):
            (rows,) = self.con.execute(statement.replace("`", '"')).fetchone()
            return [(rows + 1 if statement.endswith(f"`{self.miscount}`") else rows,)]
        else:
            raise AssertionError(f"unexpected statement: {statement}")
        return []


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        ensure_raw_schema(con)
        con.execute(
            "insert into raw.ad_spend (date, campaign_id, campaign_name, spend_cents, currency, impressions, clicks, "
            "_load_id, _source_file, _source_row, _loaded_at) values "
            "('2026-03-01', 'c1', 'Éloïse \"q\"', 1234, 'EUR', 100, 3, 'l1', 'a.csv', 1, ?), "
            "('2026-03-02', 'c2', null, 0, 'USD', 0, 0, 'l1', 'a.csv', 2, ?)",
            [dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)] * 2,
        )
    return path


def test_every_raw_table_becomes_a_parquet_table_with_the_contract_types(
    warehouse: Path, tmp_path: Path
) -> None:
    fake = FakeSpark()
    report = spark.load_raw(warehouse, fake, parquet_dir=tmp_path / "parquet")
    assert [c.table for c in report.copies] == list(RAW_TABLES)
    assert {c.table: c.rows for c in report.copies}["ad_spend"] == 2 == report.rows
    assert "`spend_cents` bigint" in fake.columns["ad_spend"]
    assert "`_loaded_at` timestamp" in fake.columns["ad_spend"]
    assert "`campaign_name` string" in fake.columns["ad_spend"]
    assert "`date` date" in fake.columns["ad_spend"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        expected = con.execute("select * from raw.ad_spend order by date").fetchall()
    assert fake.con.execute("select * from raw.ad_spend order by date").fetchall() == expected


def test_a_second_load_replaces_the_files_of_the_first(warehouse: Path, tmp_path: Path) -> None:
    fake = FakeSpark()
    (first,) = spark.load_raw(warehouse, fake, parquet_dir=tmp_path, tables=["ad_spend"]).copies
    (second,) = spark.load_raw(warehouse, fake, parquet_dir=tmp_path, tables=["ad_spend"]).copies
    assert first.location != second.location
    assert [str(p) for p in (tmp_path / "ad_spend").iterdir()] == [second.location]


def test_a_count_that_differs_from_duckdb_fails_the_load(warehouse: Path, tmp_path: Path) -> None:
    with pytest.raises(
        LoadTargetError, match=r"raw\.ad_spend: Spark counts 3 rows in .*, DuckDB raw\.ad_spend has 2"
    ):
        spark.load_raw(warehouse, FakeSpark(miscount="ad_spend"), parquet_dir=tmp_path)


def test_unknown_tables_are_named(warehouse: Path, tmp_path: Path) -> None:
    with pytest.raises(LoadTargetError, match=r"unknown raw table\(s\) clicks; expected events, "):
        spark.load_raw(warehouse, FakeSpark(), parquet_dir=tmp_path, tables=["clicks"])
