"""Visitor behaviour: persons, their visits (channel, ad, tracking) and the events each visit is made of."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl

from pipelines.generate.config import MS_DAY, MS_HOUR, MS_MINUTE, MS_SECOND, GeneratorConfig, epoch_ms
from pipelines.generate.randomness import Rng, pick
from pipelines.generate.reference import (
    ALL_REFERRERS,
    CATALOG,
    DEVICES,
    FIRST_VISIT_CHANNELS,
    GOOGLE_ADS,
    INSTAGRAM,
    LANDINGS,
    NEWSLETTER,
    ORGANIC,
    PAGE_INDEX,
    POOL_GOOGLE,
    POOL_META_PROSPECTING,
    POOL_META_RETARGETING,
    QUANTITY_WEIGHTS,
    REFERRERS,
    RESOLUTIONS,
    RETURN_VISIT_CHANNELS,
    SITE_URLS,
    TEMPLATES,
)
from pipelines.generate.series import enum_series
from pipelines.generate.world import World, cities_table

# event segments, in the order they happen within a visit, and the session column that counts each
SEG_CLICK, SEG_LAND, SEG_PV_A, SEG_CART, SEG_CHK, SEG_RENDER, SEG_PV_B = range(7)
_SEGMENT_COUNTS = ("n_click", "n_land", "pv_a", "n_cart", "n_chk", "n_render", "pv_b")
SEGMENT_EVENT_NAMES = (
    "ad_click",
    "landing_page_view",
    "page_view",
    "add_to_cart",
    "checkout_started",
    "video_render_started",
    "page_view",
)
# the wait before an event of each segment, ms (log-uniform between the bounds)
_SEGMENT_GAPS = (
    (800, 4 * MS_SECOND),
    (1_500, 8 * MS_SECOND),
    (5 * MS_SECOND, 6 * MS_MINUTE),
    (10 * MS_SECOND, 5 * MS_MINUTE),
    (20 * MS_SECOND, 8 * MS_MINUTE),
    (30 * MS_SECOND, 15 * MS_MINUTE),
    (5 * MS_SECOND, 10 * MS_MINUTE),
)
_MOBILE_DEVICES = [i for i, device in enumerate(DEVICES) if device[0] != "desktop"]


def simulate_persons(config: GeneratorConfig, n: int, rng: Rng) -> pl.DataFrame:
    """One row per visitor: first arrival, place, device, first channel and what they tend to do."""
    t0 = epoch_ms(config.start)
    weekday0 = config.start.weekday()
    # weekends are quieter; traffic grows over the range as campaigns scale up
    day_weights = [
        (0.78 if (weekday0 + d) % 7 >= 5 else 1.0) * (1.0 + 0.35 * d / config.days)
        for d in range(config.days)
    ]
    # local hour of the first visit: quiet at night, peaks at lunch and in the evening
    hour_weights = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 10, 9, 8, 8, 8, 9, 10, 11, 11, 10, 7, 4)
    cities = cities_table()
    city = rng.choice("person.city", n, cities["weight"].to_list())
    tz_minutes = cities["tz_minutes"].gather(city).cast(pl.Int64)
    local_arrival = (
        rng.choice("person.day", n, day_weights) * MS_DAY
        + rng.choice("person.hour", n, hour_weights) * MS_HOUR
        + (rng.uniform("person.minute", n) * MS_HOUR).cast(pl.Int64)
    )
    return pl.DataFrame(
        {
            "p": pl.int_range(n, dtype=pl.Int64, eager=True),
            "arrival": (t0 + local_arrival - tz_minutes * MS_MINUTE).clip(t0, t0 + config.days * MS_DAY - 1),
            "city": city,
            "device": rng.choice("person.device", n, [d[3] for d in DEVICES]),
            "channel": rng.choice("person.channel", n, FIRST_VISIT_CHANNELS),
            "n_sessions": rng.choice("person.sessions", n, (40, 20, 12, 8, 6, 4, 3, 3, 2, 2)) + 1,
            "shopper": rng.uniform("person.shopper", n) < 0.3,
            "creator": rng.uniform("person.creator", n) < 0.3,
            "subscriber": rng.uniform("person.subscriber", n) < 0.45,
            "app_user": rng.uniform("person.app", n) < 0.12,
            # the currency they pay in: their country's, or USD (8% of people outside the US)
            "currency": pl.select(
                pl.when(pl.lit(rng.uniform("person.pays_usd", n)) < 0.08)
                .then(0)
                .otherwise(pl.lit(cities["currency_index"].gather(city)))
                .cast(pl.Int64)
            ).to_series(),
        }
    )


def simulate_sessions(config: GeneratorConfig, persons: pl.DataFrame, rng: Rng) -> pl.DataFrame:
    """Visits: 1..10 per person, minutes to weeks apart, each with a channel and how far it goes.

    The ``n_*``/``pv_*`` columns count the events of each step, in this order: ad_click, landing_page_view,
    page_view (first part), add_to_cart, checkout_started, video_render_started, page_view (the rest).
    ``signup``, ``purchase`` and ``subscribe`` mark the visits with those conversions (signup and subscribe
    happen once per person, purchases may repeat).
    """
    t1 = epoch_ms(config.end)
    sessions = (
        persons.select(
            "p", "arrival", "n_sessions", "channel", "shopper", "creator", "subscriber", "app_user", "device"
        )
        .with_columns(k=pl.int_ranges(0, pl.col("n_sessions")))
        .explode("k")
        .with_columns(pl.col("k").cast(pl.Int64))
    )
    n = sessions.height
    # time to the next visit: a third the same day, most within a week, some weeks later
    gap_kind = rng.choice("session.gap_kind", n, (30, 48, 22))
    gap = pl.select(
        pl.when(pl.lit(gap_kind) == 0)
        .then(pl.lit(rng.log_uniform("session.gap_same_day", n, 10 * MS_MINUTE, 8 * MS_HOUR)))
        .when(pl.lit(gap_kind) == 1)
        .then(pl.lit(rng.log_uniform("session.gap_week", n, 8 * MS_HOUR, 7 * MS_DAY)))
        .otherwise(pl.lit(rng.log_uniform("session.gap_later", n, 7 * MS_DAY, 35 * MS_DAY)))
        .cast(pl.Int64)
    ).to_series()
    draws = (
        "bounce",
        "reload",
        "double_click",
        "cart",
        "checkout",
        "buy",
        "signup",
        "render",
        "subscribe",
        "split",
    )
    sessions = sessions.with_columns(
        gap=pl.when(pl.col("k") == 0).then(0).otherwise(gap),
        returning_channel=rng.choice("session.channel", n, RETURN_VISIT_CHANNELS),
        pages=geometric(rng.uniform("session.pages", n), 6.0),
        items=rng.choice("session.items", n, QUANTITY_WEIGHTS) + 1,
        sku=rng.choice("session.sku", n, [c[3] for c in CATALOG]),
        extra_renders=geometric(rng.uniform("session.renders", n), 1.2),
        **{f"u_{name}": rng.uniform(f"session.{name}", n) for name in draws},
    )
    sessions = (
        sessions.with_columns(start=pl.col("arrival") + _cum_sum_per_person(pl.col("gap")))
        .filter(pl.col("start") < t1)
        .with_columns(
            channel=pl.when(pl.col("k") == 0).then(pl.col("channel")).otherwise(pl.col("returning_channel"))
        )
        .with_columns(paid=pl.col("channel") <= GOOGLE_ADS)
        .with_columns(landed=~pl.col("paid") | (pl.col("u_bounce") >= 0.08))  # 8% of ad clicks never load
    )
    landed, u = pl.col("landed"), {name: pl.col(f"u_{name}") for name in draws}
    cart_chance = pl.when(pl.col("shopper")).then(0.2).otherwise(0.025) * pl.when(pl.col("k") > 0).then(
        1.4
    ).otherwise(1)
    sessions = sessions.with_columns(
        n_click=pl.col("paid").cast(pl.Int64) * (1 + (u["double_click"] < 0.04).cast(pl.Int64)),
        n_land=landed.cast(pl.Int64) * (1 + (u["reload"] < 0.03).cast(pl.Int64)),
        has_cart=landed & (u["cart"] < cart_chance),
        may_sign_up=landed & pl.col("creator") & (u["signup"] < 0.5),
        app=~pl.col("paid")
        & (pl.col("k") > 0)
        & pl.col("app_user")
        & pl.col("device").is_in(_MOBILE_DEVICES),
    ).with_columns(
        signups_so_far=_cum_sum_per_person(pl.col("may_sign_up").cast(pl.Int64)),
        has_checkout=pl.col("has_cart") & (u["checkout"] < 0.55),
    )
    sessions = sessions.with_columns(
        signup=pl.col("may_sign_up") & (pl.col("signups_so_far") == 1),
        purchase=pl.col("has_checkout") & (u["buy"] < 0.62),
        n_cart=pl.col("has_cart").cast(pl.Int64) * pl.col("items").clip(1, 2),
        n_chk=pl.col("has_checkout").cast(pl.Int64) * (1 + (u["checkout"] < 0.06).cast(pl.Int64)),
        n_render=(landed & (pl.col("signups_so_far") >= 1) & (u["render"] < 0.75)).cast(pl.Int64)
        * (1 + pl.col("extra_renders").clip(0, 7)),
        may_subscribe=landed
        & (pl.col("signups_so_far") >= 1)
        & pl.col("subscriber")
        & (u["subscribe"] < 0.2),
        pv_a=(landed.cast(pl.Int64) * pl.col("pages") * u["split"]).floor().cast(pl.Int64),
    )
    sessions = sessions.with_columns(
        subscribe=pl.col("may_subscribe")
        & (_cum_sum_per_person(pl.col("may_subscribe").cast(pl.Int64)) == 1),
        pv_b=landed.cast(pl.Int64) * pl.col("pages") - pl.col("pv_a"),
    ).with_columns(n_events=pl.sum_horizontal(*_SEGMENT_COUNTS))
    keep = [
        "p",
        "k",
        "start",
        "channel",
        "paid",
        "landed",
        "app",
        "items",
        "sku",
        "signup",
        "purchase",
        "subscribe",
    ]
    return (
        sessions.select(*keep, *_SEGMENT_COUNTS, "n_events")
        .with_row_index("s")
        .with_columns(pl.col("s").cast(pl.Int64), first_row=pl.col("n_events").cum_sum() - pl.col("n_events"))
    )


def _cum_sum_per_person(values: pl.Expr) -> pl.Expr:
    """Running total within each person's visits (rows grouped by ``p``, ``k`` = 0 first).

    The same as ``cum_sum().over("p")`` without the cost of grouping.
    """
    total = values.cum_sum()
    return total - pl.when(pl.col("k") == 0).then(total - values).forward_fill()


def _forward_fill_per_person(values: pl.Expr) -> pl.Expr:
    """The latest non-null value so far within each person's visits (rows grouped by ``p``)."""
    owner = pl.when(values.is_not_null()).then(pl.col("p")).forward_fill()
    return pl.when(owner == pl.col("p")).then(values.forward_fill())


def geometric(u: pl.Series, mean: float) -> pl.Series:
    """Counts 0, 1, 2, ... with the given mean (how many more pages, renders, months ...)."""
    return ((1.0 - u).log() / math.log(mean / (1.0 + mean))).floor().cast(pl.Int64)


def session_ads(config: GeneratorConfig, sessions: pl.DataFrame, world: World, rng: Rng) -> pl.DataFrame:
    """The ad behind each paid visit (weighted among the ads active that day) and the visit's tracking."""
    t0 = epoch_ms(config.start)
    n = sessions.height
    sessions = sessions.with_columns(
        day=(pl.col("start") - t0) // MS_DAY,
        pool=pl.when(pl.col("channel") == GOOGLE_ADS)
        .then(POOL_GOOGLE)
        .when(pl.col("paid") & (pl.col("k") > 0) & (pl.lit(rng.uniform("session.retarget", n)) < 0.6))
        .then(POOL_META_RETARGETING)
        .when(pl.col("paid"))
        .then(POOL_META_PROSPECTING)
        .cast(pl.Int64),
    )
    paid = (
        sessions.select("s", "pool", "day", u=rng.uniform("session.ad", n))
        .filter(pl.col("pool").is_not_null())
        .sort("u")
        .join_asof(
            world.calendar,
            left_on="u",
            right_on="cum",
            by=["pool", "day"],
            strategy="forward",
            check_sortedness=False,
        )
    )
    ads = world.ads
    sessions = sessions.with_columns(
        ad=pl.repeat(None, n, dtype=pl.Int64, eager=True).scatter(paid["s"], paid["ad"])
    )

    def of_ad(name: str) -> pl.Expr:
        return pl.lit(ads[name]).gather(pl.col("ad"))

    meta = pl.col("channel") <= INSTAGRAM
    meta_rows = (sessions["channel"] <= INSTAGRAM).arg_true()
    fbclid = pl.repeat(None, n, dtype=pl.String, eager=True).scatter(
        meta_rows, "IwAR" + rng.tokens("session.fbclid", meta_rows.len(), 6).str.head(58)
    )
    newsletter, paid = pl.col("channel") == NEWSLETTER, pl.col("paid")
    organic_utm = (pl.col("channel") == ORGANIC) & (pl.lit(rng.uniform("session.organic_utm", n)) < 0.4)
    # tracking values come from small tables (the ads' own, newsletter issues, fixed names) as Enums
    first_issue = config.start - dt.timedelta(
        days=(config.start.weekday() - 1) % 7
    )  # newsletters go out Tuesdays
    issues = [
        f"newsletter_{first_issue + dt.timedelta(weeks=w):%Y_%m_%d}" for w in range(config.days // 7 + 2)
    ]
    issue = (pl.col("day") + (config.start - first_issue).days) // 7
    mediums, contents = (
        ["paid_social", "cpc", "email", "organic"],
        ["hero_image", "header_cta", "footer_link"],
    )
    campaigns = list(dict.fromkeys(ads["utm_campaign"].to_list()))
    ad_contents = list(dict.fromkeys(ads["utm_content"].to_list()))
    codes = sessions.select(
        utm_source=pl.when(pl.col("channel") <= GOOGLE_ADS)
        .then(pl.col("channel"))
        .when(organic_utm)
        .then(GOOGLE_ADS)
        .when(newsletter)
        .then(3),
        utm_medium=pl.when(paid)
        .then(pl.lit(pl.Series([mediums.index(m) for m in ads["utm_medium"]])).gather(pl.col("ad")))
        .when(newsletter)
        .then(2)
        .when(organic_utm)
        .then(3),
        utm_campaign=pl.when(paid)
        .then(pl.lit(pl.Series([campaigns.index(c) for c in ads["utm_campaign"]])).gather(pl.col("ad")))
        .when(newsletter)
        .then(len(campaigns) + issue),
        utm_content=pl.when(paid)
        .then(pl.lit(pl.Series([ad_contents.index(c) for c in ads["utm_content"]])).gather(pl.col("ad")))
        .when(newsletter)
        .then(len(ad_contents) + pl.col("k") % len(contents)),
    )
    tracking = {
        "campaign_id": enum_series(ads["campaign_id"].to_list()).gather(sessions["ad"]),
        "ad_set_id": enum_series(ads["ad_set_id"].to_list()).gather(sessions["ad"]),
        "ad_id": enum_series(ads["ad_id"].to_list()).gather(sessions["ad"]),
        "utm_source": enum_series(["facebook", "instagram", "google", "newsletter"]).gather(
            codes["utm_source"]
        ),
        "utm_medium": enum_series(mediums).gather(codes["utm_medium"]),
        "utm_campaign": enum_series(campaigns + issues).gather(codes["utm_campaign"]),
        "utm_content": enum_series(ad_contents + contents).gather(codes["utm_content"]),
        "utm_term": enum_series(ads["utm_term"].to_list()).gather(sessions["ad"]),
        "fbclid": fbclid,
    }
    referrers = [[ALL_REFERRERS.index(ref) for ref in group] for group in REFERRERS]
    landings = [[PAGE_INDEX[path] for path in group] for group in LANDINGS]
    sessions = sessions.with_columns(
        **tracking,
        ad_format=of_ad("format_index"),
        landing_page=pl.when(paid)
        .then(of_ad("landing_page"))
        .otherwise(pl.lit(pick(sessions["channel"], rng.uniform("session.landing", n), landings))),
        referrer=pl.lit(pick(sessions["channel"], rng.uniform("session.referrer", n), referrers)),
    )
    query = pl.concat_str(
        [
            pl.concat_str(
                [pl.lit(f"{name}="), pl.col(name).cast(pl.String).str.replace_all(" ", "+", literal=True)]
            )
            for name in ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "fbclid")
        ],
        separator="&",
        ignore_nulls=True,
    )
    return sessions.with_columns(
        landing_url=pl.concat_str(
            [
                pl.lit(SITE_URLS).gather(pl.col("landing_page")),
                pl.when(query != "").then(pl.concat_str([pl.lit("?"), query])).otherwise(pl.lit("")),
            ]
        ),
        # the _fbc cookie: set when a Meta click lands, kept for the person's later visits
        fbc=_forward_fill_per_person(
            pl.when(meta).then(
                pl.concat_str(
                    [pl.lit("fb.1."), pl.col("start").cast(pl.String), pl.lit("."), pl.col("fbclid")]
                )
            )
        ),
        # the person's latest paid visit so far (what the pixel remembers as the campaign)
        touch_session=_forward_fill_per_person(pl.when(paid).then(pl.col("s"))),
    )


def simulate_events(sessions: pl.DataFrame, rng: Rng) -> pl.DataFrame:
    """Expand visits into events: session, segment (step), time (epoch ms) and item, in session order.

    Each visit is a run of segments (so many ad clicks, then landings, page views, ...); the (visit,
    segment, count) runs are expanded with ``repeat_by`` + ``explode``, and times accumulate the gaps
    within each visit.
    """
    runs = (
        sessions.select("s", count=pl.concat_list(_SEGMENT_COUNTS))
        .explode("count")
        .with_columns(seg=pl.int_range(pl.len(), dtype=pl.Int64) % len(_SEGMENT_COUNTS))
        .filter(pl.col("count") > 0)
    )
    events = runs.select(pl.col("s", "seg").repeat_by(pl.col("count"))).explode("s", "seg")
    s, seg = events["s"], events["seg"]
    n = events.height
    first = s != s.shift(1, fill_value=-1)
    log_low = pl.Series([math.log(low) for low, _ in _SEGMENT_GAPS]).gather(seg)
    log_span = pl.Series([math.log(high / low) for low, high in _SEGMENT_GAPS]).gather(seg)
    gap = (log_low + log_span * rng.uniform("event.gap", n)).exp().cast(pl.Int64) * (~first).cast(pl.Int64)
    elapsed = gap.cum_sum()
    offset = elapsed - pl.select(pl.when(pl.lit(first)).then(pl.lit(elapsed)).forward_fill()).to_series()
    # what the step is about: the visit's product for cart/checkout, a template and resolution for renders
    renders = (seg == SEG_RENDER).arg_true()
    template = rng.choice("event.template", renders.len(), [1.0] * len(TEMPLATES))
    resolution = rng.choice("event.resolution", renders.len(), [w for _, w in RESOLUTIONS])
    render_item = pl.repeat(None, n, dtype=pl.Int64, eager=True).scatter(
        renders, template * len(RESOLUTIONS) + resolution
    )
    shop_item = (sessions["sku"] * 3 + sessions["items"] - 1).gather(s)
    item = pl.select(
        pl.when(pl.lit(seg).is_in([SEG_CART, SEG_CHK])).then(pl.lit(shop_item)).otherwise(pl.lit(render_item))
    ).to_series()
    return pl.DataFrame({"s": s, "seg": seg, "t": sessions["start"].gather(s) + offset, "item": item})


def out_of_order_steps(events: pl.DataFrame, rng: Rng) -> pl.DataFrame:
    """Move 1.5% of the later steps of a visit a little earlier (client clocks, batching)."""
    n = events.height
    early = (rng.uniform("event.early", n) < 0.015) & (events["seg"] > SEG_CLICK)
    shift = rng.integers("event.early_ms", n, MS_SECOND, 90 * MS_SECOND) * early.cast(pl.Int64)
    return events.with_columns(t=pl.col("t") - shift)
