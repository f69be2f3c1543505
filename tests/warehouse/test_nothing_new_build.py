"""A build with nothing new costs what the new data costs: it reads no load again and rewrites no row,
and the builds before it (a relink, a late copy of an old event, two loads at one instant) still
recompute what they must, equal to a full refresh.

The identity batches of test_identity_incremental (a link that lands after the touches, then a relink),
then a batch of events: a late copy of an old event (it loses to the kept copy), two copies of a new event
in one load (the earlier row wins) and a plain page view; with it, in the same batch, a copy of that new
event in another load at the same instant, with a smaller load id: it is ranked before the other load's
copies and wins. (The ingest never gives two loads one instant; rows written by other means may share
one, and the ranking still orders them.) Then `dbt build` with nothing new landed: every table of the
intermediate and mart layers keeps its rows (load-time columns included), int_events_deduplicated's
incremental query selects no row, and the period marts touch no period. Last, `dbt build --full-refresh`
must give the same rows as the incremental builds (EXCEPT ALL both ways).
"""

from __future__ import annotations

import duckdb
import pytest
from test_adjustments_incremental import keep_then_full_refresh, load
from test_conversion_event_incremental import run_dbt
from test_identity_incremental import (
    EVENTS_2,
    IDENTITIES_2,
    IDENTITIES_3,
    PAID,
    event,
    land_first_loads,
)

from pipelines.warehouse import connect

pytestmark = pytest.mark.dbt

SELECTION = ["--exclude", "test_type:unit"]
LATEST = "2025-03-10 00:00:00+00"
EVENTS_3 = [
    # A late copy of an old event, with another campaign: the copy kept since the first batch wins.
    event(
        "a-land", "landing_page_view", "2025-03-01 09:00:00+00", None, "cookie-a", campaign_id="c9", **PAID
    ),
    # Two copies of a new event in one load: the earlier row of the file wins.
    event("h-land", "landing_page_view", "2025-03-09 09:00:00+00", "p-h", None, campaign_id="c1", **PAID),
    event("h-land", "landing_page_view", "2025-03-09 09:00:00+00", "p-h", None, campaign_id="c2", **PAID),
    event("h-view", "page_view", "2025-03-09 09:05:00+00", "p-h", None),
]
# Landed at the same instant as EVENTS_3, in the same batch, by a load whose id sorts first: ranked first.
EVENTS_TIED = [
    event(
        "h-land",
        "landing_page_view",
        "2025-03-09 09:00:00+00",
        "p-h",
        None,
        campaign_id="c1",
        browser="tied",
        **PAID,
    ),
]
SUMMARY = "marts.person_conversion_summary"
FUNNELS = "marts.conversion_funnel"
# The period marts whose incremental runs record the periods they recomputed.
PERIOD_MARTS = [
    "conversion_metrics",
    "conversion_rollup_daily",
    "conversion_rollup_weekly",
    "conversion_rollup_monthly",
]


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        f"{schema}.{name}"
        for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('intermediate', 'marts') and table_type = 'BASE TABLE' "
            "and table_catalog = current_database() order by 1, 2"
        ).fetchall()
    ]


def _differences(con: duckdb.DuckDBPyConnection, pairs: list[tuple[str, str]]) -> list[str]:
    different = []
    for table, kept in pairs:
        for left, right in ((kept, table), (table, kept)):
            extra = con.execute(f"select * from {left} except all select * from {right}").fetchall()
            if extra:
                different.append(f"{left} has {len(extra)} row(s) not in {right}: {extra[:3]}")
    return different


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("nothing_new")
    warehouse, target = root / "warehouse.duckdb", root / "target"
    land_first_loads(warehouse)
    run_dbt(["build", *SELECTION], warehouse, target)
    for loads in (
        [("identities", "load-3", "2025-03-08 00:00:00+00", IDENTITIES_2), ("events", "load-4", "2025-03-08 00:00:00+00", EVENTS_2)],
        [
            ("identities", "load-5", "2025-03-09 00:00:00+00", IDENTITIES_3),
            ("events", "load-7", LATEST, EVENTS_3),
            ("events", "load-6", LATEST, EVENTS_TIED),
        ],
    ):  # fmt: skip
        con = connect(warehouse)
        for stream, load_id, loaded_at, rows in loads:
            load(con, stream, load_id, loaded_at, rows)
        con.close()
        run_dbt(["build", *SELECTION], warehouse, target)

    # Nothing new: keep every table as it is, build again. The rows of the person summary and of the
    # funnel rows are marked first: a row the build rewrites loses the mark (its content would be the
    # same, so only the mark tells).
    con = connect(warehouse)
    tables = _tables(con)
    con.execute(f"update {SUMMARY} set reporting_currency = '~' || reporting_currency")
    con.execute(f"update {FUNNELS} set last_step_name = '~' || last_step_name")
    con.execute("create schema if not exists before_nothing_new")
    for table in tables:
        con.execute(f"create table before_nothing_new.{table.replace('.', '__')} as select * from {table}")
    con.close()
    run_dbt(["build", *SELECTION], warehouse, target)

    con = connect(warehouse)
    summary_rows_rewritten = con.execute(
        f"select count(*) from {SUMMARY} where not starts_with(reporting_currency, '~')"
    ).fetchone()[0]
    funnel_rows_rewritten, open_funnel_rows = con.execute(
        f"select count(*) filter (where not starts_with(last_step_name, '~')), count(*) filter (where is_open) "
        f"from {FUNNELS}"
    ).fetchone()
    compiled = target / "compiled" / "convopt" / "models" / "intermediate" / "int_events_deduplicated.sql"
    report_test = (
        target / "run" / "convopt" / "models" / "reports" / "rpt_attribution_by_campaign.yml"
        / "row_checks_rpt_attribution_by_campaign.sql"
    )  # fmt: skip
    result = {
        "summary_rows_rewritten": summary_rows_rewritten,
        "funnel_rows_rewritten": funnel_rows_rewritten,
        "open_funnel_rows": open_funnel_rows,
        "unchanged": _differences(
            con, [(table, f"before_nothing_new.{table.replace('.', '__')}") for table in tables]
        ),
        "report_test": " ".join(report_test.read_text().split()),
        "events_selected": con.execute(f"select count(*) from ({compiled.read_text()})").fetchone()[0],
        "touched_periods": {
            mart: con.execute(f"select count(*) from audit.{mart}_touched_keys").fetchone()[0]
            for mart in PERIOD_MARTS
        },
        "h_land": con.execute(
            "select campaign_id, browser, _load_id, _source_row from intermediate.int_events_deduplicated "
            "where event_id = 'h-land'"
        ).fetchall(),
        "a_land": con.execute(
            "select campaign_id, _load_id from intermediate.int_events_deduplicated where event_id = 'a-land'"
        ).fetchall(),
    }
    con.execute(f"update {SUMMARY} set reporting_currency = substr(reporting_currency, 2)")
    con.execute(f"update {FUNNELS} set last_step_name = substr(last_step_name, 2)")
    con.close()
    keep_then_full_refresh(warehouse, target, SELECTION, {t: t.replace(".", "__") for t in tables})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result["after_full_refresh"] = _differences(
            con, [(table, f"scratch.{table.replace('.', '__')}") for table in tables]
        )
    return result


def test_a_build_with_nothing_new_leaves_every_row_as_it_was(runs: dict) -> None:
    assert runs["unchanged"] == []


def test_a_build_with_nothing_new_recomputes_no_person_summary(runs: dict) -> None:
    # The last batch loaded events after the conversions: the summary compares each input with how far
    # it read that input, not both with the earlier of the two (which recomputed the persons of the
    # later events on every run until the next conversion load).
    assert runs["summary_rows_rewritten"] == 0


def test_a_build_with_nothing_new_recomputes_no_funnel_row(runs: dict) -> None:
    # is_open compares a row's window with the end of the data, which nothing new leaves where it was:
    # the open rows are not recomputed (they were on every run before), nor any other.
    assert runs["open_funnel_rows"] > 0
    assert runs["funnel_rows_rewritten"] == 0


def test_a_build_with_nothing_new_selects_no_event_to_rewrite(runs: dict) -> None:
    # Only loads after the latest one kept are read: none.
    assert runs["events_selected"] == 0


def test_a_build_with_nothing_new_touches_no_period(runs: dict) -> None:
    assert runs["touched_periods"] == dict.fromkeys(PERIOD_MARTS, 0)


def test_a_build_with_nothing_new_does_not_sum_the_attribution_report(runs: dict) -> None:
    # The report view's tests read the periods of attribution rows rewritten since the last tested build:
    # none, written as a constant false, so the engine never computes the view.
    assert "where 1 = 0" in runs["report_test"]


def test_a_late_copy_loses_and_a_copy_at_the_same_instant_wins_by_load(runs: dict) -> None:
    assert runs["a_land"] == [("c1", "load-1")]
    assert runs["h_land"] == [("c1", "tied", "load-6", 1)]


def test_incremental_builds_equal_a_full_refresh(runs: dict) -> None:
    assert runs["after_full_refresh"] == []
