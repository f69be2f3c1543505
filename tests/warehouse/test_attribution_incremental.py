"""Incremental attribution, metrics and rollups equal a full refresh.

Raw rows are landed in two batches (the second with late-arriving touches for old conversions,
re-sent event copies, a late server copy filling a conversion's campaign, restated ad spend, late
copies that re-cluster a conversion or move it to another day, and a late funnel attempt that moves a
person's funnel start to another week); Meta accepts a few conversions between the batches. `dbt
build` runs after each batch. Every attribution table and mart is then snapshotted, the project is
rebuilt with `--full-refresh`, and each snapshot must equal its rebuilt table (EXCEPT both ways). The
second build must have recomputed only some conversions and periods (the keys it wrote down in
audit.<model>_touched_keys). The raw rows come from a small seeded generator in this file, so the test
needs nothing but the dbt project.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.contract import column_names
from pipelines.warehouse import ensure_raw_schema

pytestmark = pytest.mark.dbt

PROJECT_DIR = Path(__file__).resolve().parents[2]
MARTS = (
    "intermediate.int_touchpoints",
    "intermediate.int_attribution_credits",
    "marts.conversion_attribution",
    "marts.attribution_paths",
    "marts.attribution_paths_non_converting",
    "marts.conversion_metrics",
    "marts.conversion_rollup_daily",
    "marts.conversion_rollup_weekly",
    "marts.conversion_rollup_monthly",
)
# The marts and everything upstream; tests only when all their parents are selected.
SELECTION = (
    "--select",
    "+conversion_attribution +attribution_paths +attribution_paths_non_converting +conversion_metrics"
    " +conversion_rollup_daily"
    " +conversion_rollup_weekly +conversion_rollup_monthly",
    "--indirect-selection",
    "cautious",
)

UTC = dt.UTC
META_PIXEL_ID = "123456789012345"
START = dt.datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS = 28
CUTOFF = START + dt.timedelta(days=14)  # batch 1 holds what happened before, batch 2 the rest
BATCH_LOADED_AT = (dt.datetime(2026, 3, 16, 1, tzinfo=UTC), dt.datetime(2026, 3, 30, 1, tzinfo=UTC))
# Batch 1 lands in two loads: what happened before FIRST_LOAD_SPLIT is loaded a week earlier.
FIRST_LOAD_SPLIT = START + dt.timedelta(days=7)
FIRST_LOAD_AT = dt.datetime(2026, 3, 9, 1, tzinfo=UTC)

# campaign_id, ad_set_id, ad ids, utm_source, utm_medium, spend currency
PAID_CAMPAIGNS = (
    (
        "cmp_meta_prospecting",
        "as_meta_broad",
        ("ad_meta_video", "ad_meta_carousel"),
        "facebook",
        "paid_social",
        "USD",
    ),
    ("cmp_meta_retargeting", "as_meta_cart", ("ad_meta_dpa",), "instagram", "cpc", "EUR"),
    ("cmp_google_brand", "as_google_exact", ("ad_google_text",), "google", "cpc", "USD"),
)
CAMPAIGN_WITHOUT_CONVERSIONS = (
    "cmp_meta_awareness",
    "as_meta_reach",
    ("ad_meta_reach",),
    "facebook",
    "paid_social",
    "USD",
)


@dataclass
class RawBatches:
    """Raw rows per stream, each tagged with the batch (0 or 1) it is landed in."""

    rows: dict[str, list[tuple[int, dict]]] = field(
        default_factory=lambda: {"events": [], "conversions": [], "ad_spend": []}
    )

    def add(self, stream: str, batch: int, row: dict) -> None:
        self.rows[stream].append((batch, row))


def generate_raw(persons: int, seed: int) -> RawBatches:
    """A small, seeded, realistic mix of journeys: paid social and search clicks, newsletter, organic
    and direct visits, signups, carts, purchases (pixel + server copies), renders, subscriptions."""
    rng = random.Random(seed)
    out = RawBatches()
    event_counter = 0

    def batch_of(at: dt.datetime, late_share: float = 0.0) -> int:
        if at >= CUTOFF:
            return 1
        return 1 if rng.random() < late_share else 0

    def event(person: str, name: str, at: dt.datetime, tags: dict, late_share: float = 0.0) -> None:
        nonlocal event_counter
        event_counter += 1
        row = {
            "event_id": f"ev{seed}-{event_counter:07d}",
            "person_id": person,
            "event_name": name,
            "event_time": at,
            "source": rng.choice(("pixel", "pixel", "app")),
            "device_type": tags.get("device_type"),
            "country": tags.get("country"),
            **{k: v for k, v in tags.items() if k not in ("device_type", "country")},
        }
        batch = batch_of(at, late_share)
        out.add("events", batch, row)
        if rng.random() < 0.03:  # the same event re-sent later (its copy is dropped by dedup)
            out.add("events", 1, {**row, "source": "capi"})

    for p in range(persons):
        person = f"person-{seed}-{p:05d}"
        device = rng.choice(("desktop", "mobile", "mobile", "tablet"))
        country = rng.choice(("US", "US", "GB", "DE", "FR"))
        currency = {"US": "USD", "GB": "GBP"}.get(country, "EUR")
        has_bought = False
        at = START + dt.timedelta(seconds=rng.randrange(DAYS * 86400))
        for session in range(rng.choice((1, 1, 2, 2, 3, 4))):
            if at >= START + dt.timedelta(days=DAYS):
                break
            entry = rng.choices(("paid", "newsletter", "organic", "direct"), weights=(6, 1, 2, 2))[0]
            tags: dict = {"device_type": device, "country": country}
            if entry == "paid":
                campaign, ad_set, ads, source, medium, _ = rng.choice(PAID_CAMPAIGNS)
                tags |= {
                    "campaign_id": campaign,
                    "ad_set_id": ad_set,
                    "ad_id": rng.choice(ads),
                    "utm_source": source,
                    "utm_medium": medium,
                    "utm_campaign": campaign.removeprefix("cmp_"),
                }
                if source != "google":
                    tags["fbclid"] = f"IwAR{rng.getrandbits(48):012x}"
                event(person, "ad_click", at, tags, late_share=0.15)
                if rng.random() < 0.1:  # a second click at the very same instant: ties by event id
                    event(person, "ad_click", at, tags, late_share=0.15)
                at += dt.timedelta(seconds=rng.randrange(1, 20))
            elif entry == "newsletter":
                tags |= {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "weekly_digest"}
            elif entry == "organic":
                tags |= {"utm_source": "google", "utm_medium": "organic"}
            event(person, "landing_page_view", at, tags, late_share=0.15)
            plain = {"device_type": device, "country": country}
            at += dt.timedelta(seconds=rng.randrange(5, 600))
            event(person, "page_view", at, plain)
            reported = {k: v for k, v in tags.items() if k not in ("device_type", "country")}
            if session == 0 and rng.random() < 0.5:
                at += dt.timedelta(seconds=rng.randrange(5, 900))
                event(person, "signup", at, plain)
                conversion(out, rng, person, "signup", at, 0, currency, reported, plain)
                if rng.random() < 0.3:
                    at += dt.timedelta(seconds=rng.randrange(60, 3600))
                    event(person, "video_render_started", at, plain)
                    at += dt.timedelta(seconds=rng.randrange(30, 600))
                    conversion(out, rng, person, "video_render", at, 0, currency, reported, plain)
            if rng.random() < 0.45:
                at += dt.timedelta(seconds=rng.randrange(5, 1800))
                event(person, "add_to_cart", at, plain)
                if rng.random() < 0.7:
                    at += dt.timedelta(seconds=rng.randrange(5, 900))
                    event(person, "checkout_started", at, plain)
                    if rng.random() < 0.75:
                        at += dt.timedelta(seconds=rng.randrange(5, 900))
                        value = rng.choice((1999, 2999, 4999, 9900, 14950))
                        conversion(out, rng, person, "purchase", at, value, currency, reported, plain)
                        if has_bought and rng.random() < 0.3:
                            conversion(out, rng, person, "subscription", at, 999, currency, reported, plain)
                        has_bought = True
            at += dt.timedelta(hours=rng.choice((1, 6, 30, 80, 150, 170, 200)), seconds=rng.randrange(3600))

    for campaign, ad_set, ads, _, _, currency in (*PAID_CAMPAIGNS, CAMPAIGN_WITHOUT_CONVERSIONS):
        for day in range(DAYS):
            date = (START + dt.timedelta(days=day)).date()
            for ad in ads:
                impressions = rng.randrange(500, 5000)
                row = {
                    "date": date,
                    "campaign_id": campaign,
                    "campaign_name": campaign.replace("_", " "),
                    "ad_set_id": ad_set,
                    "ad_set_name": ad_set,
                    "ad_id": ad,
                    "ad_name": ad,
                    "spend_cents": rng.randrange(1000, 20000),
                    "currency": currency,
                    "impressions": impressions,
                    "clicks": rng.randrange(0, impressions // 20),
                }
                day_start = dt.datetime.combine(date, dt.time(), UTC)
                out.add("ad_spend", int(day_start >= CUTOFF), row)
                if CUTOFF - dt.timedelta(days=2) <= day_start < CUTOFF:
                    # The export restates the last two days of batch 1 with corrected numbers.
                    out.add("ad_spend", 1, {**row, "spend_cents": row["spend_cents"] + 123})
    add_moving_rows(out)
    add_untouched_rows(out)
    return out


UNTOUCHED_AT = dt.datetime(2026, 1, 15, 9, tzinfo=UTC)
UTC_JANUARY_CLICK = UNTOUCHED_AT - dt.timedelta(minutes=20)


def add_untouched_rows(out: RawBatches) -> None:
    """A journey in January that nothing later changes, and a day of spend in euros: its conversion, day,
    week and month are never recomputed by the second build."""
    out.add(
        "ad_spend",
        0,
        {
            "date": UNTOUCHED_AT.date(),
            "campaign_id": "cmp_meta_retargeting",
            "campaign_name": "cmp meta retargeting",
            "ad_set_id": "as_meta_cart",
            "ad_set_name": "as_meta_cart",
            "ad_id": "ad_meta_dpa",
            "ad_name": "ad_meta_dpa",
            "spend_cents": 12345,
            "currency": "EUR",
            "impressions": 1000,
            "clicks": 20,
        },
    )
    tags = {"campaign_id": "cmp_google_brand", "utm_source": "google", "utm_medium": "cpc"}
    out.add(
        "events",
        0,
        {
            "event_id": "january-click",
            "person_id": "person-january",
            "event_name": "ad_click",
            "event_time": UTC_JANUARY_CLICK,
            "source": "pixel",
            **tags,
        },
    )
    out.add(
        "conversions",
        0,
        {
            "event_id": "purchase-january",
            "person_id": "person-january",
            "conversion_type": "purchase",
            "conversion_source": "pixel",
            "value_cents": 2999,
            "currency": "USD",
            "conversion_time": UNTOUCHED_AT,
            **tags,
        },
    )


# Days before the generated range, which only the rows of add_moving_rows reach.
CONVERSION_MOVED_FROM = dt.datetime(2026, 2, 25, 5, tzinfo=UTC)  # a Wednesday
CONVERSION_MOVED_TO = dt.datetime(2026, 2, 24, 20, tzinfo=UTC)
FUNNEL_MOVED_FROM = dt.datetime(2026, 2, 20, 10, tzinfo=UTC)  # a Friday, ISO week of 2026-02-16
FUNNEL_MOVED_TO = dt.datetime(2026, 2, 14, 10, tzinfo=UTC)  # a Saturday, ISO week of 2026-02-09


def add_moving_rows(out: RawBatches) -> None:
    """Late rows that move or split what batch 1 built, so a period can lose all of its rows.

    * A purchase alone on its day: a server copy 9 hours earlier (within the dedup window) arrives late
      and moves the conversion to the day before.
    * A purchase whose key gets a copy 60 hours earlier: the key splits into two conversions, one of
      them with a new id but only old copies.
    * A key already split in two (copies 60 hours apart) gets a copy 50 hours after the first: the
      second conversion is anchored on it, gets a new id, and the old one disappears.
    * A person whose only funnel attempt started alone on its day and week: a late, earlier attempt
      that goes further wins, and the funnel start moves to another week.
    """
    base = {"conversion_type": "purchase", "value_cents": 4999, "currency": "USD"}
    moved = {**base, "event_id": "purchase-moved", "person_id": "person-moved"}
    out.add(
        "conversions", 0, {**moved, "conversion_source": "pixel", "conversion_time": CONVERSION_MOVED_FROM}
    )
    out.add("conversions", 1, {**moved, "conversion_source": "capi", "conversion_time": CONVERSION_MOVED_TO})

    split_at = START + dt.timedelta(days=3, hours=12)
    split = {
        **base,
        "event_id": "purchase-split",
        "person_id": "person-split",
        "campaign_id": "cmp_google_brand",
    }
    out.add("conversions", 0, {**split, "conversion_source": "pixel", "conversion_time": split_at})
    out.add(
        "conversions",
        0,
        {
            **base,
            "event_id": "purchase-split-later",
            "person_id": "person-split",
            "conversion_source": "pixel",
            "conversion_time": split_at + dt.timedelta(days=6),
        },
    )
    out.add(
        "conversions",
        1,
        {**split, "conversion_source": "capi", "conversion_time": split_at - dt.timedelta(hours=60)},
    )

    anchor_at = START + dt.timedelta(days=4, hours=6)
    reanchored = {**base, "event_id": "purchase-reanchored", "person_id": "person-reanchored"}
    out.add("conversions", 0, {**reanchored, "conversion_source": "pixel", "conversion_time": anchor_at})
    out.add(
        "conversions",
        0,
        {**reanchored, "conversion_source": "capi", "conversion_time": anchor_at + dt.timedelta(hours=60)},
    )
    out.add(
        "conversions",
        1,
        {**reanchored, "conversion_source": "webhook", "conversion_time": anchor_at + dt.timedelta(hours=50)},
    )

    def funnel_event(batch: int, name: str, at: dt.datetime) -> None:
        row = {
            "event_id": f"funnel-mover-{name}-{at:%Y%m%d%H%M}",
            "person_id": "person-funnel-mover",
            "event_name": name,
            "event_time": at,
            "source": "pixel",
        }
        out.add("events", batch, row)

    funnel_event(0, "landing_page_view", FUNNEL_MOVED_FROM)
    funnel_event(0, "signup", FUNNEL_MOVED_FROM + dt.timedelta(minutes=5))
    funnel_event(1, "landing_page_view", FUNNEL_MOVED_TO)
    funnel_event(1, "signup", FUNNEL_MOVED_TO + dt.timedelta(minutes=2))
    funnel_event(1, "add_to_cart", FUNNEL_MOVED_TO + dt.timedelta(minutes=3))


def conversion(
    out: RawBatches,
    rng: random.Random,
    person: str,
    kind: str,
    at: dt.datetime,
    value: int,
    currency: str,
    reported: dict,
    device: dict,
) -> None:
    """A conversion reported by the pixel and (usually) the server; the server copy may come later."""
    event_id = f"{kind}-{person}-{int(at.timestamp())}"
    pixel = {
        "event_id": event_id,
        "person_id": person,
        "conversion_type": kind,
        "conversion_source": "pixel",
        "value_cents": value,
        "currency": currency if value else None,
        "conversion_time": at,
        "meta_pixel_id": META_PIXEL_ID if reported.get("utm_source") in ("facebook", "instagram") else None,
        **reported,
        **device,
    }
    batch = 1 if at >= CUTOFF else 0
    if rng.random() < 0.15 and reported.get("campaign_id"):
        # The pixel lost the campaign; a server copy landed in the next batch fills it in.
        out.add("conversions", batch, {**pixel, "campaign_id": None, "ad_set_id": None, "ad_id": None})
        out.add(
            "conversions",
            1,
            {**pixel, "conversion_source": "capi", "conversion_time": at + dt.timedelta(seconds=3)},
        )
        return
    out.add("conversions", batch, pixel)
    if rng.random() < 0.6:
        out.add(
            "conversions",
            batch,
            {
                **pixel,
                "conversion_source": "capi",
                "conversion_time": at + dt.timedelta(seconds=rng.randrange(1, 30)),
            },
        )


def row_time(stream: str, row: dict) -> dt.datetime:
    if stream == "ad_spend":
        return dt.datetime.combine(row["date"], dt.time(), UTC)
    return row["event_time"] if stream == "events" else row["conversion_time"]


def land(warehouse: Path, raw: RawBatches, batch: int) -> None:
    """Append one batch to the raw tables, as `convopt ingest` would. Batch 1 comes as two loads per
    stream, a week apart (what happened before START + 7 days first), batch 2 as one."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        ensure_raw_schema(con)
        for stream, tagged in raw.rows.items():
            rows = [row for b, row in tagged if b == batch]
            if batch == 0:
                early = [row_time(stream, row) < FIRST_LOAD_SPLIT for row in rows]
                loads = [
                    ([row for row, is_early in zip(rows, early, strict=True) if is_early], FIRST_LOAD_AT),
                    (
                        [row for row, is_early in zip(rows, early, strict=True) if not is_early],
                        BATCH_LOADED_AT[0],
                    ),
                ]
            else:
                loads = [(rows, BATCH_LOADED_AT[batch])]
            for number, (load_rows, loaded_at) in enumerate(loads):
                if load_rows:
                    insert_load(con, stream, f"{batch}-{number}", load_rows, loaded_at)


def insert_load(
    con: duckdb.DuckDBPyConnection, stream: str, name: str, rows: list[dict], loaded_at: dt.datetime
) -> None:
    load_id = f"load-{name}-{stream}"
    file_name = f"landing/{stream}_{name}.jsonl"
    frame = pl.DataFrame(
        [{column: row.get(column) for column in column_names(stream)} for row in rows],
        infer_schema_length=None,
    ).with_columns(
        pl.lit(load_id).alias("_load_id"),
        pl.lit(file_name).alias("_source_file"),
        pl.int_range(1, len(rows) + 1, dtype=pl.Int64).alias("_source_row"),
        pl.lit(loaded_at).alias("_loaded_at"),
    )
    con.register("landed", frame.to_arrow())
    con.execute(f"insert into raw.{stream} by name select * from landed")
    con.unregister("landed")
    con.execute(
        "insert into raw.load_log values (?, ?, ?, ?, 'jsonl', ?, ?, 0, ?, ?, 'loaded', null)",
        [load_id, file_name, f"sha-{load_id}", stream, len(rows), len(rows), loaded_at, loaded_at],
    )


# The markov rows of every conversion are recomputed whenever new data changes the removal effects, so the
# tests of which keys a run recomputes build without it; the builds of `incremental_then_full_with_markov`
# have it.
WITHOUT_MARKOV = "attribution_markov: false"


def dbt_build(
    warehouse: Path,
    target: Path,
    *extra: str,
    selection: tuple[str, ...] = SELECTION,
    command: str = "build",
    markov: bool = False,
) -> None:
    if not markov and "--vars" not in selection + extra:
        extra = (*extra, "--vars", "{" + WITHOUT_MARKOV + "}")
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "CONVOPT_WAREHOUSE": str(warehouse),
        "DBT_TARGET_PATH": str(target),
        "DBT_LOG_PATH": str(target / "logs"),
    }
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [str(dbt), command, "--project-dir", str(PROJECT_DIR), *selection, *extra],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


# The marts that keep their incremental state in schema audit, with the key of their delete+insert.
STATEFUL_MARTS = {
    "conversion_attribution": "conversion_id",
    "attribution_paths": "conversion_id",
    "attribution_paths_non_converting": "person_id",
    "conversion_metrics": "period_type, period_date",
    "conversion_rollup_daily": "period_date",
    "conversion_rollup_weekly": "period_date",
    "conversion_rollup_monthly": "period_date",
}


def record_meta_deliveries(warehouse: Path, conversions: int) -> None:
    """Meta accepts some conversions between the builds, as `convopt export-meta` records it: now, a
    wall-clock time later than any load of the test data."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            f"""
            insert into raw.meta_delivery_log (conversion_id, event_id, batch_id, attempt, status, fbtrace_id,
                requested_at, recorded_at)
            select conversion_id, event_id, 'test-batch', 1, 'sent', 'trace-' || conversion_id, now(), now()
            from marts.meta_capi_events
            where is_eligible
            order by conversion_id
            limit {conversions}
            """
        )


@pytest.fixture(scope="module")
def incremental_then_full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("attribution")
    warehouse, target = root / "warehouse.duckdb", root / "target"
    raw = generate_raw(persons=300, seed=11)
    land(warehouse, raw, 0)
    dbt_build(warehouse, target)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema first_build")
        for name in STATEFUL_MARTS:
            con.execute(f"create table first_build.{name} as select * from marts.{name}")
    record_meta_deliveries(warehouse, conversions=5)
    land(warehouse, raw, 1)
    dbt_build(warehouse, target)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists incremental_snapshot")
        for relation in MARTS:
            name = relation.split(".")[1]
            con.execute(f"create or replace table incremental_snapshot.{name} as select * from {relation}")
        for name in STATEFUL_MARTS:
            con.execute(
                f"create table incremental_snapshot.{name}_touched_keys as select * from audit.{name}_touched_keys"
            )
    dbt_build(warehouse, target, "--full-refresh")
    return warehouse


@pytest.mark.parametrize("relation", MARTS)
def test_incremental_build_equals_full_refresh(incremental_then_full: Path, relation: str) -> None:
    name = relation.split(".")[1]
    with duckdb.connect(str(incremental_then_full), read_only=True) as con:
        (rows,) = con.execute(f"select count(*) from {relation}").fetchone()
        (only_incremental,) = con.execute(
            f"select count(*) from (select * from incremental_snapshot.{name} "
            f"except all select * from {relation})"
        ).fetchone()
        (only_full,) = con.execute(
            f"select count(*) from (select * from {relation} "
            f"except all select * from incremental_snapshot.{name})"
        ).fetchone()
    assert rows > 0
    assert (only_incremental, only_full) == (0, 0)


@pytest.mark.parametrize(("mart", "key"), STATEFUL_MARTS.items())
def test_second_build_recomputed_only_the_touched_keys(
    incremental_then_full: Path, mart: str, key: str
) -> None:
    """The second build was incremental: it wrote down the keys it recomputed, and some keys of the mart
    are not among them (a model turned back into a table leaves no such list)."""
    with duckdb.connect(str(incremental_then_full), read_only=True) as con:
        (touched,) = con.execute(
            f"select count(*) from (select distinct {key} from incremental_snapshot.{mart}_touched_keys)"
        ).fetchone()
        (untouched,) = con.execute(
            f"select count(*) from (select distinct {key} from incremental_snapshot.{mart} "
            f"except select {key} from incremental_snapshot.{mart}_touched_keys)"
        ).fetchone()
        (full_build_touched,) = con.execute(
            "select count(*) from information_schema.tables "
            f"where table_schema = 'audit' and table_name = '{mart}_touched_keys'"
        ).fetchone()
    assert touched > 0 and untouched > 0
    assert full_build_touched == 0  # the full refresh recomputed everything and kept no list


def test_periods_left_without_rows_are_gone(incremental_then_full: Path) -> None:
    """add_moving_rows: the day a conversion left, and the day and week a funnel start left, had rows
    after the first build and have none now; the moved rows are in their new periods."""
    with duckdb.connect(str(incremental_then_full), read_only=True) as con:

        def periods(relation: str, where: str) -> list[tuple]:
            return con.execute(
                f"select distinct period_type, period_date from {relation} where {where}"
            ).fetchall()

        day_left, week_left = FUNNEL_MOVED_FROM.date(), dt.date(2026, 2, 16)
        conversion_day_left = CONVERSION_MOVED_FROM.date()
        metrics_left = f"(period_type = 'daily' and period_date in ('{day_left}', '{conversion_day_left}')) or (period_type = 'weekly' and period_date = '{week_left}')"
        assert len(periods("first_build.conversion_metrics", metrics_left)) == 3
        assert periods("incremental_snapshot.conversion_metrics", metrics_left) == []
        assert periods(
            "incremental_snapshot.conversion_metrics",
            "period_type = 'daily' and total_funnel_starts > 0 and period_date = '2026-02-14'",
        )
        assert periods("first_build.conversion_rollup_daily", f"period_date = '{conversion_day_left}'")
        assert (
            periods("incremental_snapshot.conversion_rollup_daily", f"period_date = '{conversion_day_left}'")
            == []
        )
        assert periods(
            "incremental_snapshot.conversion_rollup_daily", f"period_date = '{CONVERSION_MOVED_TO.date()}'"
        )


def test_a_reanchored_conversion_replaces_the_old_one(incremental_then_full: Path) -> None:
    """add_moving_rows: the key split in two since the first batch kept two conversions, but the second
    one has a new id; no row is left under the old id, and the key that split only now has both."""

    def conversion_ids(con: duckdb.DuckDBPyConnection, schema: str, person: str) -> set[str]:
        rows = con.execute(
            f"select distinct conversion_id from {schema}.conversion_attribution where person_id = ?",
            [person],
        ).fetchall()
        return {row[0] for row in rows}

    with duckdb.connect(str(incremental_then_full), read_only=True) as con:
        before = conversion_ids(con, "first_build", "person-reanchored")
        after = conversion_ids(con, "incremental_snapshot", "person-reanchored")
        split_before = conversion_ids(con, "first_build", "person-split")
        split_after = conversion_ids(con, "incremental_snapshot", "person-split")
    assert len(before) == len(after) == 2
    assert len(before - after) == 1
    assert len(split_before) == 2 and len(split_after) == 3


def test_meta_deliveries_reach_the_metrics(incremental_then_full: Path) -> None:
    """Conversions accepted between the builds are optimized in the incremental metrics."""
    with duckdb.connect(str(incremental_then_full), read_only=True) as con:
        (before,) = con.execute(
            "select sum(optimized_conversions) from first_build.conversion_metrics"
        ).fetchone()
        (after,) = con.execute(
            "select sum(optimized_conversions) from incremental_snapshot.conversion_metrics"
        ).fetchone()
    assert before == 0 and after > 0


def test_second_batch_changed_old_conversions(incremental_then_full: Path) -> None:
    """The late rows of batch 2 really reach conversions of batch 1 (else the comparison proves little)."""
    with duckdb.connect(str(incremental_then_full), read_only=True) as con:
        (late_touches,) = con.execute(
            """
            select count(*)
            from marts.conversion_attribution
            where touchpoint_time < timestamptz '2026-03-16 00:00:00+00'
              and touchpoint_event_id in (
                  select event_id from raw.events where _loaded_at = timestamptz '2026-03-30 01:00:00+00'
              )
            """
        ).fetchone()
    assert late_touches > 0


def test_changed_attribution_settings_recompute_every_row(
    incremental_then_full: Path, tmp_path: Path
) -> None:
    """A new lookback or half-life needs no --full-refresh: the models notice the settings hash."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(incremental_then_full, warehouse)
    selection = (
        "--select",
        "int_touchpoints int_attribution_credits",
        "--indirect-selection",
        "cautious",
        "--vars",
        "{attribution_lookback_days: 3, attribution_half_life_days: 1, " + WITHOUT_MARKOV + "}",
    )
    dbt_build(warehouse, tmp_path / "target", selection=selection)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create table main.credits_incremental as select * from intermediate.int_attribution_credits"
        )
    dbt_build(warehouse, tmp_path / "target", "--full-refresh", selection=selection)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (only_incremental, only_full, unchanged) = con.execute(
            """
            select
                (select count(*) from (
                    select * from main.credits_incremental
                    except all select * from intermediate.int_attribution_credits)),
                (select count(*) from (
                    select * from intermediate.int_attribution_credits
                    except all select * from main.credits_incremental)),
                (select count(*) from (
                    select conversion_id, attribution_model, touchpoint_event_id, credit
                    from intermediate.int_attribution_credits
                    intersect
                    select conversion_id, attribution_model, touchpoint_event_id, credit
                    from incremental_snapshot.int_attribution_credits))
            """
        ).fetchone()
        (before,) = con.execute(
            "select count(*) from incremental_snapshot.int_attribution_credits"
        ).fetchone()
    assert (only_incremental, only_full) == (0, 0)
    assert unchanged < before  # the shorter window and half-life really changed credits


def test_a_new_reporting_time_zone_recomputes_every_period(
    incremental_then_full: Path, tmp_path: Path
) -> None:
    """Periods depend on var reporting_timezone: with a new value the next run recomputes every period
    (no list of touched keys) and equals a full refresh; no --full-refresh is needed."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(incremental_then_full, warehouse)
    by_conversion_or_person = ("conversion_attribution", "attribution_paths", "attribution_paths_non_converting")
    period_marts = [name for name in STATEFUL_MARTS if name not in by_conversion_or_person]
    selection = (
        "--select",
        " ".join(period_marts),
        "--indirect-selection",
        "cautious",
        "--vars",
        "{reporting_timezone: America/Los_Angeles, " + WITHOUT_MARKOV + "}",
    )
    dbt_build(warehouse, tmp_path / "target", selection=selection)
    with duckdb.connect(str(warehouse)) as con:
        (touched_lists,) = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'audit' and table_name like '%touched_keys'"
        ).fetchone()
        con.execute("create schema new_zone")
        for name in period_marts:
            con.execute(f"create table new_zone.{name} as select * from marts.{name}")
    assert touched_lists == 0
    dbt_build(warehouse, tmp_path / "target", "--full-refresh", selection=selection)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name in period_marts:
            (only_incremental, only_full, moved) = con.execute(
                f"""
                select
                    (select count(*) from (select * from new_zone.{name} except all select * from marts.{name})),
                    (select count(*) from (select * from marts.{name} except all select * from new_zone.{name})),
                    (select count(*) from (
                        select * from new_zone.{name} except all select * from incremental_snapshot.{name}))
                """
            ).fetchone()
            assert (name, only_incremental, only_full) == (name, 0, 0)
            if name in ("conversion_metrics", "conversion_rollup_daily"):
                assert moved > 0, name  # the new zone really moved rows to other days


def test_new_exchange_rates_reach_the_spend_of_the_metrics(
    incremental_then_full: Path, tmp_path: Path
) -> None:
    """Spend is converted on every build, without a newer load: the periods whose stored spend no longer
    matches the daily spend are recomputed. (The rates are edited in the warehouse, and `dbt run` does not
    reload seeds.)"""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(incremental_then_full, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update reference.exchange_rates set units_per_usd = units_per_usd * 1.25 "
            "where currency = 'EUR' and rate_date = ?",
            [UNTOUCHED_AT.date()],
        )
    selection = ("--select", "int_attribution_ad_spend_daily conversion_metrics")
    dbt_build(warehouse, tmp_path / "target", selection=selection, command="run")
    with duckdb.connect(str(warehouse)) as con:
        touched = con.execute(
            "select distinct period_type, period_date from audit.conversion_metrics_touched_keys where period_date < ?",
            [dt.date(2026, 2, 1)],
        ).fetchall()
        con.execute("create schema new_rates")
        con.execute("create table new_rates.conversion_metrics as select * from marts.conversion_metrics")
    dbt_build(warehouse, tmp_path / "target", "--full-refresh", selection=selection, command="run")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (only_incremental, only_full, respent) = con.execute(
            """
            select
                (select count(*) from (
                    select * from new_rates.conversion_metrics except all select * from marts.conversion_metrics)),
                (select count(*) from (
                    select * from marts.conversion_metrics except all select * from new_rates.conversion_metrics)),
                (select count(*) from (
                    select period_type, period_date, campaign_id, spend_cents from new_rates.conversion_metrics
                    except
                    select period_type, period_date, campaign_id, spend_cents
                    from incremental_snapshot.conversion_metrics))
            """
        ).fetchone()
    assert (only_incremental, only_full) == (0, 0)
    assert respent == 3  # the day, ISO week and month of the January spend, nothing else
    assert sorted(touched) == [
        ("daily", UNTOUCHED_AT.date()),
        ("monthly", dt.date(2026, 1, 1)),
        ("weekly", dt.date(2026, 1, 12)),
    ]


@pytest.fixture(scope="module")
def incremental_then_full_with_markov(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same two batches and full refresh, with attribution model markov (the default): the second batch
    changes the removal effects, so the incremental run recomputes every conversion's credits."""
    root = tmp_path_factory.mktemp("attribution_markov")
    warehouse, target = root / "warehouse.duckdb", root / "target"
    raw = generate_raw(persons=300, seed=11)
    land(warehouse, raw, 0)
    dbt_build(warehouse, target, markov=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema first_build")
        con.execute(
            "create table first_build.int_attribution_markov_effects as "
            "select * from intermediate.int_attribution_markov_effects"
        )
        con.execute("create table first_build.conversion_metrics as select * from marts.conversion_metrics")
    record_meta_deliveries(warehouse, conversions=5)
    land(warehouse, raw, 1)
    dbt_build(warehouse, target, markov=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema incremental_snapshot")
        for relation in (*MARTS, "intermediate.int_attribution_markov_effects"):
            name = relation.split(".")[1]
            con.execute(f"create table incremental_snapshot.{name} as select * from {relation}")
        for name in ("conversion_attribution", "conversion_metrics"):
            con.execute(
                f"create table incremental_snapshot.{name}_touched_keys as select * from audit.{name}_touched_keys"
            )
    dbt_build(warehouse, target, "--full-refresh", markov=True)
    return warehouse


@pytest.mark.parametrize("relation", (*MARTS, "intermediate.int_attribution_markov_effects"))
def test_incremental_build_with_markov_equals_full_refresh(
    incremental_then_full_with_markov: Path, relation: str
) -> None:
    name = relation.split(".")[1]
    with duckdb.connect(str(incremental_then_full_with_markov), read_only=True) as con:
        (markov_rows,) = con.execute(
            "select count(*) from marts.conversion_attribution where attribution_model = 'markov'"
        ).fetchone()
        (only_incremental,) = con.execute(
            f"select count(*) from (select * from incremental_snapshot.{name} except all select * from {relation})"
        ).fetchone()
        (only_full,) = con.execute(
            f"select count(*) from (select * from {relation} except all select * from incremental_snapshot.{name})"
        ).fetchone()
    assert markov_rows > 0
    assert (only_incremental, only_full) == (0, 0)


def test_the_second_batch_changed_the_markov_removal_effects(incremental_then_full_with_markov: Path) -> None:
    """Else the comparison above would not show that changed effects reach every conversion."""
    with duckdb.connect(str(incremental_then_full_with_markov), read_only=True) as con:
        (changed,) = con.execute(
            """
            select count(*) from (
                select markov_state, removal_effect from first_build.int_attribution_markov_effects
                except
                select markov_state, removal_effect from intermediate.int_attribution_markov_effects)
            """
        ).fetchone()
        (models,) = con.execute(
            "select count(distinct attribution_model) from marts.conversion_metrics"
        ).fetchone()
    assert changed > 0
    assert models == 7


def differences(con: duckdb.DuckDBPyConnection, left: str, right: str) -> tuple[int, int]:
    """Rows only in `left` and rows only in `right` (queries or relations), as multisets."""
    return con.execute(
        f"select (select count(*) from (select * from {left} except all select * from {right})), "
        f"(select count(*) from (select * from {right} except all select * from {left}))"
    ).fetchone()


def test_changed_removal_effects_recompute_only_the_markov_rows_of_other_conversions(
    incremental_then_full_with_markov: Path,
) -> None:
    """The second batch changed the effects: conversion_attribution recomputed every model of the
    conversions the batch touched, and only the markov rows of others (whose markov credits changed)."""
    with duckdb.connect(str(incremental_then_full_with_markov), read_only=True) as con:
        (conversions, other_models, markov) = con.execute(
            """
            select
                (select count(distinct conversion_id) from incremental_snapshot.conversion_attribution),
                (select count(distinct conversion_id) from incremental_snapshot.conversion_attribution_touched_keys
                 where attribution_model = 'linear'),
                (select count(distinct conversion_id) from incremental_snapshot.conversion_attribution_touched_keys
                 where attribution_model = 'markov')
            """
        ).fetchone()
    assert 0 < other_models < markov < conversions


def test_changed_removal_effects_recompute_only_the_markov_rows_of_other_periods(
    incremental_then_full_with_markov: Path,
) -> None:
    """The second batch changed the effects: conversion_metrics recomputed every model of the periods the
    batch touched and the markov rows of every period, not the whole table. The other models' rows of the
    other periods are the first build's, unchanged, and (test above) equal the full refresh."""
    with duckdb.connect(str(incremental_then_full_with_markov), read_only=True) as con:
        (without_markov, markov, linear, kept, kept_changed) = con.execute(
            """
            with kept as (
                select * from incremental_snapshot.conversion_metrics as metrics
                where not exists (
                    select 1 from incremental_snapshot.conversion_metrics_touched_keys as touched
                    where
                        touched.period_type = metrics.period_type
                        and touched.period_date = metrics.period_date
                        and touched.attribution_model = metrics.attribution_model
                )
            )
            select
                (select count(*) from (
                    select distinct period_type, period_date from incremental_snapshot.conversion_metrics
                    except
                    select period_type, period_date from incremental_snapshot.conversion_metrics_touched_keys
                    where attribution_model = 'markov')),
                (select count(*) from incremental_snapshot.conversion_metrics_touched_keys
                 where attribution_model = 'markov'),
                (select count(*) from incremental_snapshot.conversion_metrics_touched_keys
                 where attribution_model = 'linear'),
                (select count(*) from kept),
                (select count(*) from (select * from kept except all select * from first_build.conversion_metrics))
            """
        ).fetchone()
    assert without_markov == 0  # every period's markov rows were recomputed
    assert 0 < linear < markov
    assert kept > 0 and kept_changed == 0


def test_unchanged_removal_effects_recompute_nothing(
    incremental_then_full_with_markov: Path, tmp_path: Path
) -> None:
    """A build with nothing new leaves the effects as they were: conversion_attribution recomputes no
    row, and every table stays as the full refresh left it."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(incremental_then_full_with_markov, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema before_build")
        for relation in (*MARTS, "intermediate.int_attribution_markov_effects"):
            con.execute(f"create table before_build.{relation.split('.')[1]} as select * from {relation}")
    dbt_build(warehouse, tmp_path / "target", markov=True)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (conversions,) = con.execute(
            "select count(distinct conversion_id) from marts.conversion_attribution"
        ).fetchone()
        (markov_only, linear) = con.execute(
            """
            select
                (select count(*) from audit.conversion_attribution_touched_keys as touched
                 where attribution_model = 'markov' and conversion_id not in (
                     select conversion_id from audit.conversion_attribution_touched_keys
                     where attribution_model = 'linear')),
                (select count(*) from audit.conversion_attribution_touched_keys where attribution_model = 'linear')
            """
        ).fetchone()
        for relation in (*MARTS, "intermediate.int_attribution_markov_effects"):
            assert differences(con, f"before_build.{relation.split('.')[1]}", relation) == (0, 0), relation
    # No load is read again (`>`): no conversion is recomputed, in any model.
    assert (markov_only, linear) == (0, 0), conversions


def test_markov_switched_off_then_on_equals_full_refresh(
    incremental_then_full_with_markov: Path, tmp_path: Path
) -> None:
    """With attribution_markov false an incremental build drops the markov rows and keeps the others (they
    do not depend on the effects); switched on again with nothing new, every markov row is recomputed from
    the stored linear paths and equals the full refresh."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(incremental_then_full_with_markov, warehouse)
    relations = ("intermediate.int_attribution_credits", "marts.conversion_attribution")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema full_refresh")
        for relation in (*relations, "marts.conversion_metrics"):
            con.execute(f"create table full_refresh.{relation.split('.')[1]} as select * from {relation}")
    dbt_build(warehouse, tmp_path / "target")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for relation in relations:
            (markov_rows,) = con.execute(
                f"select count(*) from {relation} where attribution_model = 'markov'"
            ).fetchone()
            assert markov_rows == 0, relation
            full = (
                f"(select * from full_refresh.{relation.split('.')[1]} where attribution_model <> 'markov')"
            )
            assert differences(con, full, relation) == (0, 0), relation
    dbt_build(warehouse, tmp_path / "target", markov=True)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for relation in (*relations, "marts.conversion_metrics"):
            (markov_rows,) = con.execute(
                f"select count(*) from {relation} where attribution_model = 'markov'"
            ).fetchone()
            assert markov_rows > 0, relation
            assert differences(con, f"full_refresh.{relation.split('.')[1]}", relation) == (0, 0), relation
