"""The simulation as rows of each stream (``events``, ``conversions``, ``ad_spend``, ``adjustments``,
``identities``) in the raw contract.

Repeated values are Enum columns; times stay epoch ms with ``__sfx_``/``__shift_`` columns saying how the
writer prints them.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipelines.contract import EVENT_SOURCES
from pipelines.generate.behaviour import (
    SEG_CART,
    SEG_CHK,
    SEG_CLICK,
    SEG_LAND,
    SEG_RENDER,
    SEGMENT_EVENT_NAMES,
)
from pipelines.generate.config import GeneratorConfig
from pipelines.generate.conversions import (
    CONVERSION_SOURCE_NAMES,
    CONVERSION_TYPE_NAMES,
    PURCHASE,
    SIGNUP,
    VIDEO_RENDER,
    WEBHOOK,
)
from pipelines.generate.identity import person_pii
from pipelines.generate.randomness import Rng, uuids
from pipelines.generate.reference import (
    AD_ACCOUNT_CURRENCY,
    AD_FORMATS,
    ALL_REFERRERS,
    CATALOG,
    CURRENCIES,
    DEVICES,
    INSTAGRAM,
    META_PIXEL_IDS,
    PAGE_INDEX,
    PAGES,
    PLANS,
    SIGNUP_METHODS,
    SITE,
    SITE_URLS,
    TIME_FORMAT_WEIGHTS,
)
from pipelines.generate.series import enum_series, where
from pipelines.generate.simulation import Simulation


def _time_columns(
    name: str, t: pl.Series, time_format: pl.Series, city: pl.Series, cities: pl.DataFrame
) -> dict[str, pl.Series]:
    """A timestamp as epoch ms plus how to write it.

    ``__sfx_<name>`` is the offset suffix (``Z``, ``+00:00`` or the person's local offset; null = write epoch
    ms) and ``__shift_<name>`` the minutes to add before printing the local time for that suffix.
    """
    suffixes = enum_series(["Z", "+00:00", *cities["tz_suffix"].to_list()])
    frame = pl.DataFrame({"f": time_format, "city": city})
    index, shift = frame.select(
        pl.when(pl.col("f") == 0)
        .then(0)
        .when(pl.col("f") == 1)
        .then(1)
        .when(pl.col("f") == 2)
        .then(pl.col("city") + 2),
        pl.when(pl.col("f") == 2)
        .then(pl.lit(cities["tz_minutes"]).gather(pl.col("city")))
        .otherwise(0)
        .cast(pl.Int32),
    )
    return {name: t, f"__sfx_{name}": suffixes.gather(index), f"__shift_{name}": shift}


def _events_frame(sim: Simulation, config: GeneratorConfig, rng: Rng) -> pl.DataFrame:
    events, sessions, persons, world = sim.events, sim.sessions, sim.persons, sim.world
    cities, n = world.cities, sim.events.height
    s, seg, item = events["s"], events["seg"], events["item"]
    p = sessions["p"].gather(s)
    city, device = persons["city"].gather(p), persons["device"].gather(p)
    channel = sessions["channel"].gather(s)
    frame = pl.DataFrame({"s": s, "seg": seg, "item": item, "channel": channel})
    # source: the app reports its own events, 15% of checkout steps come from the server (CAPI), the rest
    # from the pixel
    source = frame.select(
        pl.when(pl.lit(sessions["app"].gather(s)) & (pl.col("seg") != SEG_CLICK))
        .then(3)
        .when((pl.col("seg") == SEG_CHK) & (pl.lit(rng.uniform("event.server_checkout", n)) < 0.15))
        .then(1)
        .otherwise(0)
    ).to_series()
    web, not_click = source == 0, seg != SEG_CLICK
    # attribution rides on the ad click and the landing of tagged visits (paid, newsletter, tagged organic)
    touch = frame.select(
        pl.when(
            (pl.col("seg") <= SEG_LAND) & pl.lit(sessions["utm_source"].is_not_null()).gather(pl.col("s"))
        ).then(pl.col("s"))
    ).to_series()
    page = rng.choice("event.page", n, [w for _, _, w in PAGES])
    # properties: the visit's own snippet for its ad click and landing; later steps by segment and page/item
    off = world.snippet_offsets
    placement = rng.integers("event.placement", sessions.height, 0, 4)
    entry = sessions.select(
        click=pl.when(pl.col("channel") <= INSTAGRAM)
        .then(off["click_meta"] + (pl.col("channel") * 4 + placement) * len(AD_FORMATS) + pl.col("ad_format"))
        .otherwise(off["click_google"] + pl.col("ad_format")),
        landing=off["landing"] + pl.col("landing_page") * len(ALL_REFERRERS) + pl.col("referrer"),
    )
    step_offset = pl.Series([0, 0, off["page"], off["cart"], off["checkout"], off["render"], off["page"]])
    snippet = frame.select(
        pl.when(pl.col("seg") == SEG_CLICK)
        .then(pl.lit(entry["click"]).gather(pl.col("s")))
        .when(pl.col("seg") == SEG_LAND)
        .then(pl.lit(entry["landing"]).gather(pl.col("s")))
        .otherwise(pl.lit(step_offset).gather(pl.col("seg")) + pl.col("item").fill_null(pl.lit(page)))
    ).to_series()
    site_page = (
        frame.with_columns(page=page)
        .select(
            pl.when(pl.col("seg") == SEG_CART)
            .then(len(PAGES) + pl.col("item") // 3)
            .when(pl.col("seg") == SEG_CHK)
            .then(PAGE_INDEX["/checkout"])
            .when(pl.col("seg") == SEG_RENDER)
            .then(PAGE_INDEX["/editor"])
            .otherwise(pl.col("page"))
        )
        .to_series()
    )
    url = frame.select(
        pl.when(pl.lit(source) == 3)
        .then(None)
        .when(pl.col("seg") <= SEG_LAND)
        .then(pl.lit(sessions["landing_url"]).gather(pl.col("s")))
        .otherwise(pl.lit(SITE_URLS).gather(pl.lit(site_page)))
    ).to_series()
    cookies = web & not_click
    person_id, anonymous_id = _event_ids(sim, rng, p, events["t"], web)
    values: dict[str, pl.Series] = {
        "event_id": uuids(pl.int_range(n, dtype=pl.Int64, eager=True), rng.key("event.id")),
        "person_id": person_id,
        "anonymous_id": anonymous_id,
        "event_name": enum_series(SEGMENT_EVENT_NAMES).gather(seg),
        **_time_columns(
            "event_time",
            events["t"],
            rng.choice("event.time_format", n, TIME_FORMAT_WEIGHTS["events"]),
            city,
            cities,
        ),
        "source": enum_series(EVENT_SOURCES).gather(source),
        **{name: sessions[name].gather(touch) for name in _ATTRIBUTION_COLUMNS},
        **_device_and_place(device, city, cities),
        "event_source_url": url,
        "client_ip_address": persons["ip"].gather(p),
        "client_user_agent": enum_series([d[4] for d in DEVICES]).gather(device),
        "fbp": where(cookies, persons["fbp"].gather(p)),
        "fbc": where(cookies, sessions["fbc"].gather(s)),
        "properties": world.snippets.gather(snippet),
    }
    return pl.DataFrame(values)


_ATTRIBUTION_COLUMNS = (
    "campaign_id",
    "ad_set_id",
    "ad_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "fbclid",
)


# Identity stitching. A share of persons browse anonymously (their events carry a cookie's anonymous_id and
# no person_id) until they first convert (sign up, buy): an identity row links the two then, and their later
# web events and their conversions carry both ids. Those who never convert stay anonymous (pseudo-persons
# in the warehouse). A few anonymous ids are later seen with another person (a shared device): identity
# rows that conflict with the first one, which the warehouse ignores and reports.
ANONYMOUS_BROWSING_SHARE = 0.35
CONFLICT_SHARE = 0.03


def _anonymous_ids(sim: Simulation, rng: Rng) -> pl.Series:
    """Per person (row index p): the anonymous id of a person who browses anonymously, else null."""
    n = sim.persons.height
    browsing = rng.uniform("identity.anonymous", n) < ANONYMOUS_BROWSING_SHARE
    ids = uuids(pl.int_range(n, dtype=pl.Int64, eager=True), rng.key("identity.anonymous_id"))
    return where(browsing, "anon-" + ids)


def _identified_at(sim: Simulation) -> pl.Series:
    """Per person: the time (epoch ms) of the first reported conversion in the range, null without one."""
    first = sim.conversions.group_by("p").agg(pl.col("t").min())
    return (
        pl.repeat(None, sim.persons.height, dtype=pl.Int64, eager=True)
        .scatter(first["p"], first["t"].cast(pl.Int64))
        .rename("identified_at")
    )


def _event_ids(
    sim: Simulation, rng: Rng, p: pl.Series, t: pl.Series, web: pl.Series
) -> tuple[pl.Series, pl.Series]:
    """person_id and anonymous_id of each event: anonymous only before the person is identified, both on
    later web events of a person who browsed anonymously (the cookie is still there), else person_id."""
    anonymous = _anonymous_ids(sim, rng).gather(p)
    identified_at = _identified_at(sim).gather(p)
    frame = pl.DataFrame({"person_id": sim.persons["person_id"].gather(p), "anonymous_id": anonymous})
    before = (anonymous.is_not_null() & (identified_at.is_null() | (t < identified_at))).fill_null(False)
    person_id = frame.select(pl.when(pl.lit(before)).then(None).otherwise(pl.col("person_id"))).to_series()
    keeps_cookie = before | (web & anonymous.is_not_null()).fill_null(False)
    return person_id.rename("person_id"), where(keeps_cookie, anonymous).rename("anonymous_id")


def _identities_frame(sim: Simulation, config: GeneratorConfig, rng: Rng) -> pl.DataFrame:
    """One identity row per anonymously browsing person who converts (at the first conversion: a sign-up
    or a login at checkout), plus a few later rows linking the same anonymous id to another person."""
    anonymous, identified_at = _anonymous_ids(sim, rng), _identified_at(sim)
    first_type = sim.conversions.sort("t", maintain_order=True).group_by("p", maintain_order=True).first()
    kind = pl.repeat(None, sim.persons.height, dtype=pl.Int64, eager=True).scatter(
        first_type["p"], first_type["type"].cast(pl.Int64)
    )
    persons = pl.DataFrame(
        {
            "p": pl.int_range(sim.persons.height, dtype=pl.Int64, eager=True),
            "anonymous_id": anonymous,
            "person_id": sim.persons["person_id"].cast(pl.String),
            # the login or sign-up a moment before the conversion it leads to is reported
            "observed_at": identified_at - 1_000,
            "kind": kind,
        }
    ).filter(pl.col("anonymous_id").is_not_null() & pl.col("observed_at").is_not_null())
    first = persons.select(
        "anonymous_id",
        "person_id",
        "observed_at",
        source=pl.when(pl.col("kind") == SIGNUP).then(pl.lit("signup")).otherwise(pl.lit("login")),
    )
    # Conflicts: the same cookie seen later with the next person of the list (a shared or sold device).
    m = persons.height
    shared = rng.uniform("identity.conflict", m) < CONFLICT_SHARE
    later = rng.log_uniform("identity.conflict_delay", m, 3_600_000, 10 * 86_400_000).cast(pl.Int64)
    others = persons["person_id"].shift(-1).fill_null(persons["person_id"].head(1))
    conflicts = pl.DataFrame(
        {
            "anonymous_id": persons["anonymous_id"],
            "person_id": others,
            "observed_at": persons["observed_at"] + later,
            "source": pl.repeat("login", m, dtype=pl.String, eager=True),
        }
    ).filter(pl.lit(shared) & (pl.col("person_id") != persons["person_id"]))
    end_ms = (config.end - dt.date(1970, 1, 1)).days * 86_400_000
    frame = pl.concat([first, conflicts]).filter(pl.col("observed_at") < end_ms)
    return frame.with_columns(
        __sfx_observed_at=enum_series(["Z"]).gather(pl.repeat(0, frame.height, dtype=pl.Int64, eager=True)),
        __shift_observed_at=pl.repeat(0, frame.height, dtype=pl.Int32, eager=True),
    ).sort("observed_at", "anonymous_id", maintain_order=True)


def _device_and_place(device: pl.Series, city: pl.Series, cities: pl.DataFrame) -> dict[str, pl.Series]:
    return {
        "device_type": enum_series([d[0] for d in DEVICES]).gather(device),
        "browser": enum_series([d[2] for d in DEVICES]).gather(device),
        "os": enum_series([d[1] for d in DEVICES]).gather(device),
        "country": enum_series(cities["country"].to_list()).gather(city),
        "city": enum_series(cities["city"].to_list()).gather(city),
    }


def _conversions_frame(sim: Simulation, config: GeneratorConfig, rng: Rng) -> pl.DataFrame:
    rows, persons, sessions, world = sim.conversions, sim.persons, sim.sessions, sim.world
    cities = world.cities
    p, s, ctype, source = rows["p"], rows["s"], rows["type"], rows["source"]
    city, device = persons["city"].gather(p), persons["device"].gather(p)
    # identity fields only for the persons who convert; ``slot`` = a row's person among them
    converting = p.unique().sort()
    pii = person_pii(persons[converting], cities, rng)
    slot = (
        pl.repeat(None, persons.height, dtype=pl.Int64, eager=True)
        .scatter(converting, pl.int_range(converting.len(), dtype=pl.Int64, eager=True))
        .gather(p)
    )

    def has(field: str) -> pl.Series:
        return rows[f"has_{field}"]

    def person(name: str) -> pl.Series:
        return persons[name].gather(p)

    def spelled(field: str, spellings: int, bits: int, mask: pl.Series) -> pl.Series:
        """The person's ``field`` in one of its spellings (chosen by the row's draw), where ``mask``."""
        stacked = pl.concat([pii[f"{field}{i}"] for i in range(spellings)], rechunk=True)
        choice = (rows["spelling"] // bits) % spellings
        return where(mask, stacked.gather(choice * pii.height + slot)).alias(field)

    touch = where(has("attribution"), sessions["touch_session"].gather(s))
    type_urls = enum_series(
        [
            f"{SITE}/signup/complete",
            f"{SITE}/editor",
            f"{SITE}/checkout/thank-you",
            f"{SITE}/billing/success",
        ]
    )
    order_id = pl.select(pl.concat_str([pl.lit("FC-"), pl.lit(rows["order"]).cast(pl.String)])).to_series()
    # every branch below is evaluated on every row: indexes are clipped so other types' rows stay in range
    frame = pl.DataFrame(
        {
            "type": ctype,
            "value": rows["value_cents"],
            "item": rows["item"].fill_null(0),
            "method": rows["method"],
        }
    )
    renders = world.snippets.cast(pl.String)
    off = world.snippet_offsets
    properties = frame.select(
        pl.when(pl.col("type") == SIGNUP)
        .then(pl.format('{{"method":"{}"}}', pl.lit(pl.Series(SIGNUP_METHODS)).gather(pl.col("method"))))
        .when(pl.col("type") == VIDEO_RENDER)
        .then(pl.lit(renders).gather((off["render"] + pl.col("item")).clip(0, renders.len() - 1)))
        .when(pl.col("type") == PURCHASE)
        .then(
            pl.format(
                '{{"sku":"{}","items":{},"unit_price_cents":{}}}',
                pl.lit(pl.Series([c[0] for c in CATALOG])).gather(
                    (pl.col("item") // 3).clip(0, len(CATALOG) - 1)
                ),
                pl.col("item") % 3 + 1,
                pl.col("value") // (pl.col("item") % 3 + 1),
            )
        )
        .otherwise(
            pl.format(
                '{{"plan":"{}","billing_period":"monthly","renewal":{}}}',
                pl.lit(pl.Series(PLANS)).gather(pl.col("item").clip(0, len(PLANS) - 1)),
                pl.lit(rows["renewal"]).cast(pl.String),
            )
        )
    ).to_series()
    values: dict[str, pl.Series] = {
        "event_id": uuids(rows["key"], rng.key("conversion.id")),
        "person_id": person("person_id"),
        # a visitor who browsed anonymously still carries the cookie's id: each such row links the two
        "anonymous_id": _anonymous_ids(sim, rng).gather(p),
        "conversion_type": enum_series(CONVERSION_TYPE_NAMES).gather(ctype),
        "conversion_source": enum_series(CONVERSION_SOURCE_NAMES).gather(source),
        "value_cents": rows["value_cents"],
        "currency": where(rows["has_currency"], enum_series(CURRENCIES).gather(person("currency"))),
        **_time_columns("conversion_time", rows["t"], rows["time_format"], city, cities),
        **{name: sessions[name].gather(touch) for name in _ATTRIBUTION_COLUMNS},
        **{
            name: where(
                has("city" if name == "city" else "country" if name == "country" else "device"), column
            )
            for name, column in _device_and_place(device, city, cities).items()
        },
        "meta_pixel_id": where(has("pixel_id"), enum_series(META_PIXEL_IDS).gather(rows["pixel_id"])),
        "order_id": order_id,
        "email": spelled("email", 3, 1, has("email")),
        "phone": spelled("phone", 3, 3, has("phone")),
        "first_name": spelled("first_name", 3, 9, has("name")),
        "last_name": spelled("last_name", 3, 9, has("name")),
        "date_of_birth": spelled("date_of_birth", 3, 27, has("date_of_birth")),
        "gender": spelled("gender", 4, 81, has("gender")),
        "state": spelled("state", 3, 324, has("state")),
        "zip": spelled("zip", 3, 972, has("zip")),
        "external_id": where(
            has("external_id"),
            pl.select(
                pl.when(pl.lit(source) == WEBHOOK)
                .then(pl.lit(pii["crm_id"].gather(slot)))
                .otherwise(pl.lit(person("person_id")).cast(pl.String))
            ).to_series(),
        ),
        "event_source_url": where(has("event_source_url"), type_urls.gather(ctype)),
        "client_ip_address": where(has("client"), person("ip")),
        "client_user_agent": where(has("client"), enum_series([d[4] for d in DEVICES]).gather(device)),
        "fbp": where(has("fbp"), person("fbp")),
        "fbc": where(has("fbc"), sessions["fbc"].gather(s)),
        "properties": properties,
    }
    return pl.DataFrame(values)


def _ad_spend_frame(sim: Simulation, config: GeneratorConfig, rng: Rng) -> pl.DataFrame:
    """Daily delivery per ad: every click of the events is counted; some days deliver without a click."""
    ads = sim.world.ads
    delivery = (
        sim.world.calendar.select("day", "ad")
        .join(sim.clicks, on=["day", "ad"], how="full", coalesce=True)
        .with_columns(pl.col("clicks").fill_null(0))
        .sort("day", "ad")
    )
    delivery = delivery.filter(
        (pl.col("clicks") > 0) | (rng.uniform("spend.delivered", delivery.height) < 0.55)
    )
    n = delivery.height
    ad = delivery["ad"]
    ctr = (ads["ctr"].gather(ad) * rng.log_uniform("spend.ctr", n, 0.75, 1.33)).clip(0.005, 0.03)
    frame = delivery.with_columns(
        ctr=ctr,
        cpm=ads["cpm_cents"].gather(ad),
        cpc=ads["cpc_cents"].gather(ad),
        noise=rng.log_uniform("spend.noise", n, 0.85, 1.18),
        idle=rng.integers("spend.idle_impressions", n, 40, 900),
    ).with_columns(
        impressions=pl.when(pl.col("clicks") > 0)
        .then((pl.col("clicks") / pl.col("ctr")).ceil().cast(pl.Int64))
        .otherwise(pl.col("idle"))
    )
    frame = frame.with_columns(
        spend_cents=pl.when(pl.col("cpm").is_not_null())
        .then(pl.col("impressions") * pl.col("cpm") / 1000 * pl.col("noise"))
        .otherwise(pl.col("clicks") * pl.col("cpc") * pl.col("noise"))
        .round()
        .cast(pl.Int64)
    )
    out = pl.DataFrame(
        {
            "date": pl.select(pl.lit(config.start) + pl.duration(days=pl.lit(frame["day"]))).to_series(),
            **{
                name: enum_series(ads[name].to_list()).gather(ad)
                for name in ("campaign_id", "campaign_name", "ad_set_id", "ad_set_name", "ad_id", "ad_name")
            },
            "spend_cents": frame["spend_cents"],
            "currency": enum_series([AD_ACCOUNT_CURRENCY] * max(n, 1)).head(n),
            "impressions": frame["impressions"],
            "clicks": frame["clicks"],
        }
    )
    return out.sort("date", "campaign_id", "ad_set_id", "ad_id", maintain_order=True)


# Shares of valued conversions (purchases, subscriptions) adjusted after the fact, by adjustment type, and
# the share of refunds that return part of the value only.
REFUND_SHARE, CHARGEBACK_SHARE, RESTATEMENT_SHARE, PARTIAL_REFUND_SHARE = 0.05, 0.006, 0.01, 0.3
FORCED_ADJUSTMENT_KINDS = (0, 2, 1)  # refund, restatement, chargeback
ADJUSTMENT_REASONS = {
    "refund": ("requested_by_customer", "duplicate_order", "not_as_described"),
    "chargeback": ("fraudulent", "product_not_received", "unrecognized"),
    "restatement": ("price_correction", "tax_recalculated", "upgrade"),
}


def _adjustments_frame(sim: Simulation, config: GeneratorConfig, rng: Rng) -> pl.DataFrame:
    """Refunds, chargebacks and restatements of valued conversions, some hours to weeks after them.

    One adjustment at most per conversion (the first reported copy of its key), none after the end of the
    range; the first three valued conversions are always adjusted. A refund returns the whole value or (a share of refunds) part of it; a chargeback the whole
    value; a restatement states a new total between half and 1.2 times the value. Amounts are in the
    conversion's own currency.
    """
    rows, persons = sim.conversions, sim.persons
    end_ms = (config.end - dt.date(1970, 1, 1)).days * 86_400_000
    firsts = (
        rows.with_columns(currency=pl.lit(persons["currency"]).gather(pl.col("p")))
        .filter((pl.col("value_cents").fill_null(0) > 0) & pl.col("has_currency"))
        .unique("key", keep="first", maintain_order=True)
    )
    n = firsts.height
    draw = rng.uniform("adjustment.kind", n)
    # The first few valued conversions are always adjusted (a refund, a restatement, a chargeback), so a
    # small data set still exercises every adjustment type.
    forced = pl.int_range(n, dtype=pl.Int64, eager=True)
    kind = pl.select(
        pl.when(pl.lit(draw) < REFUND_SHARE)
        .then(0)
        .when(pl.lit(draw) < REFUND_SHARE + CHARGEBACK_SHARE)
        .then(1)
        .when(pl.lit(draw) < REFUND_SHARE + CHARGEBACK_SHARE + RESTATEMENT_SHARE)
        .then(2)
        .when(pl.lit(forced) < len(FORCED_ADJUSTMENT_KINDS))
        .then(pl.lit(pl.Series(FORCED_ADJUSTMENT_KINDS, dtype=pl.Int64)).gather(pl.lit(forced).clip(0, 2)))
        .otherwise(None)
    ).to_series()
    value = firsts["value_cents"]
    partial = rng.uniform("adjustment.partial", n) < PARTIAL_REFUND_SHARE
    share = rng.uniform("adjustment.share", n)
    amount = pl.select(
        pl.when(pl.lit(kind) == 2)
        .then((pl.lit(value) * (0.5 + 0.7 * pl.lit(share))).round())
        .when((pl.lit(kind) == 0) & pl.lit(partial))
        .then((pl.lit(value) * (0.1 + 0.8 * pl.lit(share))).round())
        .otherwise(pl.lit(value))
        .cast(pl.Int64)
    ).to_series()
    delay = rng.log_uniform("adjustment.delay", n, 2 * 3_600_000, 45 * 86_400_000).cast(pl.Int64)
    # the always-adjusted ones happen within the range: at most halfway from the conversion to its end
    delay = pl.select(
        pl.when(pl.lit(forced) < len(FORCED_ADJUSTMENT_KINDS))
        .then(pl.min_horizontal(pl.lit(delay), (end_ms - pl.lit(firsts["t"])) // 2))
        .otherwise(pl.lit(delay))
    ).to_series()
    reason = rng.integers("adjustment.reason", n, 0, 3)
    types = ("refund", "chargeback", "restatement")
    frame = pl.DataFrame(
        {
            "adjustment_id": uuids(firsts["key"], rng.key("adjustment.id")),
            "conversion_event_id": uuids(firsts["key"], rng.key("conversion.id")),
            "conversion_type": enum_series(CONVERSION_TYPE_NAMES).gather(firsts["type"]),
            "adjustment_type": enum_series(list(types)).gather(kind),
            "amount_cents": amount,
            "currency": enum_series(CURRENCIES).gather(firsts["currency"]),
            "adjusted_at": firsts["t"] + delay,
            "reason": pl.select(
                pl.lit(pl.Series([r for t in types for r in ADJUSTMENT_REASONS[t]])).gather(
                    pl.lit(kind).fill_null(0) * 3 + pl.lit(reason)
                )
            ).to_series(),
        }
    )
    frame = frame.filter(pl.col("adjustment_type").is_not_null() & (pl.col("adjusted_at") < end_ms))
    return frame.with_columns(
        **{
            "__sfx_adjusted_at": enum_series(["Z"]).gather(
                pl.repeat(0, frame.height, dtype=pl.Int64, eager=True)
            )
        },
        __shift_adjusted_at=pl.repeat(0, frame.height, dtype=pl.Int32, eager=True),
    ).sort("adjusted_at", "adjustment_id", maintain_order=True)


# how each stream's rows are built from the simulation
STREAM_BUILDERS = {
    "events": _events_frame,
    "conversions": _conversions_frame,
    "ad_spend": _ad_spend_frame,
    "adjustments": _adjustments_frame,
    "identities": _identities_frame,
}
