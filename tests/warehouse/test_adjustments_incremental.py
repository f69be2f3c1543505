"""Refunds, chargebacks and restatements: hand-worked net values, equal on an incremental run and a full refresh.

Raw conversions and adjustments are loaded in two batches with `dbt build` after each. The second batch
refunds a conversion in full, restates one that was partly refunded before, corrects an adjustment by
sending its id again, lands a conversion that an adjustment of the first batch was waiting for, and
refunds a conversion that never landed. Every model the adjustments reach (conversion_event,
conversion_attribution, conversion_metrics, the three rollups) must hold the same rows after the two
builds as after `dbt build --full-refresh` (EXCEPT both ways).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from test_conversion_event_incremental import run_dbt

from pipelines.contract import column_names
from pipelines.warehouse import connect, ensure_raw_schema

pytestmark = pytest.mark.dbt

SELECTION = [
    "--select",
    "+conversion_metrics +conversion_rollup_weekly +conversion_rollup_monthly +rpt_unmatched_adjustments",
    "--exclude",
    "test_type:unit",
]
MODELS = (
    "conversion_event",
    "conversion_attribution",
    "conversion_metrics",
    "conversion_rollup_daily",
    "conversion_rollup_weekly",
    "conversion_rollup_monthly",
)


def load(con: duckdb.DuckDBPyConnection, stream: str, load_id: str, loaded_at: str, rows: list[dict]) -> None:
    """Append rows to raw.<stream> as the loader would (with lineage columns)."""
    names = column_names(stream)
    lineage = ["_load_id", "_source_file", "_source_row", "_loaded_at"]
    placeholders = ", ".join("?" * (len(names) + len(lineage)))
    for number, row in enumerate(rows, start=1):
        values = [row.get(name) for name in names] + [load_id, f"{load_id}-{stream}.jsonl", number, loaded_at]
        con.execute(f"insert into raw.{stream} ({', '.join(names + lineage)}) values ({placeholders})", values)


def purchase(event_id: str, time: str, value_cents: int, currency: str = "USD", **fields: object) -> dict:
    return {
        "event_id": event_id,
        "person_id": f"person-{event_id}",
        "conversion_type": "purchase",
        "conversion_source": "capi",
        "conversion_time": time,
        "value_cents": value_cents,
        "currency": currency,
        "campaign_id": "c1",
        **fields,
    }


def adjustment(adjustment_id: str, event_id: str, kind: str, amount: int, time: str, currency: str = "USD") -> dict:
    return {
        "adjustment_id": adjustment_id,
        "conversion_event_id": event_id,
        "conversion_type": "purchase",
        "adjustment_type": kind,
        "amount_cents": amount,
        "currency": currency,
        "adjusted_at": time,
    }


CONVERSIONS_1 = [
    purchase("full", "2025-03-01 10:00:00+00", 10000),
    purchase("restated", "2025-03-01 11:00:00+00", 5000),
    purchase("untouched", "2025-03-02 09:00:00+00", 800),
    purchase("euro", "2025-03-02 10:00:00+00", 2000, "EUR"),
]
ADJUSTMENTS_1 = [
    adjustment("r-restated-1", "restated", "refund", 1000, "2025-03-02 09:00:00+00"),
    adjustment("r-late", "late", "refund", 300, "2025-03-04 09:00:00+00"),
    adjustment("r-euro", "euro", "chargeback", 2000, "2025-03-05 09:00:00+00", "EUR"),
]
CONVERSIONS_2 = [purchase("late", "2025-03-03 10:00:00+00", 1200)]
ADJUSTMENTS_2 = [
    adjustment("r-full", "full", "refund", 10000, "2025-03-06 09:00:00+00"),
    # The first refund of `restated`, corrected (the latest load of an id wins), then a restatement.
    adjustment("r-restated-1", "restated", "refund", 700, "2025-03-02 09:00:00+00"),
    adjustment("s-restated", "restated", "restatement", 3000, "2025-03-03 09:00:00+00"),
    adjustment("r-nowhere", "never-landed", "refund", 500, "2025-03-06 09:00:00+00"),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adjustments")
    warehouse, target = root / "warehouse.duckdb", root / "target"
    con = connect(warehouse)
    ensure_raw_schema(con)
    load(con, "conversions", "load-1", "2025-03-07 00:00:00+00", CONVERSIONS_1)
    load(con, "adjustments", "load-2", "2025-03-07 00:00:00+00", ADJUSTMENTS_1)
    con.close()
    run_dbt(["build", *SELECTION], warehouse, target)

    con = connect(warehouse)
    load(con, "conversions", "load-3", "2025-03-08 00:00:00+00", CONVERSIONS_2)
    load(con, "adjustments", "load-4", "2025-03-08 00:00:00+00", ADJUSTMENTS_2)
    con.close()
    run_dbt(["build", *SELECTION], warehouse, target)
    keep_then_full_refresh(warehouse, target, SELECTION, {f"marts.{m}": m for m in MODELS})
    return warehouse


def keep_then_full_refresh(warehouse: Path, target: Path, selection: list[str], tables: dict[str, str]) -> None:
    """Copy each table the incremental runs built into schema `scratch` (under the name it maps to), then
    rebuild the selection with --full-refresh, so the two can be compared."""
    con = connect(warehouse)
    con.execute("create schema if not exists scratch")
    for table, copy in tables.items():
        con.execute(f"create table scratch.{copy} as select * from {table}")
    con.close()
    run_dbt(["build", "--full-refresh", *selection], warehouse, target)


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize("model", MODELS)
def test_incremental_equals_full_refresh(warehouse: Path, model: str) -> None:
    for left, right in ((f"scratch.{model}", f"marts.{model}"), (f"marts.{model}", f"scratch.{model}")):
        assert query(warehouse, f"select * from {left} except all select * from {right}") == [], (left, right)
    assert query(warehouse, f"select count(*) from scratch.{model}") == query(
        warehouse, f"select count(*) from marts.{model}"
    )


def test_net_values_follow_the_adjustment_rules(warehouse: Path) -> None:
    rows = query(
        warehouse,
        """
        select event_id, value_cents_reporting, net_value_cents_reporting, refunded_value_cents_reporting,
            is_refunded, is_charged_back, is_restated, adjustments_count
        from scratch.conversion_event order by event_id
        """,
    )
    assert rows == [
        # EUR 2000 charged back in full: 0 whatever the EUR rate
        ("euro", rows[0][1], 0, rows[0][1], True, True, False, 1),
        ("full", 10000, 0, 10000, True, False, False, 1),
        # landed after its refund: the waiting refund applies
        ("late", 1200, 900, 300, True, False, False, 1),
        # corrected refund (700) before the restatement is in the restated 3000
        ("restated", 5000, 3000, 0, True, False, True, 2),
        ("untouched", 800, 800, 0, False, False, False, 0),
    ]


def test_rollups_and_metrics_carry_net_revenue(warehouse: Path) -> None:
    ((gross, net, refunded, conversions),) = query(
        warehouse,
        "select sum(revenue_cents), sum(net_revenue_cents), sum(refunded_conversions), sum(conversions) "
        "from scratch.conversion_rollup_monthly",
    )
    ((euro_usd,),) = query(
        warehouse, "select value_cents_reporting from marts.conversion_event where event_id = 'euro'"
    )
    assert (gross, net, refunded, conversions) == (10000 + 5000 + 800 + 1200 + euro_usd, 3000 + 800 + 900, 4, 5)
    ((total, total_net, refund_rate, roas_is_null),) = query(
        warehouse,
        """
        select total_value_cents, total_net_value_cents, refund_rate, net_roas is null
        from scratch.conversion_metrics
        where period_type = 'monthly' and attribution_model = 'reported' and campaign_id = 'c1'
        """,
    )
    assert (total, total_net, float(refund_rate), roas_is_null) == (gross, net, 80.0, True)


def test_an_adjustment_without_its_conversion_is_listed(warehouse: Path) -> None:
    rows = query(warehouse, "select adjustment_id, reason from reports.rpt_unmatched_adjustments")
    assert rows == [("r-nowhere", "no purchase conversion with event_id never-landed has landed")]
