"""Bad rows: a deterministic share of each stream's rows, each broken in exactly one way.

Row k of the bad rows gets kind k % len(kinds) of :data:`BAD_ROW_KINDS`, so the ingest validator meets
every kind of problem it must reject.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from pipelines.contract import columns
from pipelines.generate.randomness import Rng
from pipelines.generate.series import where

# How the malformed rows of each stream are broken: row k of the bad rows gets kind k % len(kinds).
BAD_ROW_KINDS: dict[str, tuple[str, ...]] = {
    "events": (
        "missing_event_id",
        "missing_person_id",
        "missing_event_name",
        "missing_event_time",
        "unknown_source",
        "unknown_device_type",
        "unparseable_timestamp",
        "timestamp_without_offset",
        "properties_not_object",
        "string_too_long",
    ),
    "conversions": (
        "missing_event_id",
        "missing_person_id",
        "missing_conversion_type",
        "missing_conversion_time",
        "unknown_conversion_type",
        "unknown_conversion_source",
        "unknown_device_type",
        "negative_value_cents",
        "non_integer_value_cents",
        "bad_currency",
        "currency_missing_with_value",
        "unparseable_timestamp",
        "timestamp_without_offset",
        "properties_not_object",
        "string_too_long",
    ),
    "ad_spend": (
        "missing_date",
        "missing_campaign_id",
        "missing_spend_cents",
        "unparseable_date",
        "negative_spend",
        "non_integer_impressions",
        "clicks_exceed_impressions",
        "bad_currency",
        "string_too_long",
    ),
    "adjustments": (
        "missing_adjustment_id",
        "missing_conversion_event_id",
        "unknown_adjustment_type",
        "negative_amount",
        "bad_currency",
        "unparseable_timestamp",
        "timestamp_without_offset",
        "string_too_long",
    ),
    "identities": (
        "missing_anonymous_id",
        "missing_person_id",
        "timestamp_without_offset",
        "same_anonymous_and_person_id",
        "unparseable_timestamp",
        "string_too_long",
    ),
}

_Breaker = Callable[[pl.DataFrame, pl.Expr, pl.Expr], dict[str, pl.Expr]]  # (frame, is this kind, variant)
_BAD_TIMESTAMPS = ('"yesterday"', '"2026-13-45T00:00:00Z"', '"not a timestamp"')
_BAD_PROPERTIES = ("[1,2]", '"not json"', "42")  # an array, a string, a number: none is an object
_BAD_CURRENCIES = ("US", "usd1", "XYZ")
_TOO_LONG = {
    "events": ("utm_campaign", "event_source_url", "client_user_agent"),
    "conversions": ("email", "order_id", "first_name"),
    "ad_spend": ("campaign_name", "ad_set_name", "ad_name"),
    "adjustments": ("adjustment_id", "reason", "conversion_event_id"),
    "identities": ("anonymous_id", "person_id", "source"),
}


def corrupt(stream: str, frame: pl.DataFrame, ratio: float, rng: Rng) -> pl.DataFrame:
    """Mark about ``ratio`` of the rows (evenly spread) as bad and break each in one way, cycling the kinds.

    Adds ``__bad`` (bool). Values that cannot live in the column's type (a timestamp "yesterday", a
    value_cents "abc") go to a ``__bad_<column>`` override that holds the JSON token to write instead.
    """
    n = frame.height
    if ratio <= 0 or n == 0:
        return frame.with_columns(__bad=pl.lit(False))
    kinds = BAD_ROW_KINDS[stream]
    breakers = _breakers(stream)
    phase = float(rng.uniform(f"bad.{stream}", 1)[0])
    index = pl.int_range(n, dtype=pl.Int64, eager=True)
    before = (index * ratio + phase).floor().cast(pl.Int64)  # bad rows before this one
    bad = ((index + 1) * ratio + phase).floor().cast(pl.Int64) > before
    frame = frame.with_columns(
        __bad=bad, __kind=where(bad, before % len(kinds)), __variant=(before // len(kinds)) % 3
    )
    for number, kind in enumerate(kinds):
        frame = frame.with_columns(**breakers[kind](frame, pl.col("__kind") == number, pl.col("__variant")))
    return frame.drop("__kind", "__variant")


def _breakers(stream: str) -> dict[str, _Breaker]:
    time_column = {"events": "event_time", "adjustments": "adjusted_at", "identities": "observed_at"}.get(
        stream, "conversion_time"
    )
    return {
        "missing_event_id": _null("event_id"),
        # events and conversions: neither id (a row with only an anonymous_id is valid)
        "missing_person_id": _no_person(stream),
        "missing_anonymous_id": _null("anonymous_id"),
        "same_anonymous_and_person_id": lambda frame, bad, variant: {
            "anonymous_id": pl.when(bad).then(pl.col("person_id")).otherwise(pl.col("anonymous_id"))
        },
        "missing_event_name": _null("event_name"),
        "missing_event_time": _null("event_time"),
        "missing_conversion_type": _null("conversion_type"),
        "missing_conversion_time": _null("conversion_time"),
        "missing_date": _null("date"),
        "missing_campaign_id": _null("campaign_id"),
        "missing_spend_cents": _null("spend_cents"),
        "missing_adjustment_id": _null("adjustment_id"),
        "missing_conversion_event_id": _null("conversion_event_id"),
        "unknown_adjustment_type": _text("adjustment_type", ("void", "credit", "discount")),
        "negative_amount": _negative("amount_cents", 999),
        "unknown_source": _text("source", ("email", "sms", "offline")),
        "unknown_device_type": _text("device_type", ("smartwatch", "smart_tv", "console")),
        "unknown_conversion_type": _text("conversion_type", ("refund", "chargeback", "lead")),
        "unknown_conversion_source": _text("conversion_source", ("email", "offline", "crm")),
        "bad_currency": _text("currency", _BAD_CURRENCIES),
        "unparseable_timestamp": _token(time_column, _BAD_TIMESTAMPS),
        "timestamp_without_offset": _naive_time(time_column),
        "unparseable_date": _token("date", ('"2026-02-30"', '"yesterday"', '"2026-13-01"')),
        "properties_not_object": _token("properties", _BAD_PROPERTIES),
        "non_integer_impressions": _token("impressions", ('"1.5k"', "12.5", '"n/a"')),
        "non_integer_value_cents": _non_integer_value,
        "negative_value_cents": _negative("value_cents", 1299),
        "negative_spend": _negative("spend_cents", 1234),
        "currency_missing_with_value": _currency_missing,
        "clicks_exceed_impressions": _clicks_over_impressions,
        "string_too_long": _too_long(stream),
    }


def _variant_of(values: Sequence[str], variant: pl.Expr) -> pl.Expr:
    return pl.lit(pl.Series(values, dtype=pl.String)).gather(variant % len(values))


def _no_person(stream: str) -> _Breaker:
    if stream in ("events", "conversions"):
        return lambda frame, bad, variant: {
            "person_id": pl.when(bad).then(None).otherwise(pl.col("person_id")),
            "anonymous_id": pl.when(bad).then(None).otherwise(pl.col("anonymous_id")),
        }
    return _null("person_id")


def _null(name: str) -> _Breaker:
    return lambda frame, bad, variant: {name: pl.when(bad).then(None).otherwise(pl.col(name))}


def _text(name: str, values: Sequence[str]) -> _Breaker:
    """Replace the value with one of ``values`` (the column becomes plain text if it was an Enum)."""
    return lambda frame, bad, variant: {
        name: pl.when(bad).then(_variant_of(values, variant)).otherwise(pl.col(name).cast(pl.String))
    }


def _token(name: str, tokens: Sequence[str]) -> _Breaker:
    """Write one of the JSON ``tokens`` instead of the value (``'"x"'`` is the string x)."""
    return lambda frame, bad, variant: _override(frame, name, bad, _variant_of(tokens, variant))


def _override(frame: pl.DataFrame, name: str, bad: pl.Expr, token: pl.Expr) -> dict[str, pl.Expr]:
    column = f"__bad_{name}"
    existing = pl.col(column) if column in frame.columns else pl.lit(None, pl.String)
    return {column: pl.when(bad).then(token).otherwise(existing)}


def _naive_time(name: str) -> _Breaker:
    """The row's own time, without any UTC offset (ambiguous, so the validator must reject it)."""
    naive = pl.from_epoch(pl.col(name), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S")
    return lambda frame, bad, variant: _override(
        frame, name, bad, pl.concat_str([pl.lit('"'), naive, pl.lit('"')])
    )


def _too_long(stream: str) -> _Breaker:
    """One of the stream's long-text columns (by variant) gets a value over the contract's max_length."""
    limits = {column.name: column.max_length for column in columns(stream)}
    names = _TOO_LONG[stream]
    return lambda frame, bad, variant: {
        name: pl.when(bad & (variant % len(names) == i))
        .then(pl.lit(f"{name}-" + "x" * limits[name]))
        .otherwise(pl.col(name).cast(pl.String))
        for i, name in enumerate(names)
    }


def _negative(name: str, fallback: int) -> _Breaker:
    positive = pl.when(pl.col(name) > 0).then(pl.col(name)).otherwise(fallback)
    return lambda frame, bad, variant: {name: pl.when(bad).then(-positive).otherwise(pl.col(name))}


def _non_integer_value(frame: pl.DataFrame, bad: pl.Expr, variant: pl.Expr) -> dict[str, pl.Expr]:
    currency = pl.col("currency").cast(pl.String)
    return {  # the row keeps a currency, so the value is the only thing wrong with it
        **_override(frame, "value_cents", bad, _variant_of(("12.5", '"abc"', '"1,299"'), variant)),
        "currency": pl.when(bad).then(currency.fill_null("USD")).otherwise(currency),
    }


def _currency_missing(frame: pl.DataFrame, bad: pl.Expr, variant: pl.Expr) -> dict[str, pl.Expr]:
    needs_value = bad & (pl.col("value_cents").fill_null(0) <= 0)
    return {
        "value_cents": pl.when(needs_value).then(1999).otherwise(pl.col("value_cents")),
        "currency": pl.when(bad).then(None).otherwise(pl.col("currency")),
    }


def _clicks_over_impressions(frame: pl.DataFrame, bad: pl.Expr, variant: pl.Expr) -> dict[str, pl.Expr]:
    return {"clicks": pl.when(bad).then(pl.col("impressions") + 1 + variant * 7).otherwise(pl.col("clicks"))}
