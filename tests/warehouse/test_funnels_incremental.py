"""Funnel models built in four incremental batches equal a full refresh of the same data.

The second batch moves the end of the data a month on and brings late events of old periods; the third
and fourth are a handful of late events each, and the fourth checks that an incremental run rewrites
only some rows of each funnel mart. Each test works on a copy of the dbt project in a temporary folder (so it can swap the
funnel definitions seed) and on its own DuckDB files. Raw rows are inserted directly with SQL: these
tests do not depend on the generator or the ingest job.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.warehouse import ensure_raw_schema

pytestmark = pytest.mark.dbt

PROJECT_DIR = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"

# Every model the funnel work owns that must not depend on how the data arrived.
FUNNEL_RELATIONS = (
    "intermediate.int_events_deduplicated",
    "intermediate.int_funnel_attempt_matches",
    "intermediate.int_funnel_attempt_steps",
    "intermediate.int_funnel_steps_matched",
    "marts.conversion_funnel",
    "marts.conversion_funnel_attempt",
    "marts.conversion_funnel_step",
    "marts.funnel_stats",
    "marts.funnel_stats_breakdown",
    "marts.funnel_time_to_convert",
    "marts.person_conversion_summary",
)
FUNNEL_MARTS = (
    "+conversion_funnel +conversion_funnel_attempt +conversion_funnel_step +funnel_stats +funnel_time_to_convert"
    " +person_conversion_summary +funnel_stats_breakdown"
)

# Every incremental funnel model and a text column of each that every run writes the same way and no
# incremental logic reads: a run that rewrote a row leaves it as computed, one that kept it leaves what the
# test wrote there before. (funnel_time_to_convert's step_name is null on its time_to_convert rows: marked
# as '~' alone.)
MARKED_COLUMNS = {
    "intermediate.int_funnel_attempt_matches": "step_name",
    "intermediate.int_funnel_attempt_steps": "step_name",
    "intermediate.int_funnel_steps_matched": "step_name",
    "marts.conversion_funnel": "last_step_name",
    "marts.conversion_funnel_attempt": "last_step_name",
    "marts.conversion_funnel_step": "step_name",
    "marts.funnel_stats": "step_name",
    "marts.funnel_stats_breakdown": "step_name",
    "marts.funnel_time_to_convert": "step_name",
    "marts.person_conversion_summary": "reporting_currency",
}

# Added to the shipped funnels in the module's builds, so every order type is built incrementally. Columns:
# funnel_name, step_number, step_name, event_name, step_filter, breakdown_attribution, conversion_window_hours,
# conversion_window_interval, conversion_window_unit, order_type. The strict funnel makes the matching read
# every event; the last funnel filters its steps on a properties key and on conversion columns.
STRICT_AND_UNORDERED_FUNNELS = (
    "cart_checkout_strict,1,Add to cart,add_to_cart,,,,2,day,strict\n"
    "cart_checkout_strict,2,Checkout started,checkout_started,,,,2,day,strict\n"
    "cart_checkout_strict,3,Purchase,purchase,,,,2,day,strict\n"
    "shopping_any_order,1,Landing page view,Landing_Page_View,,,,36,hour,unordered\n"
    "shopping_any_order,2,Add to cart,add_to_cart,,,,36,hour,unordered\n"
    "shopping_any_order,3,Purchase,purchase,,,,36,hour,unordered\n"
    "pricing_then_big_purchase,1,Pricing page,page_view,properties.path = /pricing,last_touch,,5,day,ordered\n"
    "pricing_then_big_purchase,2,Big purchase,purchase,value_cents >= 5000 and utm_source = facebook,,,5,day,ordered\n"
)

# Exclusion steps for an ordered and the unordered funnel above: a page view (a noise event of the
# synthetic data) between landing and checkout, and between any steps of the unordered funnel; a view of the
# home page between the pricing page and the purchase.
EXCLUSIONS = (
    "funnel_name,event_name,from_step,to_step,exclusion_filter\n"
    "ad_click_to_purchase,page_view,2,4,\n"
    "shopping_any_order,page_view,1,3,\n"
    "pricing_then_big_purchase,page_view,1,2,properties.path = /home\n"
)

CUTOFF = dt.datetime(2024, 3, 20, tzinfo=dt.UTC)
FIRST_LOAD_AT = dt.datetime(2024, 3, 20, 1, tzinfo=dt.UTC)
SECOND_LOAD_AT = dt.datetime(2024, 4, 15, 1, tzinfo=dt.UTC)
THIRD_LOAD_AT = dt.datetime(2024, 4, 16, 1, tzinfo=dt.UTC)
FOURTH_LOAD_AT = dt.datetime(2024, 4, 17, 1, tzinfo=dt.UTC)


# --- synthetic raw data -------------------------------------------------------------------------------


@dataclass
class RawData:
    """Raw rows of the events and conversions streams, each tagged with the batch that lands it."""

    events: list[dict] = field(default_factory=list)
    conversions: list[dict] = field(default_factory=list)


def synthetic_raw_data(persons: int, seed: int) -> RawData:
    """Journeys through the funnels of the default seed, with the mess real data has.

    Repeated and out-of-order steps, noise events, journeys too slow for the window, duplicate event
    copies, pixel + server copies of conversions (the server copy sometimes later and carrying the
    campaign), and late-arriving old events. Batch 1 holds what happened before CUTOFF; batch 2 the rest,
    plus late data and second copies of batch-1 records; batches 3 and 4 a few more late events of old
    periods and a few conversions each.
    """
    rng = random.Random(seed)
    data = RawData()
    campaigns = ["cmp_spring", "cmp_brand", "cmp_retarget", None]

    def landing_batch(at: dt.datetime) -> int:
        if at >= CUTOFF:
            return 2
        draw = rng.random()
        return 1 if draw > 0.04 else 3 if draw < 0.002 else 4 if draw < 0.004 else 2

    def add_event(person: str, name: str, at: dt.datetime, campaign: str | None) -> dict:
        row = {
            "event_id": f"ev_{len(data.events):07d}",
            "person_id": person,
            "event_name": name,
            "event_time": at,
            "source": rng.choice(["pixel", "capi", "app"]),
            "campaign_id": campaign,
            "ad_set_id": f"{campaign}_set" if campaign else None,
            "ad_id": f"{campaign}_ad" if campaign else None,
            "utm_source": "facebook" if campaign else None,
            "utm_medium": "paid_social" if campaign else None,
            "utm_campaign": campaign,
            # Page views carry the page's path (one in three the pricing page); no random draw, so the
            # journeys are those of the data without paths.
            "properties": (
                json.dumps({"path": "/pricing" if len(data.events) % 3 == 0 else "/home"})
                if name == "page_view"
                else None
            ),
            "batch": landing_batch(at),
        }
        data.events.append(row)
        if rng.random() < 0.05:  # the same event landed again, later
            data.events.append({**row, "source": "capi", "campaign_id": "cmp_copy", "batch": 2})
        return row

    def add_conversion(person: str, kind: str, at: dt.datetime, campaign: str | None, value: int) -> None:
        event_id = f"cv_{len(data.conversions):07d}"
        first_batch = 1 if at < CUTOFF else 2
        pixel = {
            "event_id": event_id,
            "person_id": person,
            "conversion_type": kind,
            "conversion_source": "pixel",
            "value_cents": value,
            "currency": "USD",
            "conversion_time": at,
            "campaign_id": campaign if rng.random() < 0.7 else None,
            "utm_source": "facebook" if campaign else None,
            "batch": first_batch,
        }
        data.conversions.append(pixel)
        if rng.random() < 0.5:  # the server copy of the same conversion, a little later
            server = {
                **pixel,
                "conversion_source": "capi",
                "conversion_time": at + dt.timedelta(seconds=rng.randint(0, 90)),
                "campaign_id": campaign,
                "batch": max(first_batch, rng.choice([1, 2])),
            }
            data.conversions.append(server)

    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    for number in range(persons):
        person = f"person_{number:05d}"
        campaign = rng.choice(campaigns)
        t = start + dt.timedelta(seconds=rng.randint(0, 40 * 86400))
        if campaign and rng.random() < 0.8:
            add_event(person, "ad_click", t, campaign)
            t += dt.timedelta(seconds=rng.randint(1, 120))
        if rng.random() < 0.9:
            add_event(person, "landing_page_view", t, campaign)
        for _ in range(rng.randint(0, 3)):  # noise, anywhere around the journey
            add_event(person, "page_view", t + dt.timedelta(seconds=rng.randint(-3600, 5 * 86400)), None)
        if rng.random() < 0.3:  # a second visit that can start a better attempt
            add_event(person, "landing_page_view", t + dt.timedelta(hours=rng.randint(1, 200)), campaign)
        if rng.random() < 0.1:  # a step before the start
            add_event(person, "add_to_cart", t - dt.timedelta(minutes=rng.randint(1, 600)), None)
        if rng.random() > 0.55:
            continue
        t += dt.timedelta(seconds=rng.randint(30, 30 * 3600))
        add_conversion(person, "signup", t, campaign, 0)
        signed_up = t
        if rng.random() < 0.55:
            t += dt.timedelta(seconds=rng.randint(60, 60 * 3600))
            add_event(person, "add_to_cart", t, None)
            if rng.random() < 0.3:
                add_event(person, "add_to_cart", t + dt.timedelta(minutes=5), None)
            if rng.random() < 0.7:
                t += dt.timedelta(seconds=rng.choice([0, rng.randint(1, 48 * 3600)]))
                add_event(person, "checkout_started", t, None)
                if rng.random() < 0.8:
                    t += dt.timedelta(seconds=rng.randint(0, 7200))
                    add_conversion(person, "purchase", t, campaign, rng.randint(500, 20000))
                    if rng.random() < 0.25:
                        later = t + dt.timedelta(days=rng.randint(1, 20))
                        add_conversion(person, "purchase", later, None, rng.randint(500, 20000))
        if rng.random() < 0.5:
            r = signed_up + dt.timedelta(seconds=rng.randint(60, 90 * 3600))
            add_event(person, "video_render_started", r, None)
            if rng.random() < 0.85:
                r += dt.timedelta(seconds=rng.randint(30, 1800))
                add_conversion(person, "video_render", r, None, 0)
                if rng.random() < 0.3:
                    add_conversion(
                        person, "subscription", r + dt.timedelta(days=rng.randint(0, 40)), None, 1999
                    )
    # A few conversions of the second batch arrive later, in the third and fourth.
    late_conversions = [row for row in data.conversions if row["batch"] == 2][::100]
    for number, row in enumerate(late_conversions):
        row["batch"] = 3 + number % 2
    return data


def land(warehouse: Path, data: RawData, batches: tuple[int, ...]) -> None:
    """Append the rows of the given batches to raw.events / raw.conversions, one load per stream and batch."""
    load_times = {1: FIRST_LOAD_AT, 2: SECOND_LOAD_AT, 3: THIRD_LOAD_AT, 4: FOURTH_LOAD_AT}
    con = duckdb.connect(str(warehouse))
    try:
        ensure_raw_schema(con)
        for batch in batches:
            for stream, rows in (("events", data.events), ("conversions", data.conversions)):
                selected = [
                    {
                        **{name: value for name, value in row.items() if name != "batch"},
                        "_load_id": f"load_{stream}_{batch}",
                        "_source_file": f"{stream}_{batch}.jsonl",
                        "_source_row": index + 1,
                        "_loaded_at": load_times[batch],
                    }
                    for index, row in enumerate(r for r in rows if r["batch"] == batch)
                ]
                if not selected:
                    continue
                landing_file = pa.Table.from_pylist(selected)
                con.register("landing_file", landing_file)
                names = ", ".join(landing_file.column_names)
                con.execute(f"insert into raw.{stream} ({names}) select {names} from landing_file")
                con.unregister("landing_file")
    finally:
        con.close()


# --- running dbt on a copy of the project -------------------------------------------------------------


@dataclass
class Project:
    """A copy of the dbt project (with the strict and unordered funnels added) and the environment to
    build it into one warehouse file."""

    root: Path

    @classmethod
    def copy_of_repo(cls, destination: Path) -> Project:
        for name in ("dbt_project.yml", "profiles.yml"):
            shutil.copy2(PROJECT_DIR / name, destination / name)
        for folder in ("models", "macros", "seeds", "data-tests"):
            shutil.copytree(PROJECT_DIR / folder, destination / folder)
        project = cls(destination)
        project.add_funnels(STRICT_AND_UNORDERED_FUNNELS)
        (destination / "seeds" / "funnel_exclusions.csv").write_text(EXCLUSIONS)
        return project

    def build(self, warehouse: Path, options: tuple[str, ...] = ()) -> None:
        """Seed, then run the funnel marts and everything upstream of them."""
        self.dbt(warehouse, ["seed", *options])
        self.dbt(warehouse, ["run", "--select", *FUNNEL_MARTS.split(), *options])

    def dbt(self, warehouse: Path, command: list[str]) -> None:
        env = {
            **os.environ,
            "DBT_PROFILES_DIR": str(self.root),
            "CONVOPT_WAREHOUSE": str(warehouse),
            "DBT_TARGET_PATH": str(warehouse.parent / "target"),
            "DBT_LOG_PATH": str(warehouse.parent / "logs"),
        }
        env.pop("CONVOPT_TARGET", None)
        result = subprocess.run(
            [str(DBT), *command, "--project-dir", str(self.root)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]

    def add_funnels(self, csv_rows: str) -> None:
        """Append funnels (rows in the shipped file's columns) to the project's funnel definitions."""
        with (self.root / "seeds" / "funnel_definitions.csv").open("a") as file:
            file.write(csv_rows)

    def write_funnels(
        self, csv_text: str, exclusions: str = "funnel_name,event_name,from_step,to_step\n"
    ) -> None:
        (self.root / "seeds" / "funnel_definitions.csv").write_text(csv_text)
        (self.root / "seeds" / "funnel_exclusions.csv").write_text(exclusions)


def differences(incremental: Path, full_refresh: Path) -> dict[str, tuple[int, int]]:
    """Rows only in the incremental build and rows only in the full refresh, per relation (EXCEPT ALL)."""
    con = duckdb.connect(str(incremental), read_only=True)
    try:
        con.execute(f"attach '{full_refresh}' as full_refresh (read_only)")
        found = {}
        for relation in FUNNEL_RELATIONS:
            catalog = incremental.stem
            only_incremental, only_full = con.execute(
                f"""
                select
                    (select count(*) from (
                        select * from "{catalog}".{relation} except all select * from full_refresh.{relation}
                    )),
                    (select count(*) from (
                        select * from full_refresh.{relation} except all select * from "{catalog}".{relation}
                    ))
                """
            ).fetchone()
            if only_incremental or only_full:
                found[relation] = (only_incremental, only_full)
        return found
    finally:
        con.close()


# The marts that record their incremental state (audit.incremental_state); the matching models select
# persons by their own person_loaded_at instead.
STATEFUL_MARTS = (
    "marts.conversion_funnel",
    "marts.conversion_funnel_step",
    "marts.funnel_stats",
    "marts.funnel_stats_breakdown",
    "marts.funnel_time_to_convert",
    "marts.person_conversion_summary",
)


def mark_every_row(warehouse: Path, relations: tuple[str, ...] = tuple(MARKED_COLUMNS)) -> None:
    """Prefix MARKED_COLUMNS with '~' in every row, so rows an incremental run rewrites stand out."""
    con = duckdb.connect(str(warehouse))
    try:
        for relation in relations:
            column = MARKED_COLUMNS[relation]
            con.execute(f"update {relation} set {column} = '~' || coalesce({column}, '')")
    finally:
        con.close()


def rewritten_and_total_rows(warehouse: Path) -> dict[str, tuple[int, int]]:
    """Per marked relation: rows without the mark (written by the last run) and all rows; then unmark."""
    con = duckdb.connect(str(warehouse))
    try:
        found = {}
        for relation, column in MARKED_COLUMNS.items():
            found[relation] = con.execute(
                f"select count(*) filter (where not starts_with({column}, '~')), count(*) from {relation}"
            ).fetchone()
            con.execute(
                f"update {relation} set {column} = nullif(substr({column}, 2), '')"
                f" where starts_with({column}, '~')"
            )
        return found
    finally:
        con.close()


def copy_raw_tables(source: Path, destination: Path) -> None:
    """A new warehouse file holding only the raw tables of ``source``."""
    con = duckdb.connect(str(destination))
    try:
        con.execute(f"attach '{source}' as built (read_only)")
        con.execute("create schema raw")
        for table in ("events", "conversions", "ad_spend", "load_log", "rejected_rows", "meta_delivery_log"):
            con.execute(f"create table raw.{table} as select * from built.raw.{table}")
    finally:
        con.close()


def count(warehouse: Path, relation: str, condition: str = "true") -> int:
    """Rows of ``relation`` (schema.table) that satisfy ``condition``."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"select count(*) from {relation} where {condition}").fetchone()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def raw_data() -> RawData:
    return synthetic_raw_data(persons=600, seed=11)


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory, raw_data: RawData) -> dict:
    """The same data built twice: in four incremental batches, and in one full build.

    Before the fourth run every row of the incremental marts is marked, so the rows that run rewrote can
    be counted.
    """
    root = tmp_path_factory.mktemp("funnels")
    project = Project.copy_of_repo(root)
    (root / "incremental").mkdir()
    (root / "full").mkdir()
    incremental, full = root / "incremental" / "incremental.duckdb", root / "full" / "full.duckdb"

    land(incremental, raw_data, (1,))
    project.build(incremental)
    open_after_first_batch = count(incremental, "marts.conversion_funnel", "is_open")
    land(incremental, raw_data, (2,))
    project.build(incremental)
    land(incremental, raw_data, (3,))
    project.build(incremental)
    mark_every_row(incremental)
    land(incremental, raw_data, (4,))
    project.build(incremental)
    persons = ", ".join(f"'{person}'" for person in persons_with_late_funnel_events(raw_data))
    late_rows_kept = count(
        incremental,
        "marts.conversion_funnel",
        f"person_id in ({persons}) and starts_with(last_step_name, '~')",
    )
    rewritten_by_fourth_batch = rewritten_and_total_rows(incremental)

    land(full, raw_data, (1, 2, 3, 4))
    project.build(full)
    return {
        "root": root,
        "incremental": incremental,
        "full": full,
        "open_after_first_batch": open_after_first_batch,
        "rewritten_by_fourth_batch": rewritten_by_fourth_batch,
        "late_rows_kept": late_rows_kept,
    }


def persons_with_late_funnel_events(raw_data: RawData) -> set[str]:
    """Persons with an event of the fourth batch that a funnel step of the default seed matches."""
    step_events = {"ad_click", "landing_page_view", "add_to_cart", "checkout_started", "video_render_started"}
    return {
        row["person_id"] for row in raw_data.events if row["batch"] == 4 and row["event_name"] in step_events
    }


# --- a reference implementation of the matching rules, written for clarity, not speed -----------------


def reference_matches(events: list[tuple], steps: list[tuple]) -> set[tuple]:
    """(person, funnel, step, record id, completed steps, candidate starts) of every winning step.

    ``events``: (person_id, event_source, source_record_id, event_name, event_time);
    ``steps``: (funnel_name, step_number, event_name, conversion_window_hours). Follows the rules of
    the docs block funnel_semantics literally: every step-1 event starts an attempt, each later step is
    the earliest qualifying event, the winner reaches furthest, then first, then started latest.
    """
    by_person: dict[str, list[tuple]] = {}
    for person, source, record, name, at in events:
        by_person.setdefault(person, []).append((at, source, record, name))
    funnels: dict[str, list[tuple[str, float]]] = {}
    for funnel, _number, name, hours in sorted(steps):
        funnels.setdefault(funnel, []).append((name, float(hours)))

    found = set()
    for person, person_events in by_person.items():
        ordered = sorted(person_events)  # event order: time, source, id
        for funnel, funnel_steps in funnels.items():
            window = dt.timedelta(hours=funnel_steps[0][1])
            attempts = []
            for start_index, (start_at, _source, _record, name) in enumerate(ordered):
                if name != funnel_steps[0][0]:
                    continue
                counted = [start_index]
                for k in range(1, len(funnel_steps)):
                    repeated = funnel_steps[k][0] in [step[0] for step in funnel_steps[:k]]
                    previous_at = ordered[counted[-1]][0]
                    candidates = [
                        index
                        for index, (at, _s, _r, event_name) in enumerate(ordered)
                        if event_name == funnel_steps[k][0]
                        and at <= start_at + window
                        and (index > max(counted) if repeated else at >= previous_at)
                    ]
                    if not candidates:
                        break
                    counted.append(min(candidates))
                attempts.append(counted)
            if not attempts:
                continue
            best = min(
                attempts,
                key=lambda c: (-len(c), ordered[c[-1]][0], -ordered[c[0]][0].timestamp(), -c[0]),
            )
            for number, index in enumerate(best, start=1):
                found.add((person, funnel, number, ordered[index][2], len(best), len(attempts)))
    return found


# --- tests --------------------------------------------------------------------------------------------


def test_four_batches_equal_a_full_refresh(batches: dict) -> None:
    assert differences(batches["incremental"], batches["full"]) == {}


def test_a_small_late_batch_rewrites_only_some_rows(batches: dict, raw_data: RawData) -> None:
    # The fourth batch is a few late events of old periods: each incremental funnel model (the matching,
    # every attempt, the chosen attempts, the marts and the aggregates by period) rewrites the rows of the
    # persons (or periods) they and the third batch touch, and keeps most rows as they were. A table
    # rebuilt whole would rewrite every row.
    assert set(batches["rewritten_by_fourth_batch"]) == set(MARKED_COLUMNS)
    assert 0 < len(persons_with_late_funnel_events(raw_data)) < 20
    for relation, (rewritten, total) in batches["rewritten_by_fourth_batch"].items():
        assert 0 < rewritten < total / 2, (relation, rewritten, total)
    # Every funnel row of a person with a late funnel event was rewritten.
    assert batches["late_rows_kept"] == 0


def test_second_batch_changed_the_funnels(batches: dict) -> None:
    # Guards the comparison above against a vacuous pass: batch 2 must advance or add funnel rows,
    # and some rows must be open at the end of batch 1.
    full = batches["full"]
    assert count(full, "marts.conversion_funnel", "created_at > timestamptz '2024-04-01'") > 0
    assert count(full, "marts.conversion_funnel", "updated_at > created_at") > 0
    assert count(full, "marts.conversion_funnel", "is_converted") > 0
    assert (
        count(
            full, "marts.conversion_funnel", "funnel_name = 'cart_checkout_strict' and completed_steps >= 2"
        )
        > 0
    )
    assert count(full, "marts.conversion_funnel", "funnel_name = 'shopping_any_order' and is_converted") > 0
    assert count(full, "marts.conversion_funnel", "funnel_name = 'ad_click_to_purchase' and is_excluded") > 0
    assert count(full, "marts.conversion_funnel", "funnel_name = 'shopping_any_order' and is_excluded") > 0
    # Funnels open after batch 1 (later events could still advance them) were recomputed and closed.
    assert batches["open_after_first_batch"] > 0
    assert count(batches["incremental"], "marts.conversion_funnel", "is_open") == count(
        full, "marts.conversion_funnel", "is_open"
    )


def test_data_tests_hold_on_the_incremental_build(batches: dict) -> None:
    # The generic and singular data tests of the funnel models (unit tests run in `dbt build`).
    Project(batches["root"]).dbt(
        batches["incremental"],
        [
            "test",
            "--select",
            "funnel_definitions",
            *FUNNEL_MARTS.replace("+", "").split(),
            "int_events_deduplicated",
            "int_funnel_events",
            "int_funnel_steps_matched",
            "--exclude-resource-type",
            "unit_test",
        ],
    )


def test_incremental_run_reads_only_new_loads(batches: dict, raw_data: RawData) -> None:
    # Duplicate copies that arrived in batch 2 never replace the batch-1 copy (earliest load wins).
    incremental = batches["incremental"]
    assert count(incremental, "intermediate.int_events_deduplicated", "campaign_id = 'cmp_copy'") == 0
    distinct_ids = len({row["event_id"] for row in raw_data.events})
    assert count(incremental, "intermediate.int_events_deduplicated") == distinct_ids


def test_a_table_without_a_recorded_state_is_recomputed_whole(batches: dict, tmp_path: Path) -> None:
    # As after an upgrade from the table materialization: the marts exist, nothing says how far they
    # are up to date. Their rows are marked (stale), so only a run that recomputes every row passes.
    project = Project.copy_of_repo(tmp_path)
    (tmp_path / "incremental").mkdir()
    incremental = tmp_path / "incremental" / "incremental.duckdb"
    shutil.copy2(batches["incremental"], incremental)
    mark_every_row(incremental, STATEFUL_MARTS)
    con = duckdb.connect(str(incremental))
    try:
        con.execute("delete from audit.incremental_state")
    finally:
        con.close()
    project.build(incremental)
    assert differences(incremental, batches["full"]) == {}


def test_changing_the_reporting_timezone_needs_no_full_refresh(batches: dict, tmp_path: Path) -> None:
    # funnel_stats records the time zone of its periods and recomputes every row when it changes. On a
    # copy: the seed test below rebuilds the module's incremental warehouse with other funnels.
    project = Project.copy_of_repo(tmp_path)
    options = ("--vars", '{"reporting_timezone": "America/Los_Angeles"}')
    (tmp_path / "incremental").mkdir()
    (tmp_path / "fresh").mkdir()
    incremental, fresh = tmp_path / "incremental" / "incremental.duckdb", tmp_path / "fresh" / "fresh.duckdb"
    shutil.copy2(batches["incremental"], incremental)
    project.build(incremental, options)
    copy_raw_tables(incremental, fresh)
    project.build(fresh, options)

    assert differences(incremental, fresh) == {}
    con = duckdb.connect(str(incremental), read_only=True)
    try:
        con.execute(f"attach '{batches['incremental']}' as utc (read_only)")
        (moved,) = con.execute(
            "select count(*) from (select * from marts.funnel_stats except all select * from utc.marts.funnel_stats)"
        ).fetchone()
    finally:
        con.close()
    assert moved > 0  # the periods did move


def test_replacing_the_funnel_seed_needs_no_full_refresh(batches: dict, tmp_path: Path) -> None:
    # Edit one funnel (new window), drop the others, add one whose steps share an event name and one
    # with an exclusion step, and rebuild the incremental warehouse without --full-refresh: it must
    # equal a fresh build.
    project = Project.copy_of_repo(tmp_path)
    project.write_funnels(
        "funnel_name,step_number,step_name,event_name,conversion_window_hours\n"
        "signup_to_video_render,1,Sign up,signup,24\n"
        "signup_to_video_render,2,Video render started,video_render_started,24\n"
        "signup_to_video_render,3,Video rendered,video_render,24\n"
        "browse_twice_then_buy,1,Page view,page_view,120\n"
        "browse_twice_then_buy,2,Another page view,page_view,120\n"
        "browse_twice_then_buy,3,Purchase,purchase,120\n"
        "cart_without_browsing,1,Add to cart,add_to_cart,48\n"
        "cart_without_browsing,2,Purchase,purchase,48\n",
        "funnel_name,event_name,from_step,to_step\ncart_without_browsing,page_view,1,2\n",
    )
    # A copy: the module's other tests read the shared incremental warehouse with the repository's funnels.
    (tmp_path / "incremental").mkdir()
    incremental = tmp_path / "incremental" / "incremental.duckdb"
    shutil.copy2(batches["incremental"], incremental)
    project.build(incremental)

    (tmp_path / "fresh").mkdir()
    fresh = tmp_path / "fresh" / "fresh.duckdb"
    copy_raw_tables(incremental, fresh)
    project.build(fresh)

    assert differences(incremental, fresh) == {}
    assert_matches_reference(incremental)  # the new funnel repeats an event name
    assert count(incremental, "marts.conversion_funnel", "funnel_name = 'signup_to_video_render'") > 0
    assert count(incremental, "marts.conversion_funnel", "funnel_name = 'browse_twice_then_buy'") > 0
    assert (
        count(
            incremental,
            "marts.funnel_stats",
            "funnel_name not in ('signup_to_video_render', 'browse_twice_then_buy', 'cart_without_browsing')",
        )
        == 0
    )


def assert_matches_reference(warehouse: Path) -> None:
    """int_funnel_steps_matched of ``warehouse`` equals reference_matches on its own inputs, for the ordered
    funnels without exclusion steps (the rules the reference implements)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        events = con.execute(
            "select person_id, event_source, source_record_id, event_name, event_time"
            " from intermediate.int_funnel_events"
        ).fetchall()
        steps = con.execute(
            "select funnel_name, step_number, event_name, conversion_window_hours"
            " from intermediate.int_funnel_definitions where order_type = 'ordered'"
            " and funnel_name not in (select funnel_name from intermediate.int_funnel_exclusions)"
        ).fetchall()
        matched = set(
            con.execute(
                "select person_id, funnel_name, step_number, source_record_id,"
                " completed_steps, candidate_starts from intermediate.int_funnel_steps_matched"
                " where funnel_name in"
                " (select funnel_name from intermediate.int_funnel_definitions where order_type = 'ordered')"
                " and funnel_name not in (select funnel_name from intermediate.int_funnel_exclusions)"
            ).fetchall()
        )
    finally:
        con.close()
    expected = reference_matches(events, steps)
    assert len(expected) > 1000
    assert matched == expected


def test_matching_agrees_with_the_reference_implementation(batches: dict) -> None:
    assert_matches_reference(batches["full"])


def test_the_filtered_funnel_keeps_only_matching_events(batches: dict) -> None:
    # Step 1 is a page view of /pricing, step 2 a purchase of at least 50.00 from facebook traffic; a view of
    # /home between them excludes.
    full = batches["full"]
    assert count(full, "marts.conversion_funnel", "funnel_name = 'pricing_then_big_purchase'") > 0
    assert (
        count(full, "marts.conversion_funnel", "funnel_name = 'pricing_then_big_purchase' and is_converted")
        > 0
    )
    assert (
        count(full, "marts.conversion_funnel", "funnel_name = 'pricing_then_big_purchase' and is_excluded")
        > 0
    )
    con = duckdb.connect(str(full), read_only=True)
    try:
        steps = con.execute(
            "select step_number, json_extract_string(events.properties, '$.path'), conversions.value_cents,"
            " conversions.utm_source from marts.conversion_funnel_step as steps"
            " left join intermediate.int_events_deduplicated as events on steps.event_id = events.event_id"
            "  and steps.event_source = 'event'"
            " left join intermediate.int_conversions_valued as conversions"
            "  on steps.conversion_id = cast(conversions.id as varchar)"
            " where steps.funnel_name = 'pricing_then_big_purchase'"
        ).fetchall()
    finally:
        con.close()
    assert {path for number, path, _, _ in steps if number == 1} == {"/pricing"}
    purchases = [(value, source) for number, _, value, source in steps if number == 2]
    assert purchases
    assert all(value >= 5000 and source == "facebook" for value, source in purchases)


def test_the_chosen_attempts_are_the_persons_rows(batches: dict) -> None:
    # Every attempt is kept; the chosen one per person and funnel is the one conversion_funnel shows.
    for warehouse in (batches["full"], batches["incremental"]):
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            chosen = con.execute(
                "select person_id, funnel_name, started_at, completed_steps, last_step_at, is_excluded"
                " from marts.conversion_funnel_attempt where is_chosen_attempt"
                " except all select person_id, funnel_name, started_at, completed_steps, last_step_at, is_excluded"
                " from marts.conversion_funnel"
            ).fetchall()
            persons, attempts, chosen_count = con.execute(
                "select (select count(*) from marts.conversion_funnel), count(*), count(*) filter (is_chosen_attempt)"
                " from marts.conversion_funnel_attempt"
            ).fetchone()
        finally:
            con.close()
        assert chosen == []
        assert chosen_count == persons
        assert attempts > persons  # totals exceed uniques: people try more than once


def test_breakdowns_add_up_to_the_funnel_stats(batches: dict) -> None:
    # Each person counts once per breakdown type: the values of one type add up to funnel_stats' persons.
    con = duckdb.connect(str(batches["full"]), read_only=True)
    try:
        mismatches = con.execute(
            "select breakdowns.funnel_name, breakdowns.breakdown_type, breakdowns.step_number"
            " from (select funnel_name, breakdown_type, step_number, sum(persons_reached) as persons"
            "  from marts.funnel_stats_breakdown where period_type = 'all_time'"
            "  group by funnel_name, breakdown_type, step_number) as breakdowns"
            " inner join marts.funnel_stats as stats on breakdowns.funnel_name = stats.funnel_name"
            "  and breakdowns.step_number = stats.step_number"
            "  and stats.period_type = 'all_time' and stats.campaign_scope = 'all'"
            " where breakdowns.persons <> stats.persons_reached"
        ).fetchall()
        types = con.execute(
            "select distinct breakdown_type from marts.funnel_stats_breakdown order by 1"
        ).fetchall()
        attributions = con.execute(
            "select distinct funnel_name, breakdown_attribution from marts.funnel_stats_breakdown"
            " where funnel_name in ('pricing_then_big_purchase', 'signup_to_purchase') order by 1"
        ).fetchall()
    finally:
        con.close()
    assert mismatches == []
    assert types == [("campaign",), ("channel",), ("country",), ("device_type",), ("utm_source",)]
    assert attributions == [
        ("pricing_then_big_purchase", "last_touch"),
        ("signup_to_purchase", "first_touch"),
    ]


BREAKDOWN_COUNTS = (
    "select funnel_name, period_type, period_date, breakdown_type, breakdown_value, step_number,"
    " persons_entered, persons_reached, persons_reached_previous_step, conversion_rate_from_start,"
    " conversion_rate_from_previous_step, breakdown_attribution, step_name, total_steps, id"
    " from marts.funnel_stats_breakdown"
)


def breakdown_rows(warehouse: Path) -> set[tuple]:
    """Every row of funnel_stats_breakdown (its columns in a fixed order)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return set(con.execute(BREAKDOWN_COUNTS).fetchall())
    finally:
        con.close()


def test_a_build_with_nothing_new_changes_no_breakdown_row(batches: dict, tmp_path: Path) -> None:
    # Nothing landed since the fourth build: funnel_stats_breakdown keeps every row and rewrites none (no
    # load is read again: the watermark is compared with `>`), not even its all_time rows.
    project = Project.copy_of_repo(tmp_path)
    (tmp_path / "again").mkdir()
    again = tmp_path / "again" / "again.duckdb"
    shutil.copy2(batches["incremental"], again)
    before = breakdown_rows(again)
    mark_every_row(again, ("marts.funnel_stats_breakdown",))
    project.build(again)
    con = duckdb.connect(str(again), read_only=True)
    try:
        rewritten_days, days = con.execute(
            "select count(*) filter (where not starts_with(step_name, '~')), count(*)"
            " from marts.funnel_stats_breakdown where period_type = 'daily'"
        ).fetchone()
    finally:
        con.close()
    assert rewritten_days == 0, (rewritten_days, days)
    rewritten_and_total_rows(again)  # unmark
    assert breakdown_rows(again) == before


def test_a_returning_person_moves_only_their_breakdown_values(batches: dict, tmp_path: Path) -> None:
    # A person clicks an ad of a new campaign a millisecond after the start of their ad_click_to_purchase
    # attempt: the attempt it starts reaches the same steps at the same times and started later, so it
    # becomes the chosen one and the person's first-touch campaign becomes cmp_return. The all_time rows of that funnel change for
    # the values the person left and joined only (one person out of one value, into another, per breakdown
    # type); every other all_time row keeps its counts. The result equals a fresh build of the same data.
    project = Project.copy_of_repo(tmp_path)
    (tmp_path / "incremental").mkdir()
    (tmp_path / "fresh").mkdir()
    incremental, fresh = tmp_path / "incremental" / "incremental.duckdb", tmp_path / "fresh" / "fresh.duckdb"
    shutil.copy2(batches["incremental"], incremental)
    before = breakdown_rows(incremental)
    con = duckdb.connect(str(incremental))
    try:
        person, started_at = con.execute(
            "select person_id, started_at from marts.conversion_funnel"
            " where funnel_name = 'ad_click_to_purchase' and not is_excluded and completed_steps >= 2"
            " and person_id in (select person_id from marts.conversion_funnel_step"
            "  where funnel_name = 'ad_click_to_purchase' and step_number = 2 and seconds_from_start > 1)"
            " order by person_id limit 1"
        ).fetchone()
        con.execute(
            "insert into raw.events select * replace ("
            " 'ev_return' as event_id, 'ad_click' as event_name, ? + interval 1 millisecond as event_time,"
            " 'cmp_return' as campaign_id, 'cmp_return' as utm_campaign, null as properties,"
            " 'load_events_5' as _load_id, 'events_5.jsonl' as _source_file, 1 as _source_row,"
            " timestamptz '2024-04-18 01:00:00+00' as _loaded_at)"
            " from raw.events where person_id = ? limit 1",
            [started_at, person],
        )
    finally:
        con.close()
    project.build(incremental)
    copy_raw_tables(incremental, fresh)
    project.build(fresh)
    assert differences(incremental, fresh) == {}

    after = breakdown_rows(incremental)
    changed = {row[:6]: row for row in after - before}
    gone = {row[:6]: row for row in before - after}
    all_time = {key for key in changed.keys() | gone.keys() if key[1] == "all_time"}
    assert ("ad_click_to_purchase", "all_time", None, "campaign", "cmp_return", 1) in all_time
    assert {key[0] for key in all_time} == {"ad_click_to_purchase"}
    for breakdown_type in ("campaign", "channel", "device_type", "country", "utm_source"):
        for step in range(1, 6):
            keys = [key for key in all_time if key[3] == breakdown_type and key[5] == step]
            assert len(keys) <= 2, keys  # the value the person left and the one they joined
            moved = sum(
                (changed[key][6] if key in changed else 0) - (gone[key][6] if key in gone else 0)
                for key in keys
            )
            assert moved in (0, 1), (keys, moved)  # one person moved (or entered the funnel)
