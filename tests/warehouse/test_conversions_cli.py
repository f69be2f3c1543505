"""`convopt conversions` (listConversions) and `convopt summary` (getConversionSummary) on the demo warehouse."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.conversions import LIST_COLUMNS

pytestmark = pytest.mark.dbt
runner = CliRunner()


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def invoke_json(warehouse: Path, *args: str):
    result = runner.invoke(app, [*args, "--format", "json", "--warehouse", str(warehouse)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_default_listing_is_the_latest_conversions_with_every_seed_field(demo_run: dict) -> None:
    rows = invoke_json(demo_run["warehouse"], "conversions", "--limit", "7")
    expected = query(
        demo_run["warehouse"],
        "select id from marts.conversion_event order by conversion_time desc, id limit 7",
    )
    assert [r["id"] for r in rows] == [e[0] for e in expected]
    assert list(rows[0]) == list(LIST_COLUMNS)
    assert not {"email", "phone", "client_ip_address"} & set(rows[0])


def test_filters_combine(demo_run: dict) -> None:
    warehouse = demo_run["warehouse"]
    ((person, campaign),) = query(
        warehouse,
        """select person_id, campaign_id from marts.conversion_event where campaign_id is not null
           group by all order by count(*) desc, person_id limit 1""",
    )
    by_person = invoke_json(warehouse, "conversions", "--person", person, "--limit", "1000")
    ((count,),) = query(
        warehouse, "select count(*) from marts.conversion_event where person_id = ?", [person]
    )
    assert len(by_person) == count > 0 and {r["person_id"] for r in by_person} == {person}
    purchases = invoke_json(
        warehouse, "conversions", "--type", "purchase", "--campaign", campaign, "--limit", "1000"
    )
    ((count,),) = query(
        warehouse,
        "select count(*) from marts.conversion_event where conversion_type = 'purchase' and campaign_id = ?",
        [campaign],
    )
    assert len(purchases) == count
    assert all(r["conversion_type"] == "purchase" and r["campaign_id"] == campaign for r in purchases)
    # --until is inclusive: the whole last day counts (UTC, the demo's reporting time zone).
    in_range = invoke_json(
        warehouse, "conversions", "--since", "2026-03-05", "--until", "2026-03-06", "--limit", "100000"
    )
    ((count,),) = query(
        warehouse,
        """select count(*) from marts.conversion_event
           where conversion_time >= '2026-03-05 00:00:00+00' and conversion_time < '2026-03-07 00:00:00+00'""",
    )
    assert len(in_range) == count > 0
    days = {dt.datetime.fromisoformat(r["conversion_time"]).date() for r in in_range}
    assert days == {dt.date(2026, 3, 5), dt.date(2026, 3, 6)}


def test_table_and_csv_formats(demo_run: dict) -> None:
    table = runner.invoke(app, ["conversions", "--limit", "3", "--warehouse", str(demo_run["warehouse"])])
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[0] == "conversion_time" and lines[-1] == "(3 rows)"
    csv = runner.invoke(
        app, ["conversions", "--limit", "3", "--format", "csv", "--warehouse", str(demo_run["warehouse"])]
    )
    assert csv.output.splitlines()[0] == ",".join(LIST_COLUMNS)
    assert len(csv.output.splitlines()) == 4


def test_overall_summary_matches_the_marts(demo_run: dict) -> None:
    warehouse = demo_run["warehouse"]
    summary = invoke_json(warehouse, "summary")
    ((total, revenue, purchases),) = query(
        warehouse,
        """select count(*), sum(value_cents_reporting), count(*) filter (where conversion_type = 'purchase')
           from marts.conversion_event""",
    )
    assert (summary["total_conversions"], summary["total_revenue_cents"], summary["purchases"]) == (
        total,
        revenue,
        purchases,
    )
    ((persons, converting),) = query(
        warehouse,
        "select count(*), count(*) filter (where total_conversions > 0) from marts.person_conversion_summary",
    )
    assert (summary["persons"], summary["persons_converting"]) == (persons, converting)
    table = runner.invoke(app, ["summary", "--warehouse", str(warehouse)])
    assert any(
        line.split()[:3] == ["total_conversions", "│", str(total)] for line in table.output.splitlines()
    )


def test_person_summary_is_the_person_row(demo_run: dict) -> None:
    warehouse = demo_run["warehouse"]
    ((person, conversions, revenue),) = query(
        warehouse,
        """select person_id, total_conversions, total_revenue_cents from marts.person_conversion_summary
           order by total_conversions desc, person_id limit 1""",
    )
    summary = invoke_json(warehouse, "summary", "--person", person)
    assert (summary["person_id"], summary["total_conversions"], summary["total_revenue_cents"]) == (
        person,
        conversions,
        revenue,
    )
    missing = runner.invoke(app, ["summary", "--person", "nobody", "--warehouse", str(warehouse)])
    assert missing.exit_code == 1
    assert "person 'nobody' has no conversion and no funnel" in missing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["conversions", "--type", "refund"],
            "--type must be one of purchase, signup, video_render, subscription",
        ),
        (
            ["conversions", "--since", "2026-03-02", "--until", "2026-03-01"],
            "--since 2026-03-02 is after --until",
        ),
        (["conversions", "--since", "03/01/2026"], "--since must be a date as YYYY-MM-DD"),
        (["conversions", "--limit", "0"], "--limit must be at least 1"),
        (["conversions", "--format", "xml"], "--format must be one of table, csv, json"),
        (["summary", "--format", "yaml"], "--format must be one of table, csv, json"),
    ],
)
def test_bad_arguments_get_one_clear_line(demo_run: dict, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--warehouse", str(demo_run["warehouse"])])
    assert result.exit_code == 2
    assert message in result.output
