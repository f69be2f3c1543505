"""Identity stitching: a link that lands after the visitor's touches re-attributes them on the next
incremental run, equal to a full refresh.

The first batch lands anonymous touches (a paid landing of a visitor known only by a cookie id, another
cookie that is never linked), a purchase by a known person, and a purchase made with only a cookie id. The
second batch links two cookies to their persons (one of them the buyer: the paid touch now precedes her
purchase), a conflicting observation of a third cookie, and a new anonymous event of a linked cookie. A
third batch lands an observation observed earlier than the one that won, for another person: the cookie
moves to that person; so do cookie-f and cookie-g, whose first persons keep events and conversions of their
own, which must be recomputed without the moved rows. After each batch `dbt build` runs incrementally; every table of the intermediate and
mart layers must then hold the same rows as after `dbt build --full-refresh` (EXCEPT ALL both ways).
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from test_adjustments_incremental import keep_then_full_refresh, load, query
from test_conversion_event_incremental import run_dbt

from pipelines.warehouse import connect, ensure_raw_schema

pytestmark = pytest.mark.dbt

SELECTION = ["--exclude", "test_type:unit"]
PAID = {"utm_source": "facebook", "utm_medium": "paid_social", "utm_campaign": "spring"}


def event(
    event_id: str, name: str, time: str, person: str | None, cookie: str | None, **fields: object
) -> dict:
    return {
        "event_id": event_id,
        "person_id": person,
        "anonymous_id": cookie,
        "event_name": name,
        "event_time": time,
        "source": "pixel",
        **fields,
    }


def conversion(
    event_id: str, kind: str, time: str, person: str | None, cookie: str | None, value: int = 0
) -> dict:
    return {
        "event_id": event_id,
        "person_id": person,
        "anonymous_id": cookie,
        "conversion_type": kind,
        "conversion_source": "capi",
        "conversion_time": time,
        "value_cents": value,
        "currency": "USD",
    }


def identity(cookie: str, person: str, time: str, source: str = "login") -> dict:
    return {"anonymous_id": cookie, "person_id": person, "observed_at": time, "source": source}


EVENTS_0 = [event("c-view", "page_view", "2025-03-01 08:00:00+00", "p-c", None)]  # an earlier load
EVENTS_1 = [
    event(
        "a-land", "landing_page_view", "2025-03-01 09:00:00+00", None, "cookie-a", campaign_id="c1", **PAID
    ),
    event(
        "b-land", "landing_page_view", "2025-03-01 10:00:00+00", None, "cookie-b", campaign_id="c2", **PAID
    ),
    event(
        "c-land", "landing_page_view", "2025-03-02 08:00:00+00", "p-c", "cookie-c", campaign_id="c3", **PAID
    ),
    event(
        "d-land", "landing_page_view", "2025-03-02 07:00:00+00", None, "cookie-d", campaign_id="c1", **PAID
    ),
    event("a-cart", "add_to_cart", "2025-03-01 10:05:00+00", "p-a", None),
    event("f1-land", "landing_page_view", "2025-03-04 08:00:00+00", "p-f1", None),
    event("f-cart", "add_to_cart", "2025-03-04 09:00:00+00", None, "cookie-f"),
    event("f-checkout", "checkout_started", "2025-03-04 09:05:00+00", None, "cookie-f"),
    event(
        "g-land", "landing_page_view", "2025-03-05 09:00:00+00", None, "cookie-g", campaign_id="c2", **PAID
    ),
    event("g1-view", "page_view", "2025-03-05 11:00:00+00", "p-g1", None),
]
CONVERSIONS_1 = [
    conversion("a-signup", "signup", "2025-03-01 10:00:00+00", "p-a", None),
    conversion("a-buy", "purchase", "2025-03-01 10:10:00+00", "p-a", None, 5000),
    conversion("d-buy", "purchase", "2025-03-02 07:30:00+00", None, "cookie-d", 3000),
    conversion("c-signup", "signup", "2025-03-02 08:10:00+00", "p-c", "cookie-c"),
    # p-f1 signs up on her own; cookie-f's cart and checkout are linked to her, then relinked away.
    conversion("f1-signup", "signup", "2025-03-04 08:30:00+00", "p-f1", None),
    # cookie-g buys after a paid landing; p-g1 buys later on her own (no touch of her own).
    conversion("g-buy", "purchase", "2025-03-05 09:30:00+00", None, "cookie-g", 4000),
    conversion("g1-buy", "purchase", "2025-03-05 12:00:00+00", "p-g1", None, 2000),
]
IDENTITIES_2 = [
    identity("cookie-a", "p-a", "2025-03-01 09:59:00+00", "signup"),
    identity("cookie-d", "p-d", "2025-03-02 07:20:00+00"),
    identity("cookie-c", "p-x", "2025-03-03 12:00:00+00"),  # conflicts with the event observation of p-c
    identity("cookie-f", "p-f1", "2025-03-04 10:00:00+00"),
    identity("cookie-g", "p-g1", "2025-03-05 10:00:00+00"),
]
EVENTS_2 = [
    event(
        "a-land-2", "landing_page_view", "2025-03-03 09:00:00+00", None, "cookie-a", campaign_id="c2", **PAID
    ),
]
# Observed before p-d's link, landed after it: cookie-d (its touch and its purchase) moves to p-e.
# The same for cookie-f and cookie-g, whose first persons keep rows of their own: p-f1 her landing and
# signup (her funnel falls back from checkout to signup), p-g1 her purchase (it loses cookie-g's paid
# touch and becomes her first purchase).
IDENTITIES_3 = [
    identity("cookie-d", "p-e", "2025-03-02 07:10:00+00", "signup"),
    identity("cookie-f", "p-f2", "2025-03-04 07:00:00+00", "signup"),
    identity("cookie-g", "p-g2", "2025-03-05 08:00:00+00", "signup"),
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


def land_first_loads(warehouse: Path) -> None:
    """The first batches, before any identity: two loads of events (touches) and one of conversions."""
    con = connect(warehouse)
    ensure_raw_schema(con)
    load(con, "events", "load-0", "2025-03-06 00:00:00+00", EVENTS_0)
    load(con, "events", "load-1", "2025-03-07 00:00:00+00", EVENTS_1)
    load(con, "conversions", "load-2", "2025-03-07 00:00:00+00", CONVERSIONS_1)
    con.close()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("identities")
    warehouse, target = root / "warehouse.duckdb", root / "target"
    land_first_loads(warehouse)
    run_dbt(["build", *SELECTION], warehouse, target)

    con = connect(warehouse)
    con.execute("create schema if not exists before_link")
    con.execute(
        "create table before_link.person_of as select event_id, person_id from marts.conversion_event"
    )
    load(con, "identities", "load-3", "2025-03-08 00:00:00+00", IDENTITIES_2)
    load(con, "events", "load-4", "2025-03-08 00:00:00+00", EVENTS_2)
    # A mark on an event the link does not touch: an incremental run leaves it, a rebuild would not.
    con.execute(
        "update intermediate.int_events_deduplicated set browser = 'untouched' where event_id = 'c-view'"
    )
    con.close()
    run_dbt(["build", *SELECTION], warehouse, target)

    con = connect(warehouse)
    marks = con.execute(
        "select event_id from intermediate.int_events_deduplicated where browser = 'untouched'"
    ).fetchall()
    (root / "marks.json").write_text(json.dumps([event_id for (event_id,) in marks]))
    con.execute("update intermediate.int_events_deduplicated set browser = null where event_id = 'c-view'")
    con.close()

    con = connect(warehouse)
    con.execute("create schema if not exists after_link")
    con.execute("create table after_link.person_of as select event_id, person_id from marts.conversion_event")
    con.execute(
        "create table after_link.funnels as select person_id, funnel_name, completed_steps "
        "from marts.conversion_funnel where person_id in ('p-f1', 'p-g1')"
    )
    con.execute(
        "create table after_link.summaries as select person_id, purchases, is_repeat_purchaser "
        "from marts.person_conversion_summary where person_id in ('p-f1', 'p-g1')"
    )
    con.execute(
        "create table after_link.credits as select conversion_id, touchpoint_event_id, campaign_id "
        "from marts.conversion_attribution where attribution_model = 'last_touch'"
    )
    load(con, "identities", "load-5", "2025-03-09 00:00:00+00", IDENTITIES_3)
    con.close()
    run_dbt(["build", *SELECTION], warehouse, target)

    con = connect(warehouse)
    tables = _tables(con)
    con.close()
    keep_then_full_refresh(warehouse, target, SELECTION, {t: t.replace(".", "__") for t in tables})
    return warehouse


def test_incremental_equals_full_refresh(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = _tables(con)
        assert "marts.conversion_attribution" in tables and "marts.conversion_funnel" in tables
        different = []
        for table in tables:
            kept = f"scratch.{table.replace('.', '__')}"
            for left, right in ((kept, table), (table, kept)):
                extra = con.execute(f"select * from {left} except all select * from {right}").fetchall()
                if extra:
                    different.append(f"{left} has {len(extra)} row(s) not in {right}: {extra[:3]}")
    assert different == []


def test_the_link_moves_touches_and_conversions_to_the_person(warehouse: Path) -> None:
    assert query(warehouse, "select event_id, person_id from before_link.person_of order by 1") == [
        ("a-buy", "p-a"),
        ("a-signup", "p-a"),
        ("c-signup", "p-c"),
        ("d-buy", "anon:cookie-d"),
        ("f1-signup", "p-f1"),
        ("g-buy", "anon:cookie-g"),
        ("g1-buy", "p-g1"),
    ]
    assert query(warehouse, "select event_id, person_id from after_link.person_of order by 1") == [
        ("a-buy", "p-a"),
        ("a-signup", "p-a"),
        ("c-signup", "p-c"),
        ("d-buy", "p-d"),
        ("f1-signup", "p-f1"),
        ("g-buy", "p-g1"),
        ("g1-buy", "p-g1"),
    ]
    # After the third batch: the earlier observation wins.
    assert query(warehouse, "select event_id, person_id from marts.conversion_event order by 1") == [
        ("a-buy", "p-a"),
        ("a-signup", "p-a"),
        ("c-signup", "p-c"),
        ("d-buy", "p-e"),
        ("f1-signup", "p-f1"),
        ("g-buy", "p-g2"),
        ("g1-buy", "p-g1"),
    ]
    touchpoints = query(
        warehouse, "select touchpoint_event_id, person_id from intermediate.int_touchpoints order by 1"
    )
    assert touchpoints == [
        ("a-land", "p-a"),
        ("a-land-2", "p-a"),
        ("b-land", "anon:cookie-b"),
        ("c-land", "p-c"),
        ("d-land", "p-e"),
        ("g-land", "p-g2"),
    ]


def test_the_paid_touch_gets_credit_after_the_link(warehouse: Path) -> None:
    credited = query(
        warehouse,
        """
        select conversions.event_id, credits.touchpoint_event_id, credits.campaign_id, credits.credit
        from intermediate.int_attribution_credits as credits
        inner join intermediate.int_conversions_deduplicated as conversions on credits.conversion_id = conversions.id
        where credits.attribution_model = 'last_touch'
        order by 1
        """,
    )
    # The purchases are credited to the paid landing their cookie made before the person was known;
    # p-g1's own purchase no longer has cookie-g's landing (relinked to p-g2) and is unattributed.
    assert [row[:3] for row in credited] == [
        ("a-buy", "a-land", "c1"),
        ("a-signup", "a-land", "c1"),
        ("c-signup", "c-land", "c3"),
        ("d-buy", "d-land", "c1"),
        ("f1-signup", None, "(unattributed)"),
        ("g-buy", "g-land", "c2"),
        ("g1-buy", None, "(unattributed)"),
    ]


def test_conflicts_are_listed_not_applied(warehouse: Path) -> None:
    rows = query(
        warehouse,
        "select anonymous_id, mapped_person_id, conflicting_person_id, observation_kind, _source_row "
        "from reports.rpt_identity_conflicts order by 1, 3",
    )
    assert rows == [
        ("cookie-c", "p-c", "p-x", "identity", 3),
        ("cookie-d", "p-e", "p-d", "identity", 2),
        ("cookie-f", "p-f2", "p-f1", "identity", 4),
        ("cookie-g", "p-g2", "p-g1", "identity", 5),
    ]


def test_the_link_run_was_incremental(warehouse: Path) -> None:
    # The run after the link rewrote the re-linked events, not the untouched one.
    assert json.loads((warehouse.parent / "marks.json").read_text()) == ["c-view"]


def test_only_the_unlinked_cookie_stays_a_pseudo_person(warehouse: Path) -> None:
    for table in (
        "marts.conversion_funnel",
        "marts.person_conversion_summary",
        "intermediate.int_touchpoints",
    ):
        persons = query(warehouse, f"select distinct person_id from {table} where person_id like 'anon:%'")
        assert persons == [("anon:cookie-b",)], table


def test_the_relink_recomputes_the_person_it_moved_away_from(warehouse: Path) -> None:
    # p-f1 keeps her own landing and signup: her funnel falls back from checkout (4 steps, with cookie-f's
    # cart and checkout) to signup.
    assert query(
        warehouse,
        "select funnel_name, completed_steps from after_link.funnels where person_id = 'p-f1' "
        "and funnel_name = 'signup_to_purchase'",
    ) == [("signup_to_purchase", 4)]
    assert query(
        warehouse,
        "select funnel_name, completed_steps from marts.conversion_funnel where person_id = 'p-f1' "
        "and funnel_name = 'signup_to_purchase'",
    ) == [("signup_to_purchase", 2)]
    # p-g1 keeps her own purchase: it was a repeat purchase credited to cookie-g's paid landing; now it
    # is her only purchase and has no touch.
    g1_buy = "select id from marts.conversion_event where event_id = 'g1-buy'"
    assert query(
        warehouse, f"select touchpoint_event_id from after_link.credits where conversion_id = ({g1_buy})"
    ) == [("g-land",)]
    assert query(
        warehouse,
        "select touchpoint_event_id, touches_in_path from marts.conversion_attribution "
        f"where attribution_model = 'last_touch' and conversion_id = ({g1_buy})",
    ) == [(None, 0)]
    assert query(
        warehouse, "select purchases, is_repeat_purchaser from after_link.summaries where person_id = 'p-g1'"
    ) == [(2, True)]
    assert query(
        warehouse,
        "select purchases, is_repeat_purchaser from marts.person_conversion_summary where person_id = 'p-g1'",
    ) == [(1, False)]
    assert query(
        warehouse,
        "select person_id, previous_person_id from intermediate.int_identity_previous_persons order by 1",
    ) == [("p-e", "p-d"), ("p-f2", "p-f1"), ("p-g2", "p-g1")]
