"""Deterministic synthetic landing data: the ``events``, ``conversions`` and ``ad_spend`` streams.

``convopt generate``, the demo, the tests and the benchmarks use it to get realistic raw data without a
real pixel. The data imitate FrameCraft, a product that sells video templates and stock packs *and*
renders videos: Meta and Google Ads campaigns (plus a newsletter, organic search, referrals and direct
visits) bring visitors who browse, sign up, render videos, buy packs and subscribe. The pixel and a
server-side CAPI relay both report conversions (often the same one, with the same ``event_id``); payment
webhooks report purchases and renewals.

The simulation is columnar from start to end (polars expressions, ``int_ranges`` + ``explode``; no
Python loop per row or per person)::

    persons      one row per visitor: arrival (weekday and hour seasonality), device, place, identity
    sessions     1..10 per person: channel, ad (for paid visits), and how far the visit goes
    events       the sessions expanded into ordered steps with realistic gaps (seconds to minutes)
    conversions  signups, renders, purchases, subscriptions (+ monthly renewals) from the sessions,
                 then CAPI copies of pixel conversions, retries and late re-reports
    ad_spend     one row per day and ad with delivery; ``clicks`` = that ad's ``ad_click`` events that day

Randomness comes from named uniform streams (pyarrow's vectorised generator, seeded from the configured
seed and the stream's name), so the same configuration always writes byte-identical files and a draw
added in one place does not shift the others. Bad rows (``bad_rows_ratio``) are broken in exactly one way
each, cycling through :data:`BAD_ROW_KINDS`, so the ingest validator has something to reject.

Sizes: about 18.5 events per person for 60 days (fewer for short ranges, where later visits fall outside);
``events=N`` picks the number of persons from a small pilot run with the same seed and dates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import BinaryIO, TypeVar

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from pipelines.contract import EVENT_SOURCES, STREAMS, Column, columns

FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet")
DEFAULT_START = dt.date(2026, 1, 1)
MAX_PERSONS = 20_000_000
MAX_EVENTS = 400_000_000
MAX_DAYS = 3660
MAX_FILES_PER_STREAM = 1000
MAX_BAD_ROWS_RATIO = 0.5

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
}

MS_SECOND = 1_000
MS_MINUTE = 60 * MS_SECOND
MS_HOUR = 60 * MS_MINUTE
MS_DAY = 24 * MS_HOUR

T = TypeVar("T")
_CHUNK_ROWS = 500_000  # rows rendered and written at a time (bounds memory for text formats)
_PILOT_PERSONS = 20_000  # persons simulated to measure events per person when --events is given

# ------------------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate; invalid values raise ``ValueError`` when the config is built.

    ``events`` (approximate number of behavioural events), when given, replaces ``persons``: a small pilot
    simulation with the same seed and dates measures events per person (about 18.5 for 60 days) and sets
    ``persons = events / that ratio``. ``start`` is the first UTC day; the range is ``days`` long.
    """

    persons: int = 2000
    events: int | None = None
    seed: int = 42
    start: dt.date = DEFAULT_START
    days: int = 60
    fmt: str = "jsonl"
    bad_rows_ratio: float = 0.0
    files_per_stream: int = 1

    def __post_init__(self) -> None:
        problems = _config_problems(self)
        if problems:
            raise ValueError("invalid generator config: " + "; ".join(problems))

    @property
    def end(self) -> dt.date:
        """The first day after the range."""
        return self.start + dt.timedelta(days=self.days)


@dataclass(frozen=True)
class WrittenFile:
    """One landing file written by :func:`generate_dataset`."""

    path: Path
    stream: str
    rows: int
    bad_rows: int
    bytes: int


def generate_dataset(
    out_dir: Path, config: GeneratorConfig, console: Console | None = None
) -> list[WrittenFile]:
    """Write the three streams into ``out_dir`` (created if needed) and return what was written.

    Files are ``<stream>.<ext>``, or ``<stream>-0001.<ext>`` … when ``files_per_stream`` > 1 (ingestion
    picks the stream by the file-name prefix). Each file is written under a temporary name and renamed when
    complete, so a concurrent ingest never sees half a file. With a console, a table of the files and the
    throughput is printed.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    persons = persons_for(config)
    rng = _Rng(config.seed)
    sim = _simulate(config, persons, rng)

    def build_and_write(stream: str) -> list[WrittenFile]:
        frame = _corrupt(stream, _STREAM_BUILDERS[stream](sim, config, rng), config.bad_rows_ratio, rng)
        return _write_stream(out_dir, stream, frame, config)

    # events take most of the time: the small streams are built and written beside them on the other core
    with ThreadPoolExecutor(max_workers=2) as pool:
        written = [file for done in pool.map(build_and_write, STREAMS) for file in done]

    if console is not None:
        _print_summary(console, out_dir, written, config, persons, time.perf_counter() - started)
    return written


def persons_for(config: GeneratorConfig) -> int:
    """Number of persons to simulate: ``config.persons``, or what gives about ``config.events`` events."""
    if config.events is None:
        return config.persons
    pilot_persons = min(_PILOT_PERSONS, max(1_000, config.events))
    pilot = _simulate_sessions(
        config, _simulate_persons(config, pilot_persons, _Rng(config.seed)), _Rng(config.seed)
    )
    events_per_person = max(float(pilot["n_events"].sum()) / pilot_persons, 0.1)
    return max(1, min(MAX_PERSONS, round(config.events / events_per_person)))


def _config_problems(config: GeneratorConfig) -> list[str]:
    problems = []

    def is_int(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if not is_int(config.persons) or not 1 <= config.persons <= MAX_PERSONS:
        problems.append(f"persons must be an integer from 1 to {MAX_PERSONS:,}, got {config.persons!r}")
    if config.events is not None and (not is_int(config.events) or not 1 <= config.events <= MAX_EVENTS):
        problems.append(f"events must be None or an integer from 1 to {MAX_EVENTS:,}, got {config.events!r}")
    if not is_int(config.seed):
        problems.append(f"seed must be an integer, got {config.seed!r}")
    if not isinstance(config.start, dt.date) or isinstance(config.start, dt.datetime):
        problems.append(f"start must be a datetime.date, got {config.start!r}")
    elif config.start < dt.date(1970, 1, 1):
        problems.append(f"start must be on or after 1970-01-01, got {config.start.isoformat()}")
    if not is_int(config.days) or not 1 <= config.days <= MAX_DAYS:
        problems.append(f"days must be an integer from 1 to {MAX_DAYS}, got {config.days!r}")
    elif isinstance(config.start, dt.date) and config.start.year > 9999 - 11:
        problems.append(f"start {config.start.isoformat()} + {config.days} days is past the year 9999")
    if config.fmt not in FORMATS:
        problems.append(f"fmt must be one of {', '.join(FORMATS)}, got {config.fmt!r}")
    ratio = config.bad_rows_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= MAX_BAD_ROWS_RATIO:
        problems.append(f"bad_rows_ratio must be a number from 0 to {MAX_BAD_ROWS_RATIO}, got {ratio!r}")
    if not is_int(config.files_per_stream) or not 1 <= config.files_per_stream <= MAX_FILES_PER_STREAM:
        problems.append(
            f"files_per_stream must be an integer from 1 to {MAX_FILES_PER_STREAM}, "
            f"got {config.files_per_stream!r}"
        )
    return problems


# ------------------------------------------------------------------------------------------------------------
# Randomness
# ------------------------------------------------------------------------------------------------------------


class _Rng:
    """Named, independent random streams: the same seed, name and length always give the same draws."""

    def __init__(self, seed: int) -> None:
        self._seed = seed

    def key(self, name: str) -> int:
        digest = hashlib.blake2b(f"{self._seed}/{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") >> 1  # 63 bits: fits every consumer (pyarrow, polars, DuckDB)

    def uniform(self, name: str, n: int) -> pl.Series:
        """``n`` floats in [0, 1)."""
        return pl.Series(name, pc.random(n, initializer=self.key(name)), dtype=pl.Float64)

    def integers(self, name: str, n: int, low: int, high: int) -> pl.Series:
        """``n`` integers in [low, high)."""
        return (self.uniform(name, n) * (high - low)).floor().cast(pl.Int64) + low

    def log_uniform(self, name: str, n: int, low: float, high: float) -> pl.Series:
        """``n`` floats spread evenly on a log scale between ``low`` and ``high`` (durations, prices)."""
        return (self.uniform(name, n) * math.log(high / low) + math.log(low)).exp()

    def choice(self, name: str, n: int, weights: Sequence[float]) -> pl.Series:
        """``n`` indexes into ``weights`` drawn with those weights (Int64)."""
        total = float(sum(weights))
        cumulative = [value / total for value in accumulate(weights)]
        cumulative[-1] = 2.0  # guard against rounding: every draw < 1 lands in the table
        picks = pl.Series(cumulative).search_sorted(self.uniform(name, n), side="right")
        return picks.cast(pl.Int64).clip(0, len(weights) - 1)

    def tokens(self, name: str, n: int, words: int) -> pl.Series:
        """``n`` url-safe random strings of ``words`` * 8 random bytes (base64url without padding)."""
        hashed = pl.int_range(n * words, dtype=pl.UInt64, eager=True).hash(seed=self.key(name)).to_arrow()
        if isinstance(hashed, pa.ChunkedArray):
            hashed = hashed.combine_chunks()
        width = 8 * words
        offsets = pl.int_range(0, (n + 1) * width, width, dtype=pl.Int32, eager=True).to_arrow()
        raw = pa.Array.from_buffers(pa.binary(), n, [None, offsets.buffers()[1], hashed.buffers()[1]])
        encoded = pl.Series(raw).bin.encode("base64")
        return encoded.str.replace_many(["+", "/", "="], ["-", "_", ""])


def _pick(groups: pl.Series, u: pl.Series, options: Sequence[Sequence[object]]) -> pl.Series:
    """For each row, one of ``options[group]`` chosen uniformly by ``u`` (vectorised ragged lookup)."""
    flat = [value for group in options for value in group]
    offsets = pl.Series([0, *accumulate(len(group) for group in options)][:-1], dtype=pl.Int64)
    lengths = pl.Series([len(group) for group in options], dtype=pl.Int64)
    group_len = lengths.gather(groups)
    index = offsets.gather(groups) + (u * group_len).floor().cast(pl.Int64).clip(0, group_len - 1)
    return pl.Series(flat).gather(index)


def _enum(values: Sequence[str | None]) -> pl.Series:
    """A lookup table as an Enum series: gathering from it stays dictionary-encoded until written."""
    return pl.Series(values, dtype=pl.Enum(list(dict.fromkeys(v for v in values if v is not None))))


def _uuids(keys: pl.Series, seed: int) -> pl.Series:
    """Version-4-shaped UUID strings derived from integer keys (same key and seed, same UUID)."""
    a, b = seed & 0x7FFF_FFFF_FFFF_FFFF, (seed * 0x9E37_79B9) & 0x7FFF_FFFF_FFFF_FFFF
    frame = pl.DataFrame({"k": keys.cast(pl.Int64)})
    with duckdb.connect() as con:
        con.register("uuid_keys", frame)
        out = con.sql(
            f"""
            select (
                ((hash(k, {a}) & 18446744073709490175::ubigint) | 16384::ubigint)::uhugeint << 64
                | ((hash(k, {b}) & 4611686018427387903::ubigint) | 9223372036854775808::ubigint)::uhugeint
            )::uuid::varchar as u
            from uuid_keys
            """
        ).pl()
    return out.to_series().rechunk()  # one chunk: gathers from chunked strings are several times slower


# ------------------------------------------------------------------------------------------------------------
# Reference data: places, devices, site, catalog, campaigns
# ------------------------------------------------------------------------------------------------------------

_SITE = "https://www.framecraft.io"
_META_PIXEL_IDS = ("1184375920337461", "2841093756120934")  # main site pixel, checkout-domain pixel
_AD_ACCOUNT_CURRENCY = "USD"

_CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "BRL")
_FX_FROM_USD = (1.0, 0.93, 0.8, 1.37, 1.52, 5.0)  # list prices in other currencies, before charm rounding
# monthly plans (pro, business) in each currency, minor units
_PLAN_PRICES = {
    "USD": (1499, 2999),
    "EUR": (1399, 2799),
    "GBP": (1199, 2399),
    "CAD": (1999, 3999),
    "AUD": (2199, 4499),
    "BRL": (4990, 9990),
}
_PLANS = ("pro", "business")

# country: weight, currency, calling code, email domains (repeats weight them)
_COUNTRIES: dict[str, tuple[float, str, str, str]] = {
    "US": (
        40,
        "USD",
        "1",
        "gmail.com gmail.com gmail.com yahoo.com outlook.com icloud.com hotmail.com aol.com",
    ),
    "GB": (
        11,
        "GBP",
        "44",
        "gmail.com gmail.com outlook.com hotmail.co.uk btinternet.com yahoo.co.uk icloud.com",
    ),
    "DE": (9, "EUR", "49", "gmail.com gmx.de gmx.de web.de t-online.de outlook.de"),
    "FR": (7, "EUR", "33", "gmail.com gmail.com orange.fr free.fr hotmail.fr laposte.net"),
    "CA": (7, "CAD", "1", "gmail.com gmail.com outlook.com yahoo.ca icloud.com"),
    "AU": (6, "AUD", "61", "gmail.com gmail.com outlook.com bigpond.com icloud.com"),
    "BR": (8, "BRL", "55", "gmail.com gmail.com gmail.com hotmail.com uol.com.br outlook.com"),
    "ES": (4, "EUR", "34", "gmail.com gmail.com hotmail.es yahoo.es outlook.es"),
    "NL": (4, "EUR", "31", "gmail.com gmail.com ziggo.nl outlook.com kpnmail.nl"),
    "IE": (4, "EUR", "353", "gmail.com gmail.com eircom.net outlook.com icloud.com"),
}
# country, city, weight in country, state name, state code, UTC offset (minutes, standard time),
# postcode kind, postcode prefixes ("|" = alternatives), phone area code, phone local prefix, local digits.
# Phone numbers use ranges reserved for fiction where countries have them (555-01xx, 020 7946 0xxx, ...).
_CITIES: tuple[tuple[str, str, float, str | None, str | None, int, str, str, str, str, int], ...] = (
    ("US", "New York", 22, "New York", "NY", -300, "us", "100|101|112", "212", "55501", 7),
    ("US", "Los Angeles", 16, "California", "CA", -480, "us", "900|902", "213", "55501", 7),
    ("US", "San Francisco", 10, "California", "CA", -480, "us", "941", "415", "55501", 7),
    ("US", "Chicago", 10, "Illinois", "IL", -360, "us", "606", "312", "55501", 7),
    ("US", "Austin", 8, "Texas", "TX", -360, "us", "787", "512", "55501", 7),
    ("US", "Seattle", 8, "Washington", "WA", -480, "us", "981", "206", "55501", 7),
    ("US", "Miami", 8, "Florida", "FL", -300, "us", "331", "305", "55501", 7),
    ("US", "Boston", 7, "Massachusetts", "MA", -300, "us", "021", "617", "55501", 7),
    ("US", "Denver", 6, "Colorado", "CO", -420, "us", "802", "303", "55501", 7),
    ("US", "Atlanta", 5, "Georgia", "GA", -300, "us", "303", "404", "55501", 7),
    ("GB", "London", 55, None, None, 0, "uk", "SW1A|EC2A|N1|E14|W1D|SE1", "20", "79460", 8),
    ("GB", "Manchester", 15, None, None, 0, "uk", "M1|M4|M15", "161", "4960", 7),
    ("GB", "Birmingham", 12, None, None, 0, "uk", "B1|B5", "121", "4960", 7),
    ("GB", "Edinburgh", 10, None, None, 0, "uk", "EH1|EH3", "131", "4960", 7),
    ("GB", "Bristol", 8, None, None, 0, "uk", "BS1|BS8", "117", "4960", 7),
    ("DE", "Berlin", 35, None, None, 60, "d5", "101|103|107", "30", "23125", 8),
    ("DE", "Munich", 22, None, None, 60, "d5", "803|806", "89", "99998", 8),
    ("DE", "Hamburg", 20, None, None, 60, "d5", "200|203", "40", "66690", 8),
    ("DE", "Cologne", 13, None, None, 60, "d5", "506", "221", "4710", 7),
    ("DE", "Frankfurt", 10, None, None, 60, "d5", "603", "69", "55500", 8),
    ("FR", "Paris", 50, None, None, 60, "d5", "750", "1", "9900", 8),
    ("FR", "Lyon", 16, None, None, 60, "d5", "690", "4", "9900", 8),
    ("FR", "Marseille", 14, None, None, 60, "d5", "130", "4", "9900", 8),
    ("FR", "Toulouse", 10, None, None, 60, "d5", "310", "5", "9900", 8),
    ("FR", "Bordeaux", 10, None, None, 60, "d5", "330", "5", "9900", 8),
    ("CA", "Toronto", 45, "Ontario", "ON", -300, "ca", "M5V|M4W|M6J", "416", "55501", 7),
    ("CA", "Vancouver", 25, "British Columbia", "BC", -480, "ca", "V6B|V5K", "604", "55501", 7),
    ("CA", "Montreal", 20, "Quebec", "QC", -300, "ca", "H2X|H3B", "514", "55501", 7),
    ("CA", "Calgary", 10, "Alberta", "AB", -420, "ca", "T2P", "403", "55501", 7),
    ("AU", "Sydney", 40, "New South Wales", "NSW", 600, "d4", "20", "2", "5550", 8),
    ("AU", "Melbourne", 35, "Victoria", "VIC", 600, "d4", "30", "3", "7010", 8),
    ("AU", "Brisbane", 15, "Queensland", "QLD", 600, "d4", "40", "7", "7010", 8),
    ("AU", "Perth", 10, "Western Australia", "WA", 480, "d4", "60", "8", "9088", 8),
    ("BR", "São Paulo", 50, "São Paulo", "SP", -180, "br", "01310|04538|05425", "11", "9", 9),
    ("BR", "Rio de Janeiro", 25, "Rio de Janeiro", "RJ", -180, "br", "20040|22071", "21", "9", 9),
    ("BR", "Belo Horizonte", 13, "Minas Gerais", "MG", -180, "br", "30130", "31", "9", 9),
    ("BR", "Curitiba", 12, "Paraná", "PR", -180, "br", "80010", "41", "9", 9),
    ("ES", "Madrid", 60, None, None, 60, "d5", "280", "91", "", 7),
    ("ES", "Barcelona", 40, None, None, 60, "d5", "080", "93", "", 7),
    ("NL", "Amsterdam", 65, None, None, 60, "nl", "1012|1017|1071", "20", "", 7),
    ("NL", "Rotterdam", 35, None, None, 60, "nl", "3011|3012", "10", "", 7),
    ("IE", "Dublin", 80, None, None, 0, "ie", "D02|D04|D08", "1", "", 7),
    ("IE", "Cork", 20, None, None, 0, "ie", "T12|T23", "21", "", 6),
)

# device type, os, browser, weight, user agent
_DEVICES: tuple[tuple[str, str, str, float, str], ...] = (
    ("desktop", "Windows", "Chrome", 12.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
    ("desktop", "Windows", "Chrome", 6.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36"),
    ("desktop", "Windows", "Edge", 5.0, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0"),
    ("desktop", "Windows", "Firefox", 2.5, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"),
    ("desktop", "macOS", "Safari", 6.5, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15"),
    ("desktop", "macOS", "Chrome", 8.0, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
    ("desktop", "macOS", "Firefox", 1.0, "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"),
    ("desktop", "Linux", "Chrome", 1.2, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
    ("desktop", "Linux", "Firefox", 0.6, "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"),
    ("mobile", "iOS", "Safari", 14.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"),
    ("mobile", "iOS", "Safari", 5.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"),
    ("mobile", "iOS", "Chrome", 1.5, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"),
    ("mobile", "iOS", "Instagram", 2.0, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 327.0.0.32.120 (iPhone15,2; iOS 17_4_1; en_US; en; scale=3.00; 1179x2556; 590339436)"),
    ("mobile", "iOS", "Facebook", 1.5, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.38.109;FBBV/589433622;FBDV/iPhone15,2;FBMD/iPhone;FBSN/iOS;FBSV/17.4.1;FBSS/3;FBLC/en_US]"),
    ("mobile", "Android", "Chrome", 10.0, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36"),
    ("mobile", "Android", "Chrome", 8.0, "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36"),
    ("mobile", "Android", "Samsung Internet", 3.0, "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"),
    ("mobile", "Android", "Firefox", 0.7, "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"),
    ("tablet", "iPadOS", "Safari", 5.0, "Mozilla/5.0 (iPad; CPU OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"),
    ("tablet", "Android", "Chrome", 2.0, "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Safari/537.36"),
)  # fmt: skip

_FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Emma", "Olivia", "Liam", "Noah", "Sophia", "Lucas", "Mia", "Amelia", "José", "María", "Zoë",
    "Renée", "Björn", "François", "Chloé", "Siobhán", "Anne-Marie", "Jean-Luc", "Søren", "Łukasz", "João",
    "Maël", "Jürgen", "Ingrid", "Hélène", "Mateo", "Valentina", "Aiden", "Priya", "Wei", "Yuki", "Fatima",
    "Omar", "Chidi", "Niamh", "Seán", "Dmitri", "Ana Luísa", "Lena",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "García", "Miller", "Davis", "Rodríguez", "Martínez",
    "O'Brien", "O'Connor", "MacDonald", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois",
    "Lefèvre", "Moreau", "Martin", "Silva", "Santos", "Oliveira", "Souza", "Pereira", "Taylor", "Wilson",
    "Thompson", "White", "Harris", "Clarke", "Walker", "Nguyen", "Kim", "Patel", "Singh", "Cohen",
    "van der Berg", "De Luca", "Rossi", "Smith-Jones", "Núñez", "Åkesson", "St. John", "D'Angelo",
    "Fitzgerald", "Kowalski", "Ó Súilleabháin",
)  # fmt: skip

# channels of a visit: name, utm_source, utm_medium, referrer options
_CHANNELS = ("facebook", "instagram", "google_ads", "newsletter", "organic", "referral", "direct")
_FACEBOOK, _INSTAGRAM, _GOOGLE_ADS, _NEWSLETTER, _ORGANIC, _REFERRAL, _DIRECT = range(7)
_FIRST_VISIT_CHANNELS = (26, 17, 14, 7, 17, 6, 13)
_RETURN_VISIT_CHANNELS = (12, 9, 8, 20, 14, 3, 34)
_REFERRERS: tuple[tuple[str, ...], ...] = (
    ("https://l.facebook.com/", "https://m.facebook.com/"),
    ("https://l.instagram.com/",),
    ("https://www.google.com/",),
    ("",),
    (
        "https://www.google.com/",
        "https://www.google.com/",
        "https://www.bing.com/",
        "https://duckduckgo.com/",
    ),
    (
        "https://www.producthunt.com/",
        "https://www.reddit.com/r/VideoEditing/",
        "https://www.youtube.com/",
        "https://news.ycombinator.com/",
    ),
    ("",),
)

_ALL_REFERRERS: tuple[str, ...] = tuple(dict.fromkeys(ref for group in _REFERRERS for ref in group))

# site pages: path, title, weight as an ordinary page view
_PAGES: tuple[tuple[str, str, float], ...] = (
    ("/", "FrameCraft | Make videos that sell", 18),
    ("/pricing", "Pricing", 14),
    ("/templates", "Templates", 16),
    ("/templates/product-launch-reel", "Product launch reel", 6),
    ("/templates/real-estate-tour", "Real estate tour", 4),
    ("/templates/podcast-clip", "Podcast clip", 5),
    ("/templates/black-friday-promo", "Black Friday promo", 3),
    ("/features/ai-captions", "AI captions", 5),
    ("/features/brand-kit", "Brand kit", 3),
    ("/editor", "Editor", 8),
    ("/blog/how-to-make-reels", "How to make Reels that convert", 4),
    ("/blog/video-ads-that-convert", "Video ads that convert", 3),
    ("/help/export-settings", "Export settings", 2),
    ("/login", "Log in", 4),
    ("/signup", "Sign up", 3),
    ("/account/projects", "Your projects", 5),
    ("/whats-new", "What's new", 1),
    ("/shop", "Shop", 4),
    ("/cart", "Cart", 0),
    ("/checkout", "Checkout", 0),
    ("/lp/ai-video-editor", "AI video editor", 0),
    ("/lp/creators", "For creators", 0),
    ("/lp/spring-sale", "Spring sale", 0),
    ("/lp/reels-maker", "Reels maker", 0),
    ("/lp/small-business", "Promo videos for small business", 0),
)
_PAGE_INDEX = {path: i for i, (path, _, _) in enumerate(_PAGES)}
# landing pages of unpaid visits, by channel (paid visits land where their ad points)
_LANDINGS: tuple[tuple[str, ...], ...] = (
    ("/",),
    ("/",),
    ("/",),
    ("/whats-new", "/templates", "/pricing", "/shop"),
    ("/", "/blog/how-to-make-reels", "/templates", "/features/ai-captions", "/blog/video-ads-that-convert"),
    ("/", "/templates", "/shop"),
    ("/", "/editor", "/pricing", "/account/projects", "/shop"),
)

# shop catalog: sku, slug, list price in USD cents, weight
_CATALOG: tuple[tuple[str, str, int, float], ...] = (
    ("TPL-1001", "product-launch-reel-pack", 1499, 10),
    ("TPL-1002", "real-estate-tour-pack", 2499, 6),
    ("TPL-1003", "podcast-clip-kit", 999, 12),
    ("TPL-1004", "black-friday-promo-pack", 1999, 7),
    ("TPL-1005", "wedding-highlights-pack", 3999, 4),
    ("TPL-1006", "restaurant-menu-reels", 1499, 6),
    ("TPL-1007", "fitness-coach-bundle", 2999, 5),
    ("TPL-1008", "youtube-intro-pack", 999, 11),
    ("STK-2001", "4k-b-roll-city-pack", 4999, 3),
    ("STK-2002", "lofi-music-license-pack", 2999, 4),
    ("STK-2003", "drone-footage-pack", 7999, 2),
    ("STK-2004", "studio-sfx-library", 1999, 5),
    ("BND-3001", "creator-mega-bundle", 12999, 1.5),
    ("BND-3002", "agency-all-access-bundle", 19999, 0.8),
    ("LUT-4001", "cinematic-lut-pack", 1499, 6),
    ("FNT-5001", "kinetic-typography-pack", 2499, 4),
)
_QUANTITY_WEIGHTS = (78, 17, 5)  # 1, 2 or 3 items
_TEMPLATES: tuple[tuple[str, int], ...] = (
    ("promo-reel-15s", 15), ("product-demo-30s", 30), ("testimonial-9x16", 30), ("podcast-audiogram", 60),
    ("real-estate-walkthrough", 60), ("event-recap", 30), ("sale-countdown", 15), ("tutorial-steps", 60),
    ("before-after-split", 15), ("quote-card-animated", 6), ("logo-reveal", 6), ("slideshow-classic", 30),
    ("ugc-ad-hook", 15), ("unboxing-highlight", 30), ("menu-showcase", 15), ("fitness-progress", 30),
    ("travel-montage", 60), ("news-recap", 30), ("birthday-montage", 60), ("lyric-video", 60),
)  # fmt: skip
_RESOLUTIONS = (("720p", 20.0), ("1080p", 65.0), ("4k", 15.0))
_META_PLACEMENTS = (
    ("facebook_feed", "facebook_reels", "facebook_stories", "audience_network"),
    ("instagram_feed", "instagram_reels", "instagram_stories", "instagram_explore"),
)
_SIGNUP_METHODS = ("email", "google", "apple")
_AD_FORMATS = ("video", "carousel", "image")  # Meta creatives
_MATCH_TYPES = ("exact", "phrase", "broad")  # Google keywords

# Meta campaigns: name, audience kind, landing page, utm_medium used by whoever set it up
_META_CAMPAIGNS: tuple[tuple[str, str, str, str], ...] = (
    ("Prospecting | AI Video Editor | Broad", "prospecting", "/lp/ai-video-editor", "paid_social"),
    ("Retargeting | Site Visitors 30d", "retargeting", "/pricing", "paid_social"),
    ("Prospecting | Templates | Lookalike 1%", "prospecting", "/templates", "paid_social"),
    ("Retargeting | Cart Abandoners 7d", "retargeting", "/shop", "paid_social"),
    ("Creators | UGC | Interests", "prospecting", "/lp/creators", "cpc"),
    ("Spring Sale | Template Bundles", "prospecting", "/lp/spring-sale", "paid_social"),
    ("Reels Maker | Advantage+", "prospecting", "/lp/reels-maker", "paid_social"),
    ("Small Business | Promo Videos", "prospecting", "/lp/small-business", "cpc"),
    ("Retargeting | Free Plan Users", "retargeting", "/pricing", "paid_social"),
    ("Brand | Video Testimonials", "prospecting", "/", "paid_social"),
)
_META_AUDIENCES = {
    "prospecting": (
        "Broad | 18-65+",
        "Lookalike 1% | Purchasers",
        "Lookalike 3% | Signups",
        "Interests | Video Editing",
        "Interests | Small Business",
        "Interests | Content Creators",
        "Advantage+ Audience",
    ),
    "retargeting": ("Website Visitors 30d", "Engaged Instagram 60d", "Add to Cart 14d", "Video Viewers 50%"),
}
_META_CREATIVES = (
    ("UGC Testimonial v1", "video"),
    ("UGC Testimonial v2", "video"),
    ("Product Demo 15s", "video"),
    ("Before/After Reel", "video"),
    ("Carousel | Top Templates", "carousel"),
    ("Static | 20% Off", "image"),
    ("Founder Story 30s", "video"),
    ("Tutorial Hook 9:16", "video"),
)
# Google Ads search campaigns: name, landing page, ad groups as (name, keyword, match type)
_GOOGLE_CAMPAIGNS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Search | Brand",
        "/",
        (("Brand | Exact", "framecraft", "exact"), ("Brand | App", "framecraft video editor", "phrase")),
    ),
    (
        "Search | AI Video Editor | Generic",
        "/lp/ai-video-editor",
        (
            ("AI Video Editor", "ai video editor", "phrase"),
            ("Online Video Editor", "online video editor", "broad"),
            ("Video Maker App", "video maker app", "phrase"),
        ),
    ),
    (
        "Search | Video Templates",
        "/templates",
        (
            ("Reel Templates", "instagram reel templates", "phrase"),
            ("Promo Templates", "promo video templates", "broad"),
        ),
    ),
    (
        "Search | Competitors",
        "/lp/ai-video-editor",
        (
            ("Canva Alternative", "canva video alternative", "broad"),
            ("CapCut Alternative", "capcut alternative", "broad"),
        ),
    ),
)
_POOL_META_PROSPECTING, _POOL_META_RETARGETING, _POOL_GOOGLE = range(3)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")


def _email_slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", ascii_text.lower())


def _charm_price(cents: float) -> int:
    """A local list price: the converted amount rounded to a whole unit minus one cent (14.99, 139.99 ...)."""
    return max(99, round(cents / 100) * 100 - 1)


# every page of the site (and shop product pages) as a full URL; landing URLs with a query are added per run
_SITE_URLS = pl.Series(
    [_SITE + path for path, _, _ in _PAGES] + [f"{_SITE}/shop/{slug}" for _, slug, _, _ in _CATALOG],
    dtype=pl.String,
)


@dataclass(frozen=True)
class _World:
    """The fixed reference tables of one seed: places, devices, site, catalog and the campaign tree."""

    ads: pl.DataFrame  # one row per ad (Meta and Google) with its campaign, ad set and delivery model
    calendar: pl.DataFrame  # (pool, day, cum, ad): the ads active per pool and day, with cumulative weights
    cities: pl.DataFrame
    snippets: pl.Series  # every JSON ``properties`` object an event can carry (Enum)
    snippet_offsets: dict[str, int]  # where each kind of snippet starts in ``snippets``


def _build_world(config: GeneratorConfig) -> _World:
    ads = _campaign_tree(Random(f"convopt-campaigns/{config.seed}"), config.days)
    snippets, offsets = _property_snippets()
    return _World(
        ads=ads,
        calendar=_ad_calendar(ads, config.days),
        cities=_cities_table(),
        snippets=snippets,
        snippet_offsets=offsets,
    )


def _campaign_tree(r: Random, days: int) -> pl.DataFrame:
    """6-10 Meta campaigns (2-3 ad sets of 2-3 ads each) and 2-4 Google search campaigns, one row per ad.

    The first Meta prospecting and retargeting campaigns and the Google brand campaign run the whole range;
    the others run for part of it. Ids look like the platforms' (Meta: 15 digits starting 12021).
    """
    used_ids: set[str] = set()

    def new_id(prefix: str, digits: int) -> str:
        while True:
            value = prefix + "".join(r.choice("0123456789") for _ in range(digits))
            if value not in used_ids:
                used_ids.add(value)
                return value

    def flight(always_on: bool) -> tuple[int, int]:
        if always_on:
            return 0, days - 1
        start = r.randrange(0, max(1, days // 2))
        length = r.randint(max(1, min(days, 14)), days)
        return start, min(days - 1, start + length - 1)

    rows: list[dict[str, object]] = []
    n_meta = r.randint(6, 10)
    for rank, (name, kind, landing, medium) in enumerate(
        [*_META_CAMPAIGNS[:2], *r.sample(_META_CAMPAIGNS[2:], n_meta - 2)]
    ):
        campaign_id = new_id("12021", 10)
        start_day, end_day = flight(rank < 2)
        budget, cpm_cents = r.uniform(0.6, 2.0), r.randint(700, 2200)
        for audience in r.sample(_META_AUDIENCES[kind], r.randint(2, 3)):
            ad_set_id = new_id("12021", 10)
            region = r.choice(["US+CA", "EU", "Worldwide", "Tier 1"])
            for creative, ad_format in r.sample(_META_CREATIVES, r.randint(2, 3)):
                ad_id = new_id("12021", 10)
                rows.append(
                    {
                        "pool": _POOL_META_RETARGETING if kind == "retargeting" else _POOL_META_PROSPECTING,
                        "campaign_id": campaign_id,
                        "campaign_name": name,
                        "ad_set_id": ad_set_id,
                        "ad_set_name": f"{audience} | {region}",
                        "ad_id": ad_id,
                        "ad_name": creative,
                        "utm_medium": medium,
                        "utm_campaign": _slug(name),
                        "utm_content": f"{_slug(creative)}_{ad_id[-4:]}",
                        "utm_term": None,
                        "landing_page": _PAGE_INDEX[landing],
                        "format_index": _AD_FORMATS.index(ad_format),
                        "start_day": start_day,
                        "end_day": end_day,
                        "weight": budget * r.uniform(0.4, 1.6),
                        "ctr": r.uniform(0.006, 0.028),
                        "cpm_cents": cpm_cents,
                        "cpc_cents": None,
                    }
                )
    n_google = r.randint(2, len(_GOOGLE_CAMPAIGNS))
    for rank, (name, landing, groups) in enumerate(
        [_GOOGLE_CAMPAIGNS[0], *r.sample(_GOOGLE_CAMPAIGNS[1:], n_google - 1)]
    ):
        campaign_id = new_id("2", 10)
        start_day, end_day = flight(rank == 0)
        budget = r.uniform(0.5, 1.5)
        for group_name, keyword, match_type in groups:
            ad_set_id = new_id("1", 11)
            for variant in ("RSA v1", "RSA v2"):
                ad_id = new_id("6", 11)
                rows.append(
                    {
                        "pool": _POOL_GOOGLE,
                        "campaign_id": campaign_id,
                        "campaign_name": name,
                        "ad_set_id": ad_set_id,
                        "ad_set_name": group_name,
                        "ad_id": ad_id,
                        "ad_name": f"{group_name} | {variant}",
                        "utm_medium": "cpc",
                        "utm_campaign": _slug(name),
                        "utm_content": f"{_slug(group_name)}_{variant[-2:]}",
                        "utm_term": keyword,
                        "landing_page": _PAGE_INDEX[landing],
                        "format_index": _MATCH_TYPES.index(match_type),
                        "start_day": start_day,
                        "end_day": end_day,
                        "weight": budget * r.uniform(0.5, 1.5),
                        "ctr": r.uniform(0.015, 0.03),
                        "cpm_cents": None,
                        "cpc_cents": r.randint(60, 320),
                    }
                )
    return (
        pl.DataFrame(rows, infer_schema_length=None)
        .with_row_index("ad")
        .with_columns(pl.col("ad").cast(pl.Int64))
    )


def _ad_calendar(ads: pl.DataFrame, days: int) -> pl.DataFrame:
    """For each pool and day, the active ads with cumulative weights (pick one with a uniform draw)."""
    group = ["pool", "day"]
    return (
        ads.select("ad", "pool", "start_day", "end_day", "weight")
        .join(pl.DataFrame({"day": pl.int_range(days, dtype=pl.Int64, eager=True)}), how="cross")
        .filter(pl.col("day").is_between(pl.col("start_day"), pl.col("end_day")))
        .sort("pool", "day", "ad")
        .with_columns(cum=pl.col("weight").cum_sum().over(group) / pl.col("weight").sum().over(group))
        .with_columns(
            # the last ad of each group takes everything up to 2.0: no draw < 1 can fall off the end
            cum=pl.when(pl.int_range(pl.len()).over(group) == pl.len().over(group) - 1)
            .then(2.0)
            .otherwise(pl.col("cum"))
        )
        .select("pool", "day", "cum", "ad")
        .sort("cum")
    )


def _cities_table() -> pl.DataFrame:
    country_totals = {country: sum(c[2] for c in _CITIES if c[0] == country) for country in _COUNTRIES}
    return pl.DataFrame(
        {
            "country": [c[0] for c in _CITIES],
            "city": [c[1] for c in _CITIES],
            "weight": [_COUNTRIES[c[0]][0] * c[2] / country_totals[c[0]] for c in _CITIES],
            "state_name": [c[3] for c in _CITIES],
            "state_code": [c[4] for c in _CITIES],
            "tz_minutes": [c[5] for c in _CITIES],
            "tz_suffix": [_offset_text(c[5]) for c in _CITIES],
            "zip_kind": [c[6] for c in _CITIES],
            "zip_prefixes": [c[7] for c in _CITIES],
            "phone_area": [c[8] for c in _CITIES],
            "phone_prefix": [c[9] for c in _CITIES],
            "phone_digits": [c[10] for c in _CITIES],
            "currency_index": [_CURRENCIES.index(_COUNTRIES[c[0]][1]) for c in _CITIES],
            "calling_code": [_COUNTRIES[c[0]][2] for c in _CITIES],
            "email_domains": [_COUNTRIES[c[0]][3] for c in _CITIES],
        },
        schema_overrides={"state_name": pl.String, "state_code": pl.String},
    )


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _property_snippets() -> tuple[pl.Series, dict[str, int]]:
    """Every JSON ``properties`` object an event can carry, in one Enum table with an offset per kind."""
    parts: dict[str, list[str]] = {
        "click_meta": [
            _json({"placement": placement, "ad_format": ad_format})
            for group in _META_PLACEMENTS
            for placement in group
            for ad_format in _AD_FORMATS
        ],
        "click_google": [_json({"network": "search", "match_type": match}) for match in _MATCH_TYPES],
        "landing": [
            _json({"path": path, "referrer": referrer or None, "landing": True})
            for path, _, _ in _PAGES
            for referrer in _ALL_REFERRERS
        ],
        "page": [_json({"path": path, "title": title}) for path, title, _ in _PAGES],
        "cart": [_json({"sku": sku, "items": items}) for sku, _, _, _ in _CATALOG for items in (1, 2, 3)],
        "checkout": [
            _json({"sku": sku, "items": items, "step": "payment"})
            for sku, _, _, _ in _CATALOG
            for items in (1, 2, 3)
        ],
        "render": [
            _json({"template": template, "duration_seconds": seconds, "resolution": resolution})
            for template, seconds in _TEMPLATES
            for resolution, _ in _RESOLUTIONS
        ],
    }
    offsets = dict(zip(parts, accumulate([0, *(len(p) for p in parts.values())]), strict=False))
    return _enum([snippet for part in parts.values() for snippet in part]), offsets


# ------------------------------------------------------------------------------------------------------------
# Simulation
# ------------------------------------------------------------------------------------------------------------

# event segments, in the order they happen within a visit, and the session column that counts each
_SEG_CLICK, _SEG_LAND, _SEG_PV_A, _SEG_CART, _SEG_CHK, _SEG_RENDER, _SEG_PV_B = range(7)
_SEGMENT_COUNTS = ("n_click", "n_land", "pv_a", "n_cart", "n_chk", "n_render", "pv_b")
_SEGMENT_EVENT_NAMES = (
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
_SIGNUP, _VIDEO_RENDER, _PURCHASE, _SUBSCRIPTION = range(4)
_CONVERSION_TYPE_NAMES = ("signup", "video_render", "purchase", "subscription")
_PIXEL, _CAPI, _WEBHOOK = range(3)
_CONVERSION_SOURCE_NAMES = ("pixel", "capi", "webhook")
# how each conversion type is first reported: shares of pixel, capi, webhook
_FIRST_REPORT = {
    _SIGNUP: (75, 25, 0),
    _VIDEO_RENDER: (45, 55, 0),
    _PURCHASE: (65, 15, 20),
    _SUBSCRIPTION: (50, 20, 30),
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
# how timestamps are written: ISO with Z, ISO with +00:00, ISO in the person's local offset, epoch ms
_TIME_FORMAT_WEIGHTS = {"events": (50, 20, 15, 15), "conversions": (40, 25, 15, 20)}
_MOBILE_DEVICES = [i for i, device in enumerate(_DEVICES) if device[0] != "desktop"]


@dataclass(frozen=True)
class _Simulation:
    world: _World
    persons: pl.DataFrame  # one row per person (row index = ``p``)
    sessions: pl.DataFrame  # one row per visit (row index = ``s``)
    events: pl.DataFrame  # one row per event in the range, sorted by time: s, seg, t, item
    conversions: pl.DataFrame  # one row per reported conversion in the range, sorted by time
    clicks: pl.DataFrame  # (day, ad, clicks) counted from the ad_click events


def _epoch_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * MS_DAY


def _simulate(config: GeneratorConfig, n_persons: int, rng: _Rng) -> _Simulation:
    t0, t1 = _epoch_ms(config.start), _epoch_ms(config.end)
    world = _build_world(config)
    persons = _simulate_persons(config, n_persons, rng)
    with ThreadPoolExecutor(
        max_workers=2
    ) as pool:  # independent steps run side by side (polars frees the GIL)
        network = pool.submit(_person_network, persons, rng)
        sessions = _session_ads(config, _simulate_sessions(config, persons, rng), world, rng)
        events = _simulate_events(sessions, rng)
        conversions = pool.submit(_simulate_conversions, config, persons, sessions, events, rng)
        events = (
            _out_of_order_steps(events, rng)
            .filter(pl.col("t").is_between(t0, t1 - 1))
            .sort("t", maintain_order=True)
            .select("s", "seg", "t", "item")
        )
        clicks = (
            events.filter(pl.col("seg") == _SEG_CLICK)
            .select(day=(pl.col("t") - t0) // MS_DAY, ad=pl.lit(sessions["ad"]).gather(pl.col("s")))
            .group_by("day", "ad")
            .agg(clicks=pl.len().cast(pl.Int64))
        )
        return _Simulation(world, network.result(), sessions, events, conversions.result(), clicks)


def _simulate_persons(config: GeneratorConfig, n: int, rng: _Rng) -> pl.DataFrame:
    """One row per visitor: first arrival, place, device, first channel and what they tend to do."""
    t0 = _epoch_ms(config.start)
    weekday0 = config.start.weekday()
    # weekends are quieter; traffic grows over the range as campaigns scale up
    day_weights = [
        (0.78 if (weekday0 + d) % 7 >= 5 else 1.0) * (1.0 + 0.35 * d / config.days)
        for d in range(config.days)
    ]
    # local hour of the first visit: quiet at night, peaks at lunch and in the evening
    hour_weights = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 10, 9, 8, 8, 8, 9, 10, 11, 11, 10, 7, 4)
    cities = _cities_table()
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
            "device": rng.choice("person.device", n, [d[3] for d in _DEVICES]),
            "channel": rng.choice("person.channel", n, _FIRST_VISIT_CHANNELS),
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


def _simulate_sessions(config: GeneratorConfig, persons: pl.DataFrame, rng: _Rng) -> pl.DataFrame:
    """Visits: 1..10 per person, minutes to weeks apart, each with a channel and how far it goes.

    The ``n_*``/``pv_*`` columns count the events of each step, in this order: ad_click, landing_page_view,
    page_view (first part), add_to_cart, checkout_started, video_render_started, page_view (the rest).
    ``signup``, ``purchase`` and ``subscribe`` mark the visits with those conversions (signup and subscribe
    happen once per person, purchases may repeat).
    """
    t1 = _epoch_ms(config.end)
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
        returning_channel=rng.choice("session.channel", n, _RETURN_VISIT_CHANNELS),
        pages=_geometric(rng.uniform("session.pages", n), 6.0),
        items=rng.choice("session.items", n, _QUANTITY_WEIGHTS) + 1,
        sku=rng.choice("session.sku", n, [c[3] for c in _CATALOG]),
        extra_renders=_geometric(rng.uniform("session.renders", n), 1.2),
        **{f"u_{name}": rng.uniform(f"session.{name}", n) for name in draws},
    )
    sessions = (
        sessions.with_columns(start=pl.col("arrival") + _cum_sum_per_person(pl.col("gap")))
        .filter(pl.col("start") < t1)
        .with_columns(
            channel=pl.when(pl.col("k") == 0).then(pl.col("channel")).otherwise(pl.col("returning_channel"))
        )
        .with_columns(paid=pl.col("channel") <= _GOOGLE_ADS)
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


def _geometric(u: pl.Series, mean: float) -> pl.Series:
    """Counts 0, 1, 2, ... with the given mean (how many more pages, renders, months ...)."""
    return ((1.0 - u).log() / math.log(mean / (1.0 + mean))).floor().cast(pl.Int64)


def _session_ads(config: GeneratorConfig, sessions: pl.DataFrame, world: _World, rng: _Rng) -> pl.DataFrame:
    """The ad behind each paid visit (weighted among the ads active that day) and the visit's tracking."""
    t0 = _epoch_ms(config.start)
    n = sessions.height
    sessions = sessions.with_columns(
        day=(pl.col("start") - t0) // MS_DAY,
        pool=pl.when(pl.col("channel") == _GOOGLE_ADS)
        .then(_POOL_GOOGLE)
        .when(pl.col("paid") & (pl.col("k") > 0) & (pl.lit(rng.uniform("session.retarget", n)) < 0.6))
        .then(_POOL_META_RETARGETING)
        .when(pl.col("paid"))
        .then(_POOL_META_PROSPECTING)
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

    meta = pl.col("channel") <= _INSTAGRAM
    meta_rows = (sessions["channel"] <= _INSTAGRAM).arg_true()
    fbclid = pl.repeat(None, n, dtype=pl.String, eager=True).scatter(
        meta_rows, "IwAR" + rng.tokens("session.fbclid", meta_rows.len(), 6).str.head(58)
    )
    newsletter, paid = pl.col("channel") == _NEWSLETTER, pl.col("paid")
    organic_utm = (pl.col("channel") == _ORGANIC) & (pl.lit(rng.uniform("session.organic_utm", n)) < 0.4)
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
        utm_source=pl.when(pl.col("channel") <= _GOOGLE_ADS)
        .then(pl.col("channel"))
        .when(organic_utm)
        .then(_GOOGLE_ADS)
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
        "campaign_id": _enum(ads["campaign_id"].to_list()).gather(sessions["ad"]),
        "ad_set_id": _enum(ads["ad_set_id"].to_list()).gather(sessions["ad"]),
        "ad_id": _enum(ads["ad_id"].to_list()).gather(sessions["ad"]),
        "utm_source": _enum(["facebook", "instagram", "google", "newsletter"]).gather(codes["utm_source"]),
        "utm_medium": _enum(mediums).gather(codes["utm_medium"]),
        "utm_campaign": _enum(campaigns + issues).gather(codes["utm_campaign"]),
        "utm_content": _enum(ad_contents + contents).gather(codes["utm_content"]),
        "utm_term": _enum(ads["utm_term"].to_list()).gather(sessions["ad"]),
        "fbclid": fbclid,
    }
    referrers = [[_ALL_REFERRERS.index(ref) for ref in group] for group in _REFERRERS]
    landings = [[_PAGE_INDEX[path] for path in group] for group in _LANDINGS]
    sessions = sessions.with_columns(
        **tracking,
        ad_format=of_ad("format_index"),
        landing_page=pl.when(paid)
        .then(of_ad("landing_page"))
        .otherwise(pl.lit(_pick(sessions["channel"], rng.uniform("session.landing", n), landings))),
        referrer=pl.lit(_pick(sessions["channel"], rng.uniform("session.referrer", n), referrers)),
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
                pl.lit(_SITE_URLS).gather(pl.col("landing_page")),
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


def _simulate_events(sessions: pl.DataFrame, rng: _Rng) -> pl.DataFrame:
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
    renders = (seg == _SEG_RENDER).arg_true()
    template = rng.choice("event.template", renders.len(), [1.0] * len(_TEMPLATES))
    resolution = rng.choice("event.resolution", renders.len(), [w for _, w in _RESOLUTIONS])
    render_item = pl.repeat(None, n, dtype=pl.Int64, eager=True).scatter(
        renders, template * len(_RESOLUTIONS) + resolution
    )
    shop_item = (sessions["sku"] * 3 + sessions["items"] - 1).gather(s)
    item = pl.select(
        pl.when(pl.lit(seg).is_in([_SEG_CART, _SEG_CHK]))
        .then(pl.lit(shop_item))
        .otherwise(pl.lit(render_item))
    ).to_series()
    return pl.DataFrame({"s": s, "seg": seg, "t": sessions["start"].gather(s) + offset, "item": item})


def _out_of_order_steps(events: pl.DataFrame, rng: _Rng) -> pl.DataFrame:
    """Move 1.5% of the later steps of a visit a little earlier (client clocks, batching)."""
    n = events.height
    early = (rng.uniform("event.early", n) < 0.015) & (events["seg"] > _SEG_CLICK)
    shift = rng.integers("event.early_ms", n, MS_SECOND, 90 * MS_SECOND) * early.cast(pl.Int64)
    return events.with_columns(t=pl.col("t") - shift)


def _simulate_conversions(
    config: GeneratorConfig, persons: pl.DataFrame, sessions: pl.DataFrame, events: pl.DataFrame, rng: _Rng
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
        type=pl.lit(_SIGNUP),
        t="t_signup",
        value_cents=pl.lit(0),
        item=pl.lit(None, pl.Int64),
        renewal=pl.lit(False),
    )
    started = events.filter(pl.col("seg") == _SEG_RENDER)
    renders = started.filter(rng.uniform("conversion.render_completes", started.height) < 0.85)
    renders = renders.select(
        p=pl.lit(sessions["p"]).gather(pl.col("s")),
        s="s",
        type=pl.lit(_VIDEO_RENDER),
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
            for _, _, price, _ in _CATALOG
            for fx in _FX_FROM_USD
        ],
        dtype=pl.Int64,
    )
    currency = pl.lit(persons["currency"]).gather(pl.col("p"))
    purchases = timed.filter(pl.col("purchase")).select(
        "p",
        "s",
        type=pl.lit(_PURCHASE),
        t="t_purchase",
        value_cents=pl.lit(prices).gather(pl.col("sku") * len(_CURRENCIES) + currency) * pl.col("items"),
        item=pl.col("sku") * 3 + pl.col("items") - 1,
        renewal=pl.lit(False),
    )
    plan_prices = pl.Series(
        [_PLAN_PRICES[c][plan] for plan in range(len(_PLANS)) for c in _CURRENCIES], dtype=pl.Int64
    )
    subscriptions = timed.filter(pl.col("subscribe"))
    m = subscriptions.height
    plan = (rng.uniform("conversion.plan", m) < 0.3).cast(pl.Int64)  # 0 = pro, 1 = business
    subscriptions = subscriptions.select(
        "p",
        "s",
        type=pl.lit(_SUBSCRIPTION),
        t="t_subscription",
        value_cents=pl.lit(plan_prices).gather(pl.lit(plan) * len(_CURRENCIES) + currency),
        item=pl.lit(plan),
        renewal=pl.lit(False),
        months=pl.lit(_geometric(rng.uniform("conversion.churn", m), 7.0) + 1),
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
        .then(_WEBHOOK)
        .when(pl.lit(u) < pl.lit(pixel_share))
        .then(_PIXEL)
        .when(pl.lit(u) < pl.lit(capi_share))
        .then(_CAPI)
        .otherwise(_WEBHOOK)
        .cast(pl.Int64),
        copy=pl.lit(_COPY_ORIGINAL, pl.Int64),
        pixel_id=(pl.lit(rng.uniform("conversion.pixel_id", n)) < 0.1).cast(pl.Int64),
        order=pl.when(pl.col("type") == _PURCHASE).then(
            1_048_576 + (pl.col("type") == _PURCHASE).cast(pl.Int64).cum_sum() * 3 + pl.col("key") % 3
        ),
        method=pl.col("key") % len(_SIGNUP_METHODS),
    )
    capi_copies = (
        base.with_columns(
            u=rng.uniform("conversion.capi_copy", n),
            delay=rng.log_uniform("conversion.capi_delay", n, 2 * MS_SECOND, 10 * MS_MINUTE).cast(pl.Int64),
        )
        .filter((pl.col("source") == _PIXEL) & (pl.col("u") < _CAPI_COPY_SHARE))
        .with_columns(
            source=pl.lit(_CAPI, pl.Int64), t=pl.col("t") + pl.col("delay"), copy=pl.lit(_COPY_CAPI, pl.Int64)
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
            source=pl.when(pl.col("source") == _PIXEL).then(_CAPI).otherwise(pl.col("source")).cast(pl.Int64),
            t=pl.col("t") + pl.col("delay"),
            copy=pl.lit(_COPY_LATE, pl.Int64),
        )
        .drop("u", "delay")
    )
    reported = _reporting_details(pl.concat([base, capi_copies, late], how="vertical", rechunk=True), rng)
    retries = reported.filter(rng.uniform("conversion.retry", reported.height) < _RETRY_SHARE)
    t0, t1 = _epoch_ms(config.start), _epoch_ms(config.end)
    return (
        pl.concat(
            [reported, retries.with_columns(copy=pl.lit(_COPY_RETRY, pl.Int64))], how="vertical", rechunk=True
        )
        .filter(pl.col("t").is_between(t0, t1 - 1))
        .sort("t", "key", "copy", maintain_order=True)
    )


def _reporting_details(rows: pl.DataFrame, rng: _Rng) -> pl.DataFrame:
    """Per reported row: which optional fields it carries, how PII is spelled, how its time is written.

    Drawn before retries are added, so a retry repeats its row exactly.
    """
    n = rows.height
    source = rows["source"]
    has = {
        f"has_{field}": rng.uniform(f"conversion.has_{field}", n) < pl.Series(shares).gather(source)
        for field, shares in _PRESENCE.items()
    }
    zero_value = rows["type"].is_in([_SIGNUP, _VIDEO_RENDER])
    value_missing = zero_value & (rng.uniform("conversion.value_missing", n) < 0.1)
    return rows.with_columns(
        **has,
        value_cents=pl.when(pl.lit(value_missing)).then(None).otherwise(pl.col("value_cents")),
        has_currency=~pl.lit(value_missing)
        & (~pl.lit(zero_value) | (pl.lit(rng.uniform("conversion.currency", n)) < 0.4)),
        spelling=rng.integers(
            "conversion.spelling", n, 0, 1 << 20
        ),  # one draw; each PII field uses other bits
        time_format=rng.choice("conversion.time_format", n, _TIME_FORMAT_WEIGHTS["conversions"]),
    )


def _person_network(persons: pl.DataFrame, rng: _Rng) -> pl.DataFrame:
    """What every event of a person carries: person_id, IP address (15% IPv6) and the _fbp cookie."""
    n = persons.height
    # public IPv4 (stepping over loopback and the private blocks), or IPv6 from a few providers' prefixes
    octets = [
        rng.integers(f"person.ipv4_{i}", n, low, high)
        for i, (low, high) in enumerate(((11, 224), (0, 256), (0, 256), (1, 255)))
    ]
    octets[0] = octets[0] + octets[0].is_in([127, 169, 172, 192]).cast(pl.Int64)
    hex_groups = pl.Series([f"{value:x}" for value in range(1 << 16)])
    groups = [pl.lit(hex_groups.gather(rng.integers(f"person.ipv6_{i}", n, 0, 1 << 16))) for i in range(4)]
    prefixes = pl.Series(["2600:1700:", "2601:646:", "2a00:23c5:", "2003:e2:", "2a01:cb00:", "2804:14c:"])
    prefix = pl.lit(prefixes.gather(rng.integers("person.ipv6_prefix", n, 0, prefixes.len())))
    ip = pl.select(
        pl.when(pl.lit(rng.uniform("person.ipv6", n)) < 0.15)
        .then(
            pl.concat_str(
                [prefix, groups[0], pl.lit(":"), groups[1], pl.lit("::"), groups[2], pl.lit(":"), groups[3]]
            )
        )
        .otherwise(pl.concat_str([pl.lit(o).cast(pl.String) for o in octets], separator="."))
    ).to_series()
    fbp = pl.select(
        pl.concat_str(
            [
                pl.lit("fb.1."),
                pl.lit(persons["arrival"]).cast(pl.String),
                pl.lit("."),
                pl.lit(rng.integers("person.fbp", n, 1_000_000_000, 10_000_000_000)).cast(pl.String),
            ]
        )
    ).to_series()
    return persons.with_columns(person_id=_uuids(persons["p"], rng.key("person.id")), ip=ip, fbp=fbp)


def _person_pii(persons: pl.DataFrame, cities: pl.DataFrame, rng: _Rng) -> pl.DataFrame:
    """Identity fields of the given persons, each in several spellings (``email0`` … ``email2``, ...).

    Only persons with conversions need them. The spellings are what Meta's normalization has to undo: mixed
    case and stray spaces, phones with and without country code, dates of birth in three formats, genders as
    F/f/female/Female, states as names and codes, postcodes with and without spaces or ZIP+4.
    """
    n, city = persons.height, persons["city"]
    first = rng.integers("pii.first_name", n, 0, len(_FIRST_NAMES))
    last = rng.integers("pii.last_name", n, 0, len(_LAST_NAMES))
    domains = cities["email_domains"].gather(city).str.split(" ")
    parts = pl.DataFrame(
        {
            "f": pl.Series([_email_slug(x) for x in _FIRST_NAMES]).gather(first),
            "l": pl.Series([_email_slug(x) for x in _LAST_NAMES]).gather(last),
            "n": rng.integers("pii.email_number", n, 1, 100).cast(pl.String),
            "style": rng.integers("pii.email_style", n, 0, 5),
            "domain": domains.list.get(
                (rng.uniform("pii.email_domain", n) * domains.list.len()).floor().cast(pl.Int64)
            ),
            "tag": pl.Series(["", "+shop", "+framecraft", "+promo"]).gather(
                rng.choice("pii.email_tag", n, (88, 4, 4, 4))
            ),
        }
    )
    f, surname, number = pl.col("f"), pl.col("l"), pl.col("n")
    local = (
        pl.when(pl.col("style") == 0)
        .then(pl.concat_str([f, pl.lit("."), surname]))
        .when(pl.col("style") == 1)
        .then(pl.concat_str([f, surname, number]))
        .when(pl.col("style") == 2)
        .then(pl.concat_str([f.str.head(1), surname]))
        .when(pl.col("style") == 3)
        .then(pl.concat_str([f, pl.lit("_"), surname, number]))
        .otherwise(pl.concat_str([f, number]))
    )
    email = parts.select(pl.concat_str([local, pl.col("tag"), pl.lit("@"), pl.col("domain")])).to_series()
    first_name = pl.Series(_FIRST_NAMES).gather(first)
    last_name = pl.Series(_LAST_NAMES).gather(last)
    birth = rng.integers(
        "pii.birth", n, _days_since_epoch(dt.date(1958, 1, 1)), _days_since_epoch(dt.date(2007, 1, 1))
    ).cast(pl.Date)
    gender = pl.Series(["F", "M", None]).gather(rng.choice("pii.gender", n, (47, 45, 8)))
    state_name, state_code = cities["state_name"].gather(city), cities["state_code"].gather(city)
    female = pl.lit(gender) == "F"
    return pl.DataFrame(
        {
            "crm_id": "crm_" + ((persons["p"] * 7919) % 90_000_000 + 10_000_000).cast(pl.String),
            "email0": email,
            "email1": email.str.to_titlecase(),
            "email2": "  " + email.str.to_uppercase() + " ",
            "first_name0": first_name,
            "first_name1": first_name.str.to_uppercase(),
            "first_name2": " " + first_name.str.to_lowercase(),
            "last_name0": last_name,
            "last_name1": last_name.str.to_uppercase(),
            "last_name2": last_name.str.to_lowercase(),
            "date_of_birth0": birth.dt.strftime("%Y-%m-%d"),
            "date_of_birth1": birth.dt.strftime("%m/%d/%Y"),
            "date_of_birth2": birth.dt.strftime("%Y%m%d"),
            "gender0": gender,
            "gender1": gender.str.to_lowercase(),
            "gender2": pl.select(
                pl.when(female).then(pl.lit("female")).when(pl.lit(gender) == "M").then(pl.lit("male"))
            ).to_series(),
            "gender3": pl.select(
                pl.when(female).then(pl.lit("Female")).when(pl.lit(gender) == "M").then(pl.lit("Male"))
            ).to_series(),
            "state0": state_name,
            "state1": state_code,
            "state2": state_code.str.to_lowercase(),
            **_phones(persons, cities, rng),
            **_postcodes(persons, cities, rng),
        }
    )


def _days_since_epoch(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _phones(persons: pl.DataFrame, cities: pl.DataFrame, rng: _Rng) -> dict[str, pl.Series]:
    """Each person's phone number written three ways: international, with 00 or dots, national."""
    n, city = persons.height, persons["city"]
    frame = pl.DataFrame(
        {
            "area": cities["phone_area"].gather(city),
            "cc": cities["calling_code"].gather(city),
            "digits": cities["phone_digits"].gather(city).cast(pl.Int64),
            "local": cities["phone_prefix"].gather(city)
            + rng.integers("pii.phone", n, 0, 10**9).cast(pl.String).str.zfill(9),
        }
    ).with_columns(local=pl.col("local").str.head(pl.col("digits")))
    frame = frame.with_columns(
        head=pl.col("local").str.head(
            pl.when(pl.col("digits") >= 7).then(pl.col("digits") - 4).otherwise(pl.col("digits") // 2)
        )
    ).with_columns(tail=pl.col("local").str.slice(pl.col("head").str.len_chars()))
    nanp = pl.col("cc") == "1"
    area, head, tail, cc, local = (
        pl.col("area"),
        pl.col("head"),
        pl.col("tail"),
        pl.col("cc"),
        pl.col("local"),
    )
    out = frame.select(
        phone0=pl.when(nanp)
        .then(pl.format("+1 ({}) {}-{}", area, local.str.head(3), local.str.slice(3)))
        .otherwise(pl.format("+{} {} {} {}", cc, area, head, tail)),
        phone1=pl.when(nanp)
        .then(pl.format("{}.{}.{}", area, local.str.head(3), local.str.slice(3)))
        .otherwise(pl.format("00{} {} {}{}", cc, area, head, tail)),
        phone2=pl.when(nanp)
        .then(pl.format("({}) {}-{}", area, local.str.head(3), local.str.slice(3)))
        .when(cc == "55")
        .then(pl.format("({}) {}-{}", area, head, tail))
        .otherwise(pl.format("0{} {} {}", area, head, tail)),
    )
    return {name: out[name] for name in out.columns}


def _postcodes(persons: pl.DataFrame, cities: pl.DataFrame, rng: _Rng) -> dict[str, pl.Series]:
    """Each person's postcode: the city's prefix plus random characters, in three spellings."""
    n, city = persons.height, persons["city"]
    prefixes = cities["zip_prefixes"].gather(city).str.split("|")
    letters = pl.Series(list("ABDEFGHJLNPQRSTUWXYZ"))
    frame = pl.DataFrame(
        {
            "kind": cities["zip_kind"].gather(city),
            "prefix": prefixes.list.get(
                (rng.uniform("pii.zip_prefix", n) * prefixes.list.len()).floor().cast(pl.Int64)
            ),
            "d": rng.integers("pii.zip_digits", n, 0, 10_000).cast(pl.String).str.zfill(4),
            "l1": letters.gather(rng.integers("pii.zip_letter1", n, 0, letters.len())),
            "l2": letters.gather(rng.integers("pii.zip_letter2", n, 0, letters.len())),
            "plus4": rng.integers("pii.zip_plus4", n, 1, 10_000).cast(pl.String).str.zfill(4),
        }
    )
    kind, prefix, d, l1, l2 = pl.col("kind"), pl.col("prefix"), pl.col("d"), pl.col("l1"), pl.col("l2")
    canonical = (
        pl.when(kind == "us")
        .then(pl.concat_str([prefix, d.str.slice(2, 2)]))
        .when(kind == "uk")
        .then(pl.concat_str([prefix, pl.lit(" "), d.str.slice(3, 1), l1, l2]))
        .when(kind == "ca")
        .then(pl.concat_str([prefix, pl.lit(" "), d.str.slice(2, 1), l1, d.str.slice(3, 1)]))
        .when(kind == "d4")
        .then(pl.concat_str([prefix, d.str.slice(2, 2)]))
        .when(kind == "br")
        .then(pl.concat_str([prefix, pl.lit("-"), d.str.slice(1, 3)]))
        .when(kind == "nl")
        .then(pl.concat_str([prefix, pl.lit(" "), l1, l2]))
        .when(kind == "ie")
        .then(pl.concat_str([prefix, pl.lit(" "), l1, d.str.slice(1, 3)]))
        .otherwise(pl.concat_str([prefix, d]).str.head(5))
    )
    spaced = kind.is_in(["uk", "ca", "nl", "ie"])
    out = frame.with_columns(zip0=canonical).select(
        "zip0",
        zip1=pl.when(kind == "us")
        .then(pl.concat_str([pl.col("zip0"), pl.lit("-"), pl.col("plus4")]))
        .when(spaced)
        .then(pl.col("zip0").str.replace(" ", "", literal=True))
        .when(kind == "br")
        .then(pl.col("zip0").str.replace("-", "", literal=True))
        .otherwise(pl.col("zip0")),
        zip2=pl.when(kind == "us")
        .then(pl.concat_str([pl.col("zip0"), pl.col("plus4")]))
        .when(spaced)
        .then(pl.col("zip0").str.to_lowercase())
        .otherwise(pl.col("zip0")),
    )
    return {name: out[name] for name in out.columns}


# ------------------------------------------------------------------------------------------------------------
# Streams: the simulation as contract columns (repeated values as Enums, times as epoch ms + format)
# ------------------------------------------------------------------------------------------------------------


def _time_columns(
    name: str, t: pl.Series, time_format: pl.Series, city: pl.Series, cities: pl.DataFrame
) -> dict[str, pl.Series]:
    """A timestamp as epoch ms plus how to write it.

    ``__sfx_<name>`` is the offset suffix (``Z``, ``+00:00`` or the person's local offset; null = write epoch
    ms) and ``__shift_<name>`` the minutes to add before printing the local time for that suffix.
    """
    suffixes = _enum(["Z", "+00:00", *cities["tz_suffix"].to_list()])
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


def _events_frame(sim: _Simulation, config: GeneratorConfig, rng: _Rng) -> pl.DataFrame:
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
        pl.when(pl.lit(sessions["app"].gather(s)) & (pl.col("seg") != _SEG_CLICK))
        .then(3)
        .when((pl.col("seg") == _SEG_CHK) & (pl.lit(rng.uniform("event.server_checkout", n)) < 0.15))
        .then(1)
        .otherwise(0)
    ).to_series()
    web, not_click = source == 0, seg != _SEG_CLICK
    # attribution rides on the ad click and the landing of tagged visits (paid, newsletter, tagged organic)
    touch = frame.select(
        pl.when(
            (pl.col("seg") <= _SEG_LAND) & pl.lit(sessions["utm_source"].is_not_null()).gather(pl.col("s"))
        ).then(pl.col("s"))
    ).to_series()
    page = rng.choice("event.page", n, [w for _, _, w in _PAGES])
    # properties: the visit's own snippet for its ad click and landing; later steps by segment and page/item
    off = world.snippet_offsets
    placement = rng.integers("event.placement", sessions.height, 0, 4)
    entry = sessions.select(
        click=pl.when(pl.col("channel") <= _INSTAGRAM)
        .then(
            off["click_meta"] + (pl.col("channel") * 4 + placement) * len(_AD_FORMATS) + pl.col("ad_format")
        )
        .otherwise(off["click_google"] + pl.col("ad_format")),
        landing=off["landing"] + pl.col("landing_page") * len(_ALL_REFERRERS) + pl.col("referrer"),
    )
    step_offset = pl.Series([0, 0, off["page"], off["cart"], off["checkout"], off["render"], off["page"]])
    snippet = frame.select(
        pl.when(pl.col("seg") == _SEG_CLICK)
        .then(pl.lit(entry["click"]).gather(pl.col("s")))
        .when(pl.col("seg") == _SEG_LAND)
        .then(pl.lit(entry["landing"]).gather(pl.col("s")))
        .otherwise(pl.lit(step_offset).gather(pl.col("seg")) + pl.col("item").fill_null(pl.lit(page)))
    ).to_series()
    site_page = (
        frame.with_columns(page=page)
        .select(
            pl.when(pl.col("seg") == _SEG_CART)
            .then(len(_PAGES) + pl.col("item") // 3)
            .when(pl.col("seg") == _SEG_CHK)
            .then(_PAGE_INDEX["/checkout"])
            .when(pl.col("seg") == _SEG_RENDER)
            .then(_PAGE_INDEX["/editor"])
            .otherwise(pl.col("page"))
        )
        .to_series()
    )
    url = frame.select(
        pl.when(pl.lit(source) == 3)
        .then(None)
        .when(pl.col("seg") <= _SEG_LAND)
        .then(pl.lit(sessions["landing_url"]).gather(pl.col("s")))
        .otherwise(pl.lit(_SITE_URLS).gather(pl.lit(site_page)))
    ).to_series()
    cookies = web & not_click
    values: dict[str, pl.Series] = {
        "event_id": _uuids(pl.int_range(n, dtype=pl.Int64, eager=True), rng.key("event.id")),
        "person_id": persons["person_id"].gather(p),
        "event_name": _enum(_SEGMENT_EVENT_NAMES).gather(seg),
        **_time_columns(
            "event_time",
            events["t"],
            rng.choice("event.time_format", n, _TIME_FORMAT_WEIGHTS["events"]),
            city,
            cities,
        ),
        "source": _enum(EVENT_SOURCES).gather(source),
        **{name: sessions[name].gather(touch) for name in _ATTRIBUTION_COLUMNS},
        **_device_and_place(device, city, cities),
        "event_source_url": url,
        "client_ip_address": persons["ip"].gather(p),
        "client_user_agent": _enum([d[4] for d in _DEVICES]).gather(device),
        "fbp": _where(cookies, persons["fbp"].gather(p)),
        "fbc": _where(cookies, sessions["fbc"].gather(s)),
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


def _where(mask: pl.Series, values: pl.Series) -> pl.Series:
    """``values`` where ``mask`` holds, null elsewhere (keeps the dtype, Enums included)."""
    return pl.select(pl.when(pl.lit(mask)).then(pl.lit(values))).to_series().alias(values.name)


def _device_and_place(device: pl.Series, city: pl.Series, cities: pl.DataFrame) -> dict[str, pl.Series]:
    return {
        "device_type": _enum([d[0] for d in _DEVICES]).gather(device),
        "browser": _enum([d[2] for d in _DEVICES]).gather(device),
        "os": _enum([d[1] for d in _DEVICES]).gather(device),
        "country": _enum(cities["country"].to_list()).gather(city),
        "city": _enum(cities["city"].to_list()).gather(city),
    }


def _conversions_frame(sim: _Simulation, config: GeneratorConfig, rng: _Rng) -> pl.DataFrame:
    rows, persons, sessions, world = sim.conversions, sim.persons, sim.sessions, sim.world
    cities = world.cities
    p, s, ctype, source = rows["p"], rows["s"], rows["type"], rows["source"]
    city, device = persons["city"].gather(p), persons["device"].gather(p)
    # identity fields only for the persons who convert; ``slot`` = a row's person among them
    converting = p.unique().sort()
    pii = _person_pii(persons[converting], cities, rng)
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
        return _where(mask, stacked.gather(choice * pii.height + slot)).alias(field)

    touch = _where(has("attribution"), sessions["touch_session"].gather(s))
    type_urls = _enum(
        [
            f"{_SITE}/signup/complete",
            f"{_SITE}/editor",
            f"{_SITE}/checkout/thank-you",
            f"{_SITE}/billing/success",
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
        pl.when(pl.col("type") == _SIGNUP)
        .then(pl.format('{{"method":"{}"}}', pl.lit(pl.Series(_SIGNUP_METHODS)).gather(pl.col("method"))))
        .when(pl.col("type") == _VIDEO_RENDER)
        .then(pl.lit(renders).gather((off["render"] + pl.col("item")).clip(0, renders.len() - 1)))
        .when(pl.col("type") == _PURCHASE)
        .then(
            pl.format(
                '{{"sku":"{}","items":{},"unit_price_cents":{}}}',
                pl.lit(pl.Series([c[0] for c in _CATALOG])).gather(
                    (pl.col("item") // 3).clip(0, len(_CATALOG) - 1)
                ),
                pl.col("item") % 3 + 1,
                pl.col("value") // (pl.col("item") % 3 + 1),
            )
        )
        .otherwise(
            pl.format(
                '{{"plan":"{}","billing_period":"monthly","renewal":{}}}',
                pl.lit(pl.Series(_PLANS)).gather(pl.col("item").clip(0, len(_PLANS) - 1)),
                pl.lit(rows["renewal"]).cast(pl.String),
            )
        )
    ).to_series()
    values: dict[str, pl.Series] = {
        "event_id": _uuids(rows["key"], rng.key("conversion.id")),
        "person_id": person("person_id"),
        "conversion_type": _enum(_CONVERSION_TYPE_NAMES).gather(ctype),
        "conversion_source": _enum(_CONVERSION_SOURCE_NAMES).gather(source),
        "value_cents": rows["value_cents"],
        "currency": _where(rows["has_currency"], _enum(_CURRENCIES).gather(person("currency"))),
        **_time_columns("conversion_time", rows["t"], rows["time_format"], city, cities),
        **{name: sessions[name].gather(touch) for name in _ATTRIBUTION_COLUMNS},
        **{
            name: _where(
                has("city" if name == "city" else "country" if name == "country" else "device"), column
            )
            for name, column in _device_and_place(device, city, cities).items()
        },
        "meta_pixel_id": _where(has("pixel_id"), _enum(_META_PIXEL_IDS).gather(rows["pixel_id"])),
        "order_id": order_id,
        "email": spelled("email", 3, 1, has("email")),
        "phone": spelled("phone", 3, 3, has("phone")),
        "first_name": spelled("first_name", 3, 9, has("name")),
        "last_name": spelled("last_name", 3, 9, has("name")),
        "date_of_birth": spelled("date_of_birth", 3, 27, has("date_of_birth")),
        "gender": spelled("gender", 4, 81, has("gender")),
        "state": spelled("state", 3, 324, has("state")),
        "zip": spelled("zip", 3, 972, has("zip")),
        "external_id": _where(
            has("external_id"),
            pl.select(
                pl.when(pl.lit(source) == _WEBHOOK)
                .then(pl.lit(pii["crm_id"].gather(slot)))
                .otherwise(pl.lit(person("person_id")).cast(pl.String))
            ).to_series(),
        ),
        "event_source_url": _where(has("event_source_url"), type_urls.gather(ctype)),
        "client_ip_address": _where(has("client"), person("ip")),
        "client_user_agent": _where(has("client"), _enum([d[4] for d in _DEVICES]).gather(device)),
        "fbp": _where(has("fbp"), person("fbp")),
        "fbc": _where(has("fbc"), sessions["fbc"].gather(s)),
        "properties": properties,
    }
    return pl.DataFrame(values)


def _ad_spend_frame(sim: _Simulation, config: GeneratorConfig, rng: _Rng) -> pl.DataFrame:
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
                name: _enum(ads[name].to_list()).gather(ad)
                for name in ("campaign_id", "campaign_name", "ad_set_id", "ad_set_name", "ad_id", "ad_name")
            },
            "spend_cents": frame["spend_cents"],
            "currency": _enum([_AD_ACCOUNT_CURRENCY] * max(n, 1)).head(n),
            "impressions": frame["impressions"],
            "clicks": frame["clicks"],
        }
    )
    return out.sort("date", "campaign_id", "ad_set_id", "ad_id", maintain_order=True)


_STREAM_BUILDERS = {"events": _events_frame, "conversions": _conversions_frame, "ad_spend": _ad_spend_frame}


# ------------------------------------------------------------------------------------------------------------
# Bad rows: a deterministic share of rows, each broken in exactly one way
# ------------------------------------------------------------------------------------------------------------

_Breaker = Callable[[pl.DataFrame, pl.Expr, pl.Expr], dict[str, pl.Expr]]  # (frame, is this kind, variant)
_BAD_TIMESTAMPS = ('"yesterday"', '"2026-13-45T00:00:00Z"', '"not a timestamp"')
_BAD_PROPERTIES = ("[1,2]", '"not json"', "42")  # an array, a string, a number: none is an object
_BAD_CURRENCIES = ("US", "usd1", "XYZ")
_TOO_LONG = {
    "events": ("utm_campaign", "event_source_url", "client_user_agent"),
    "conversions": ("email", "order_id", "first_name"),
    "ad_spend": ("campaign_name", "ad_set_name", "ad_name"),
}


def _corrupt(stream: str, frame: pl.DataFrame, ratio: float, rng: _Rng) -> pl.DataFrame:
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
        __bad=bad, __kind=_where(bad, before % len(kinds)), __variant=(before // len(kinds)) % 3
    )
    for number, kind in enumerate(kinds):
        frame = frame.with_columns(**breakers[kind](frame, pl.col("__kind") == number, pl.col("__variant")))
    return frame.drop("__kind", "__variant")


def _breakers(stream: str) -> dict[str, _Breaker]:
    time_column = "event_time" if stream == "events" else "conversion_time"
    return {
        "missing_event_id": _null("event_id"),
        "missing_person_id": _null("person_id"),
        "missing_event_name": _null("event_name"),
        "missing_event_time": _null("event_time"),
        "missing_conversion_type": _null("conversion_type"),
        "missing_conversion_time": _null("conversion_time"),
        "missing_date": _null("date"),
        "missing_campaign_id": _null("campaign_id"),
        "missing_spend_cents": _null("spend_cents"),
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


# ------------------------------------------------------------------------------------------------------------
# Writing: split into files, render chunk by chunk, rename into place when complete
# ------------------------------------------------------------------------------------------------------------


def _write_stream(
    out_dir: Path, stream: str, frame: pl.DataFrame, config: GeneratorConfig
) -> list[WrittenFile]:
    k, n = config.files_per_stream, frame.height
    contract = columns(stream)
    overridden = frozenset(c.name for c in contract if f"__bad_{c.name}" in frame.columns)
    writer = {"jsonl": _JsonlWriter, "csv": _CsvWriter, "parquet": _ParquetWriter}[config.fmt](
        stream, frame, overridden
    )
    written = []
    for number in range(k):
        low, high = n * number // k, n * (number + 1) // k
        name = f"{stream}.{config.fmt}" if k == 1 else f"{stream}-{number + 1:04d}.{config.fmt}"
        path, partial = out_dir / name, out_dir / f".{name}.partial"
        part = frame.slice(low, high - low)
        try:
            with partial.open("wb") as handle:
                writer.write_file(handle, part)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        written.append(WrittenFile(path, stream, part.height, int(part["__bad"].sum()), path.stat().st_size))
    return written


def _pipelined(part: pl.DataFrame, render: Callable[[pl.DataFrame], T], write: Callable[[T], object]) -> None:
    """Render ``part`` chunk by chunk and write each chunk.

    The next chunk is rendered while the last one is written (polars and pyarrow release the GIL, so the two
    overlap on two cores); memory holds at most two rendered chunks.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[T] | None = None
        for offset in range(0, part.height, _CHUNK_ROWS):
            rendering = pool.submit(render, part.slice(offset, _CHUNK_ROWS))
            if pending is not None:
                write(pending.result())
            pending = rendering
        if pending is not None:
            write(pending.result())


def _timestamp_text(name: str) -> pl.Expr:
    """ISO-8601 with the row's offset (``Z``, ``+00:00`` or local), or epoch milliseconds when it has none."""
    suffix = pl.col(f"__sfx_{name}")
    local = pl.col(name) + pl.col(f"__shift_{name}").cast(pl.Int64) * MS_MINUTE
    iso = pl.concat_str(
        [pl.from_epoch(local, time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3f"), suffix.cast(pl.String)]
    )
    return pl.when(suffix.is_null()).then(pl.col(name).cast(pl.String)).otherwise(iso)


def _unquoted(token: pl.Expr) -> pl.Expr:
    return token.str.strip_prefix('"').str.strip_suffix('"')


def _text_expr(column: Column) -> pl.Expr:
    """The column as text (CSV; Parquet when bad values force a text column)."""
    name = column.name
    if column.kind == "timestamp":
        return _timestamp_text(name)
    if column.kind == "date":
        return pl.col(name).dt.strftime("%Y-%m-%d")
    return pl.col(name).cast(pl.String)


def _with_override(column: Column, good: pl.Expr, overridden: frozenset[str]) -> pl.Expr:
    if column.name not in overridden:
        return good
    return (
        pl.when(pl.col(f"__bad_{column.name}").is_not_null())
        .then(_unquoted(pl.col(f"__bad_{column.name}")))
        .otherwise(good)
    )


class _CsvWriter:
    """Header row, contract column order; times as ISO text or epoch digits, ``properties`` as JSON text."""

    def __init__(self, stream: str, frame: pl.DataFrame, overridden: frozenset[str]) -> None:
        self._exprs = []
        for column in columns(stream):
            if column.kind == "timestamp" or column.name in overridden:
                expr = _with_override(column, _text_expr(column), overridden)
            else:
                expr = pl.col(column.name)
            self._exprs.append(expr.alias(column.name))

    def write_file(self, handle: BinaryIO, part: pl.DataFrame) -> None:
        part.head(0).select(self._exprs).write_csv(handle)  # the header, also for an empty file
        _pipelined(
            part,
            lambda chunk: chunk.select(self._exprs),
            lambda rows: rows.write_csv(handle, include_header=False),
        )


class _ParquetWriter:
    """Typed columns: timestamp[us, UTC], int64, date; strings dictionary-encoded where they repeat.

    Written without the Arrow schema, so every reader sees plain strings (not categoricals). A column that
    carries bad values (a timestamp "yesterday") is written as text instead.
    """

    def __init__(self, stream: str, frame: pl.DataFrame, overridden: frozenset[str]) -> None:
        self._exprs = []
        for column in columns(stream):
            if column.name in overridden:
                expr = _with_override(column, _text_expr(column), overridden)
            elif column.kind == "timestamp":
                expr = (
                    pl.from_epoch(pl.col(column.name), time_unit="ms")
                    .dt.cast_time_unit("us")
                    .dt.replace_time_zone("UTC")
                )
            else:
                expr = pl.col(column.name)
            self._exprs.append(expr.alias(column.name))
        self._schema = self._table(frame.head(0)).schema
        self._dictionary = [f.name for f in self._schema if pa.types.is_dictionary(f.type)]
        self._statistics = [f.name for f in self._schema if not pa.types.is_large_string(f.type)]
        self._statistics = [name for name in self._statistics if name not in self._dictionary]

    def _table(self, chunk: pl.DataFrame) -> pa.Table:
        return chunk.select(self._exprs).to_arrow(compat_level=pl.CompatLevel.oldest())

    def write_file(self, handle: BinaryIO, part: pl.DataFrame) -> None:
        with pq.ParquetWriter(
            handle,
            self._schema,
            compression="zstd",
            store_schema=False,
            use_dictionary=self._dictionary,  # dictionary pages for repeated values only, not for ids
            write_statistics=self._statistics,  # min/max where they help readers: times and numbers
        ) as writer:
            _pipelined(part, lambda chunk: self._table(chunk).cast(self._schema), writer.write_table)


class _JsonlWriter:
    """One JSON object per line, keys in contract order.

    Each column becomes a ``"key":value,`` fragment and the fragments are joined by polars' CSV writer
    with a space as separator and no quoting, which gives ``{"a":1, "b":"x", "c":{…}}``. Optional nulls
    are omitted (an empty fragment: two spaces, still valid JSON), required ones are written as ``null``.
    Enum columns use a fragment per category, so repeated values cost nothing to render.
    """

    def __init__(self, stream: str, frame: pl.DataFrame, overridden: frozenset[str]) -> None:
        self._columns = columns(stream)
        self._overridden = overridden
        self._frames = {}
        for i, column in enumerate(self._columns):
            dtype = frame.schema[column.name]
            if isinstance(dtype, pl.Enum) and column.name not in overridden:
                self._frames[column.name] = self._fragment_table(column, i, dtype)

    def _affixes(self, column: Column, position: int) -> tuple[str, str, str | None]:
        key = ("{" if position == 0 else "") + f'"{column.name}":'
        end = "}" if position == len(self._columns) - 1 else ","
        null = f"{key}null{end}" if column.required or position == len(self._columns) - 1 else None
        return key, end, null

    def _fragment_table(self, column: Column, position: int, dtype: pl.Enum) -> pl.Series:
        key, end, null = self._affixes(column, position)
        categories = pl.Series(dtype.categories)
        value = categories if column.kind == "json" else _json_string(categories)
        fragments = pl.select(pl.concat_str([pl.lit(key), pl.lit(value), pl.lit(end)])).to_series()
        if null is not None:
            fragments = pl.concat([fragments, pl.Series([null])])
        return fragments.cast(pl.Enum(fragments))

    def _fragment(self, chunk: pl.DataFrame, column: Column, position: int) -> pl.Series:
        key, end, null = self._affixes(column, position)
        name = column.name
        if name in self._frames:
            table = self._frames[name]
            out = table.gather(chunk[name].to_physical()).alias(name)
            return out.fill_null(pl.lit(null, table.dtype)) if null is not None else out
        if column.kind == "timestamp":
            token = (
                pl.when(pl.col(f"__sfx_{name}").is_null())
                .then(pl.col(name).cast(pl.String))
                .otherwise(pl.concat_str([pl.lit('"'), _timestamp_text(name), pl.lit('"')]))
            )
        elif column.kind == "int":
            token = pl.col(name).cast(pl.String)
        elif column.kind == "date":
            token = pl.concat_str([pl.lit('"'), pl.col(name).dt.strftime("%Y-%m-%d"), pl.lit('"')])
        elif column.kind == "json":
            token = pl.col(name).cast(pl.String)
        else:
            token = _json_string_expr(chunk[name])
        if name in self._overridden:
            bad = pl.col(f"__bad_{name}")
            token = pl.when(bad.is_not_null()).then(bad).otherwise(token)
        fragment = pl.concat_str([pl.lit(key), token, pl.lit(end)])
        if null is not None:
            fragment = fragment.fill_null(pl.lit(null))
        return chunk.select(fragment.alias(name)).to_series()

    def write_file(self, handle: BinaryIO, part: pl.DataFrame) -> None:
        _pipelined(
            part,
            lambda chunk: pl.DataFrame([self._fragment(chunk, c, i) for i, c in enumerate(self._columns)]),
            lambda lines: lines.write_csv(
                handle, include_header=False, separator=" ", quote_style="never", null_value=""
            ),
        )


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_string(values: pl.Series) -> pl.Series:
    """String values as JSON string literals (quoted, escaped)."""
    return pl.select(_json_string_expr(values)).to_series()


def _json_string_expr(values: pl.Series) -> pl.Expr:
    text = pl.lit(values.cast(pl.String))
    if values.cast(pl.String).str.contains(_NEEDS_ESCAPE).any():
        text = (
            text.str.replace_all("\\", "\\\\", literal=True)
            .str.replace_all('"', '\\"', literal=True)
            .str.replace_all("\n", "\\n", literal=True)
            .str.replace_all("\r", "\\r", literal=True)
            .str.replace_all("\t", "\\t", literal=True)
            .str.replace_all(r"[\x00-\x1f]", " ")
        )
    return pl.concat_str([pl.lit('"'), text, pl.lit('"')])


# ------------------------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------------------------


def _print_summary(
    console: Console,
    out_dir: Path,
    written: list[WrittenFile],
    config: GeneratorConfig,
    persons: int,
    elapsed: float,
) -> None:
    table = Table(title=f"convopt generate → {out_dir}", title_justify="left")
    table.add_column("file")
    table.add_column("stream")
    table.add_column("rows", justify="right")
    table.add_column("bad rows", justify="right")
    table.add_column("size", justify="right")
    for item in written:
        table.add_row(
            item.path.name, item.stream, f"{item.rows:,}", f"{item.bad_rows:,}", _human_size(item.bytes)
        )
    rows = sum(item.rows for item in written)
    table.add_section()
    table.add_row(
        "total",
        "",
        f"{rows:,}",
        f"{sum(i.bad_rows for i in written):,}",
        _human_size(sum(i.bytes for i in written)),
    )
    console.print(table)
    console.print(
        f"{persons:,} persons, {config.days} days from {config.start.isoformat()}, seed {config.seed}, "
        f"format {config.fmt}: {rows:,} rows in {elapsed:.1f} s ({rows / max(elapsed, 1e-9):,.0f} rows/s)"
    )
    mine = {item.path.name for item in written}
    stale = sorted(
        path.name
        for path in out_dir.iterdir()
        if path.is_file() and path.name not in mine and path.name.startswith(STREAMS)
    )
    if stale:
        console.print(
            f"[yellow]note:[/yellow] {out_dir} also holds {len(stale)} other stream file(s) "
            f"({', '.join(stale[:3])}{', …' if len(stale) > 3 else ''}); ingest would load them too"
        )


def _human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size} B"
