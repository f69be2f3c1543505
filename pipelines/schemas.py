"""Pandera (polars) schemas of the raw landing streams, built from the contract in ``contract.py``.

Ingestion first turns a landing file into a *typed frame*: for every contract column ``c`` it holds
the typed value ``c`` (String, Int64, Datetime[us, UTC] or Date; JSON as its text) and
``c__problem``, a short code saying why a given value could not be converted (null when it could,
or when there was no value). The schema of a stream then checks that frame, column by column,
lazily (all rows, all checks), so every bad row is found with every failing field at once.

Each check has a name (``required``, ``type``, ``allowed``, ...) and an *expectation*, the human
text a reason starts with: ``value_cents: expected a whole number >= 0, got '-5'``. Ingestion turns
pandera's failure cases into one reason per failing field with :func:`expectations` and
:data:`PROBLEM_DETAILS`. The rules, in check order per column:

``required``   null, missing, empty or whitespace-only is rejected.
``type``       the value must convert to the column's kind: whole numbers for ``int`` (``12``,
               ``"12"``, ``"+12"`` and ``"12.0"`` are 12; ``"12.5"``, ``"1e3"`` and ``"abc"`` are
               rejected); for ``timestamp`` ISO-8601 with ``Z`` or a ``±hh:mm`` / ``±hhmm`` offset
               (``T`` or space separator, optional fraction) or epoch milliseconds (a JSON number
               or a digit string); naive timestamps are rejected ("has no UTC offset"); for
               ``date`` ``YYYY-MM-DD``; for ``bool`` true/false, 1/0 or yes/no (any case, as text,
               a number or a JSON/Parquet boolean); for ``json`` a JSON object (or a string holding one); for
               ``str`` from JSONL a string or number (objects, arrays and booleans are rejected).
``allowed``    enumerations, compared after trim + lower-case; a blank optional value passes.
``iso_4217``   ``currency`` columns: a 3-letter ISO 4217 code after trim + upper-case.
``no_nul``     strings must not contain a NUL character (PostgreSQL's text cannot hold one).
``max_length`` strings (and JSON text) longer than the contract's ``max_length`` characters, as
               received (currency codes, already checked by ``iso_4217``, are exempt).
``min_value``  whole numbers below the contract's ``min_value``.
``max_value``  amounts (``value_cents``, ``spend_cents``, ``amount_cents``) above the contract's ``MAX_CENTS``, the
               largest amount every model's casts can carry.
``plausible``  timestamps and dates must lie in [2000-01-01, 2100-01-01) UTC; catches epoch
               seconds sent as milliseconds and swapped fields.
``currency_required``     conversions: ``currency`` is required when ``value_cents`` > 0.
``convertible``           conversions, ad_spend and adjustments: when the amount is > 0, ``currency`` must be one
                          the exchange-rate seed has rates for (the warehouse values it in the
                          reporting currency; a code it cannot convert would leave no value).
``clicks_le_impressions`` ad_spend: ``clicks`` must not exceed ``impressions``.
``person_or_anonymous``   events and conversions: ``person_id`` is required when ``anonymous_id`` is blank
                          (a row names its person, its anonymous visitor, or both).
``reserved_prefix``       ``person_id``: must not start with ``anon:``, the prefix of the pseudo-persons the
                          warehouse makes for anonymous ids not yet linked to a person.
``differs_from_person``   identities: ``anonymous_id`` must not equal the row's ``person_id``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pandera.polars as pa
import polars as pl

from pipelines.contract import ISO_4217, PSEUDO_PERSON_PREFIX, Column, columns

PROBLEM_SUFFIX = "__problem"
PLAUSIBLE_FROM = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
PLAUSIBLE_UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)

POLARS_TYPES: dict[str, pl.DataType] = {
    "str": pl.String(),
    "int": pl.Int64(),
    "timestamp": pl.Datetime("us", "UTC"),
    "date": pl.Date(),
    "bool": pl.Boolean(),
    "json": pl.String(),
}

# Why a value could not be converted (the ``c__problem`` codes written by ingestion), as the
# detail in parentheses at the end of a reason. Codes without an entry add no detail.
PROBLEM_DETAILS: dict[str, str] = {
    "json_object": "a JSON object",
    "json_array": "a JSON array",
    "json_boolean": "a JSON boolean",
    "json_string": "a JSON string",
    "json_number": "a JSON number",
    "json_null": "JSON null",
    "invalid_json": "not valid JSON",
    "no_offset": "has no UTC offset",
    "invalid_datetime": "not a valid date or time",
    "epoch_out_of_range": "epoch milliseconds out of range",
    "not_whole": "",
    "bad_timestamp": "",
    "bad_date": "",
    "not_boolean": "",
}


def problem_column(name: str) -> str:
    return f"{name}{PROBLEM_SUFFIX}"


def _blank(expr: pl.Expr) -> pl.Expr:
    """True where a string is null, empty or whitespace-only."""
    return expr.is_null() | (expr.str.strip_chars().str.len_bytes() == 0)


def _check(name: str, passes: Callable[[str], pl.Expr]) -> pa.Check:
    """A vectorized pandera check: ``passes(column)`` is a boolean expression over the frame.

    Null results count as passing (a missing value is the ``required`` check's business).
    """

    def fn(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(passes(data.key).fill_null(True).alias(data.key))

    return pa.Check(fn, name=name)


Rule = tuple[str, Callable[[str], pl.Expr], str]  # (check name, passes(column), expectation)


def _column_checks(stream: str, col: Column) -> list[tuple[pa.Check, str]]:
    """The checks of one column with the expectation text each reason starts with."""
    return [(_check(name, passes), expected) for name, passes, expected in _column_rules(stream, col)]


def _column_rules(stream: str, col: Column) -> list[Rule]:
    """The rules of one column, in check order: name, boolean expression builder, expectation."""
    name = col.name
    problem = problem_column(name)
    checks: list[Rule] = []

    if col.required:
        if col.kind == "str":
            checks.append(("required", lambda c: ~_blank(pl.col(c)), "is required"))
        else:
            # A value that was given but did not convert fails ``type``, not ``required``.
            checks.append(
                ("required", lambda c: pl.col(c).is_not_null() | pl.col(problem).is_not_null(), "is required")
            )

    type_expectation = {
        "str": "expected a string",
        "int": "expected a whole number" + (f" >= {col.min_value}" if col.min_value is not None else ""),
        "timestamp": "expected an ISO-8601 timestamp with a UTC offset (Z or ±hh:mm) or epoch milliseconds",
        "date": "expected a date as YYYY-MM-DD",
        "bool": "expected true or false (also 1/0, yes/no)",
        "json": "expected a JSON object",
    }[col.kind]
    checks.append(("type", lambda c: pl.col(problem).is_null(), type_expectation))

    if col.allowed is not None:
        allowed = list(col.allowed)
        checks.append(
            (
                "allowed",
                lambda c: _blank(pl.col(c)) | pl.col(c).str.strip_chars().str.to_lowercase().is_in(allowed),
                f"expected one of {', '.join(allowed)}",
            )
        )
    if name == "currency":
        codes = sorted(ISO_4217)
        checks.append(
            (
                "iso_4217",
                lambda c: _blank(pl.col(c)) | pl.col(c).str.strip_chars().str.to_uppercase().is_in(codes),
                "expected a 3-letter ISO 4217 currency code",
            )
        )
    if col.kind == "str":
        # PostgreSQL's text cannot hold a NUL character, and no id or name needs one.
        checks.append(
            (
                "no_nul",
                lambda c: ~pl.col(c).str.contains("\x00", literal=True),
                "expected text without NUL characters",
            )
        )
    if col.kind in ("str", "json") and name != "currency":  # currency: the ISO 4217 check is stricter
        limit = col.max_length
        checks.append(
            (
                "max_length",
                lambda c: pl.col(c).str.len_chars() <= limit,
                f"expected at most {limit} characters",
            )
        )
    if col.kind == "int" and col.min_value is not None:
        low = col.min_value
        checks.append(("min_value", lambda c: pl.col(c) >= low, type_expectation))
    if col.kind == "int" and col.max_value is not None:
        high = col.max_value
        checks.append(
            (
                "max_value",
                lambda c: pl.col(c) <= high,
                f"expected at most {high:,} (the largest amount the warehouse's models can carry)",
            )
        )
    if col.kind == "timestamp":
        checks.append(
            (
                "plausible",
                lambda c: pl.col(c).is_between(PLAUSIBLE_FROM, PLAUSIBLE_UNTIL, closed="left"),
                "expected a time from 2000-01-01 to 2100-01-01 UTC",
            )
        )
    if col.kind == "date":
        low_date, high_date = PLAUSIBLE_FROM.date(), PLAUSIBLE_UNTIL.date()
        checks.append(
            (
                "plausible",
                lambda c: pl.col(c).is_between(low_date, high_date, closed="left"),
                "expected a date from 2000-01-01 to 2100-01-01",
            )
        )
    if stream == "conversions" and name == "currency":
        checks.append(
            (
                "currency_required",
                lambda c: ~(pl.col("value_cents") > 0).fill_null(False) | ~_blank(pl.col(c)),
                "is required when value_cents > 0",
            )
        )
    amount = {"conversions": "value_cents", "ad_spend": "spend_cents", "adjustments": "amount_cents"}.get(
        stream
    )
    convertible = rate_currencies()
    if amount and name == "currency" and convertible:
        rate_codes = list(convertible)  # its own name: the lambdas above read `codes` when called
        checks.append(
            (
                "convertible",
                lambda c: (
                    ~(pl.col(amount) > 0).fill_null(False)
                    | _blank(pl.col(c))
                    | pl.col(c).str.strip_chars().str.to_uppercase().is_in(rate_codes)
                ),
                f"expected a currency the warehouse has exchange rates for ({', '.join(rate_codes)}) "
                f"when {amount} > 0",
            )
        )
    if stream in ("events", "conversions") and name == "person_id":
        checks.append(
            (
                "person_or_anonymous",
                lambda c: ~_blank(pl.col(c)) | ~_blank(pl.col("anonymous_id")),
                "is required when anonymous_id is not given",
            )
        )
    if name == "person_id":
        checks.append(
            (
                "reserved_prefix",
                lambda c: ~pl.col(c).str.strip_chars().str.starts_with(PSEUDO_PERSON_PREFIX),
                f"expected a person id not starting with '{PSEUDO_PERSON_PREFIX}' (reserved for visitors known "
                "only by an anonymous id)",
            )
        )
    if stream == "identities" and name == "anonymous_id":
        checks.append(
            (
                "differs_from_person",
                lambda c: pl.col(c).str.strip_chars() != pl.col("person_id").str.strip_chars(),
                "expected an anonymous id other than the row's person_id",
            )
        )
    if stream == "ad_spend" and name == "clicks":
        checks.append(
            (
                "clicks_le_impressions",
                lambda c: pl.col(c) <= pl.col("impressions"),
                "expected at most impressions",
            )
        )
    return checks


EXCHANGE_RATES_SEED = Path(__file__).resolve().parent.parent / "seeds" / "exchange_rates.csv"


@cache
def rate_currencies() -> tuple[str, ...]:
    """The currencies the exchange-rate seed has rates for (what the warehouse can convert), sorted;
    empty when the exchange-rate seed is not there (then currencies are only checked against ISO 4217)."""
    if not EXCHANGE_RATES_SEED.is_file():
        return ()
    found = pl.read_csv(EXCHANGE_RATES_SEED, columns=["currency"], schema_overrides={"currency": pl.String})
    return tuple(sorted(found["currency"].drop_nulls().str.to_uppercase().unique().to_list()))


@cache
def check_expressions(stream: str) -> tuple[tuple[str, str, pl.Expr], ...]:
    """``(column, check, passes)`` for every check of ``stream``, in check order: the expressions the
    pandera schema evaluates, for callers that evaluate them all in one polars pass (a null result
    passes, as in the schema)."""
    return tuple(
        (col.name, name, passes(col.name).fill_null(True))
        for col in columns(stream)
        for name, passes, _ in _column_rules(stream, col)
    )


@cache
def stream_schema(stream: str) -> pa.DataFrameSchema:
    """The pandera schema checking the typed frame of ``stream`` (see the module docstring)."""
    cols = {}
    for col in columns(stream):
        cols[col.name] = pa.Column(
            POLARS_TYPES[col.kind],
            checks=[check for check, _ in _column_checks(stream, col)],
            nullable=True,  # required-ness is the ``required`` check, which also rejects blanks
            required=True,
        )
        cols[problem_column(col.name)] = pa.Column(pl.String, nullable=True, required=True)
    return pa.DataFrameSchema(cols, name=stream, strict=False, coerce=False)


@cache
def expectations(stream: str) -> pl.DataFrame:
    """One row per (column, check) of ``stream``: its expectation text and its rank.

    ``rank`` orders failures: by contract column, then by check order, so a field that fails
    several checks is reported once, with its first failure.
    """
    rows: dict[str, list] = {"column": [], "check": [], "expected": [], "rank": []}
    for col_index, col in enumerate(columns(stream)):
        for check_index, (check, expected) in enumerate(_column_checks(stream, col)):
            rows["column"].append(col.name)
            rows["check"].append(check.name)
            rows["expected"].append(expected)
            rows["rank"].append(col_index * 100 + check_index)
    return pl.DataFrame(
        rows, schema={"column": pl.String, "check": pl.String, "expected": pl.String, "rank": pl.Int64}
    )
