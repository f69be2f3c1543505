"""Conversions as their sources report them, drawn from the simulated visits and events.

Signups, renders, purchases, subscriptions and monthly renewals, then the CAPI relay's copies of pixel
conversions, retries and late re-reports, each row with the optional fields it carries.
"""

from __future__ import annotations

import polars as pl

from pipelines.generate.behaviour import SEG_RENDER, geometric
from pipelines.generate.config import MS_DAY, MS_HOUR, MS_MINUTE, MS_SECOND, GeneratorConfig, epoch_ms
from pipelines.generate.randomness import Rng
from pipelines.generate.reference import (
    CATALOG,
    CURRENCIES,
    FX_FROM_USD,
    PLAN_PRICES,
    PLANS,
    SIGNUP_METHODS,
    TIME_FORMAT_WEIGHTS,
)

SIGNUP, VIDEO_RENDER, PURCHASE, SUBSCRIPTION = range(4)
CONVERSION_TYPE_NAMES = ("signup", "video_render", "purchase", "subscription")
PIXEL, CAPI, WEBHOOK = range(3)
CONVERSION_SOURCE_NAMES = ("pixel", "capi", "webhook")
# how each conversion type is first reported: shares of pixel, capi, webhook
_FIRST_REPORT = {
    SIGNUP: (75, 25, 0),
    VIDEO_RENDER: (45, 55, 0),
    PURCHASE: (65, 15, 20),
    SUBSCRIPTION: (50, 20, 30),
}
_COPY_ORIGINAL, _COPY_CAPI, _COPY_LATE, _COPY_RETRY = range(4)
_CAPI_COPY_SHARE = 0.35  # of pixel conversions, also sent by the CAPI relay (same event_id)
_RETRY_SHARE = 0.01  # of reported rows, sent twice by the same source
_LATE_SHARE = 0.002  # of conversions, re-reported with the same event_id more than 48 h later
# chance that a conversion row carries a field, by reporting source (pixel, capi, webhook)
_PRESENCE: dict[str, tuple[float, float, float]] = {
    "attribution": (0.75, 0.4, 0.0),
    "device": (1.0, 0.3, 0.0),
    "country": (1.0, 0.5, 0.9),
    "city": (1.0, 0.5, 0.6),
    "email": (0.2, 0.95, 1.0),
    "phone": (0.05, 0.6, 0.35),
    "name": (0.05, 0.55, 0.8),
    "date_of_birth": (0.0, 0.25, 0.0),
    "gender": (0.0, 0.3, 0.0),
    "state": (0.0, 0.45, 0.7),
    "zip": (0.03, 0.5, 0.8),
    "external_id": (0.3, 0.9, 1.0),
    "client": (1.0, 0.85, 0.0),
    "fbp": (0.97, 0.5, 0.0),
    "fbc": (0.9, 0.45, 0.0),
    "event_source_url": (1.0, 0.7, 0.0),
    "pixel_id": (1.0, 1.0, 0.0),
}


def simulate_conversions(
    config: GeneratorConfig, persons: pl.DataFrame, sessions: pl.DataFrame, events: pl.DataFrame, rng: Rng
) -> pl.DataFrame:
    """Conversions as reported: who, what, when, value, by which source, and which fields each row carries.

    Signups land between the visit's intro pages and what follows, purchases after the last checkout step,
    renders complete after their ``video_render_started``, subscriptions at the end of the visit and
    renew monthly (webhook). Then the CAPI relay re-sends about a third of the pixel conversions, a few
    rows are sent twice (retries) and a few are re-reported with the same event_id more than 48 h later.
    """
    t = events["t"]
    s = sessions.height

    def time_at(row: pl.Expr) -> pl.Expr:
        return pl.lit(t).gather(row)

    def delay(name: str, low: int, high: int) -> pl.Expr:
        return pl.lit(rng.log_uniform(f"conversion.{name}", s, low, high)).cast(pl.Int64)

    first, last = pl.col("first_row"), pl.col("first_row") + pl.col("n_events") - 1
    intro_end = first + pl.col("n_click") + pl.col("n_land") + pl.col("pv_a") - 1  # last landing/page view
    next_step = (intro_end + 1).clip(upper_bound=last)
    share_of_gap = pl.lit(rng.uniform("conversion.signup_at", s) * 0.6 + 0.2)
    last_checkout = intro_end + pl.col("n_cart") + pl.col("n_chk")
    timed = sessions.with_columns(
        # between the intro and the next step (a render, a cart), or a little after the intro
        t_signup=pl.when(intro_end < last)
        .then(time_at(intro_end) + ((time_at(next_step) - time_at(intro_end)) * share_of_gap).cast(pl.Int64))
        .otherwise(time_at(intro_end) + delay("signup_delay", 20 * MS_SECOND, 4 * MS_MINUTE)),
        t_purchase=time_at(last_checkout.clip(lower_bound=first))
        + delay("purchase_delay", 15 * MS_SECOND, 6 * MS_MINUTE),
    ).with_columns(
        t_subscription=pl.max_horizontal(time_at(last), pl.col("t_signup"))
        + delay("subscription_delay", 30 * MS_SECOND, 10 * MS_MINUTE),
    )
    base_columns = ["p", "s", "type", "t", "value_cents", "item", "renewal"]
    signups = timed.filter(pl.col("signup")).select(
        "p",
        "s",
        type=pl.lit(SIGNUP),
        t="t_signup",
        value_cents=pl.lit(0),
        item=pl.lit(None, pl.Int64),
        renewal=pl.lit(False),
    )
    started = events.filter(pl.col("seg") == SEG_RENDER)
    renders = started.filter(rng.uniform("conversion.render_completes", started.height) < 0.85)
    renders = renders.select(
        p=pl.lit(sessions["p"]).gather(pl.col("s")),
        s="s",
        type=pl.lit(VIDEO_RENDER),
        t=pl.col("t")
        + pl.lit(rng.log_uniform("conversion.render_time", renders.height, 25_000, 12 * MS_MINUTE)).cast(
            pl.Int64
        ),
        value_cents=pl.lit(0),
        item="item",
        renewal=pl.lit(False),
    )
    prices = pl.Series(
        [
            price if fx == 1.0 else _charm_price(price * fx)
            for _, _, price, _ in CATALOG
            for fx in FX_FROM_USD
        ],
        dtype=pl.Int64,
    )
    currency = pl.lit(persons["currency"]).gather(pl.col("p"))
    purchases = timed.filter(pl.col("purchase")).select(
        "p",
        "s",
        type=pl.lit(PURCHASE),
        t="t_purchase",
        value_cents=pl.lit(prices).gather(pl.col("sku") * len(CURRENCIES) + currency) * pl.col("items"),
        item=pl.col("sku") * 3 + pl.col("items") - 1,
        renewal=pl.lit(False),
    )
    plan_prices = pl.Series(
        [PLAN_PRICES[c][plan] for plan in range(len(PLANS)) for c in CURRENCIES], dtype=pl.Int64
    )
    subscriptions = timed.filter(pl.col("subscribe"))
    m = subscriptions.height
    plan = (rng.uniform("conversion.plan", m) < 0.3).cast(pl.Int64)  # 0 = pro, 1 = business
    subscriptions = subscriptions.select(
        "p",
        "s",
        type=pl.lit(SUBSCRIPTION),
        t="t_subscription",
        value_cents=pl.lit(plan_prices).gather(pl.lit(plan) * len(CURRENCIES) + currency),
        item=pl.lit(plan),
        renewal=pl.lit(False),
        months=pl.lit(geometric(rng.uniform("conversion.churn", m), 7.0) + 1),
    )
    # monthly renewals charged through the payment webhook while the subscriber stays
    renewals = (
        subscriptions.with_columns(month=pl.int_ranges(1, pl.col("months")))
        .explode("month")
        .drop_nulls("month")
        .with_columns(t=pl.col("t") + pl.col("month") * 30 * MS_DAY, renewal=pl.lit(True))
        .select(base_columns)
    )
    base = (
        pl.concat(
            [signups, renders, purchases, subscriptions.select(base_columns), renewals],
            how="vertical_relaxed",
            rechunk=True,
        )
        .with_row_index("key")
        .with_columns(pl.col("key", "type", "value_cents").cast(pl.Int64))
    )
    n = base.height
    pixel_share = pl.Series([_FIRST_REPORT[c][0] / 100 for c in range(4)]).gather(base["type"])
    capi_share = pl.Series([sum(_FIRST_REPORT[c][:2]) / 100 for c in range(4)]).gather(base["type"])
    u = rng.uniform("conversion.source", n)
    base = base.with_columns(
        source=pl.when(pl.col("renewal"))
        .then(WEBHOOK)
        .when(pl.lit(u) < pl.lit(pixel_share))
        .then(PIXEL)
        .when(pl.lit(u) < pl.lit(capi_share))
        .then(CAPI)
        .otherwise(WEBHOOK)
        .cast(pl.Int64),
        copy=pl.lit(_COPY_ORIGINAL, pl.Int64),
        pixel_id=(pl.lit(rng.uniform("conversion.pixel_id", n)) < 0.1).cast(pl.Int64),
        order=pl.when(pl.col("type") == PURCHASE).then(
            1_048_576 + (pl.col("type") == PURCHASE).cast(pl.Int64).cum_sum() * 3 + pl.col("key") % 3
        ),
        method=pl.col("key") % len(SIGNUP_METHODS),
    )
    capi_copies = (
        base.with_columns(
            u=rng.uniform("conversion.capi_copy", n),
            delay=rng.log_uniform("conversion.capi_delay", n, 2 * MS_SECOND, 10 * MS_MINUTE).cast(pl.Int64),
        )
        .filter((pl.col("source") == PIXEL) & (pl.col("u") < _CAPI_COPY_SHARE))
        .with_columns(
            source=pl.lit(CAPI, pl.Int64), t=pl.col("t") + pl.col("delay"), copy=pl.lit(_COPY_CAPI, pl.Int64)
        )
        .drop("u", "delay")
    )
    late = (
        base.with_columns(
            u=rng.uniform("conversion.late", n),
            delay=rng.log_uniform("conversion.late_delay", n, 49 * MS_HOUR, 10 * MS_DAY).cast(pl.Int64),
        )
        .filter(pl.col("u") < _LATE_SHARE)
        .with_columns(
            source=pl.when(pl.col("source") == PIXEL).then(CAPI).otherwise(pl.col("source")).cast(pl.Int64),
            t=pl.col("t") + pl.col("delay"),
            copy=pl.lit(_COPY_LATE, pl.Int64),
        )
        .drop("u", "delay")
    )
    reported = _reporting_details(pl.concat([base, capi_copies, late], how="vertical", rechunk=True), rng)
    retries = reported.filter(rng.uniform("conversion.retry", reported.height) < _RETRY_SHARE)
    t0, t1 = epoch_ms(config.start), epoch_ms(config.end)
    return (
        pl.concat(
            [reported, retries.with_columns(copy=pl.lit(_COPY_RETRY, pl.Int64))], how="vertical", rechunk=True
        )
        .filter(pl.col("t").is_between(t0, t1 - 1))
        .sort("t", "key", "copy", maintain_order=True)
    )


def _reporting_details(rows: pl.DataFrame, rng: Rng) -> pl.DataFrame:
    """Per reported row: which optional fields it carries, how PII is spelled, how its time is written.

    Drawn before retries are added, so a retry repeats its row exactly.
    """
    n = rows.height
    source = rows["source"]
    has = {
        f"has_{field}": rng.uniform(f"conversion.has_{field}", n) < pl.Series(shares).gather(source)
        for field, shares in _PRESENCE.items()
    }
    zero_value = rows["type"].is_in([SIGNUP, VIDEO_RENDER])
    value_missing = zero_value & (rng.uniform("conversion.value_missing", n) < 0.1)
    return rows.with_columns(
        **has,
        value_cents=pl.when(pl.lit(value_missing)).then(None).otherwise(pl.col("value_cents")),
        has_currency=~pl.lit(value_missing)
        & (~pl.lit(zero_value) | (pl.lit(rng.uniform("conversion.currency", n)) < 0.4)),
        spelling=rng.integers(
            "conversion.spelling", n, 0, 1 << 20
        ),  # one draw; each PII field uses other bits
        time_format=rng.choice("conversion.time_format", n, TIME_FORMAT_WEIGHTS["conversions"]),
    )


def _charm_price(cents: float) -> int:
    """A local list price: the converted amount rounded to a whole unit minus one cent (14.99, 139.99 ...)."""
    return max(99, round(cents / 100) * 100 - 1)
