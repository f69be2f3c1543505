"""Small polars helpers the other modules share: lookup tables as Enum series, and masking."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def enum_series(values: Sequence[str | None]) -> pl.Series:
    """A lookup table as an Enum series: gathering from it stays dictionary-encoded until written."""
    return pl.Series(values, dtype=pl.Enum(list(dict.fromkeys(v for v in values if v is not None))))


def where(mask: pl.Series, values: pl.Series) -> pl.Series:
    """``values`` where ``mask`` holds, null elsewhere (keeps the dtype, Enums included)."""
    return pl.select(pl.when(pl.lit(mask)).then(pl.lit(values))).to_series().alias(values.name)
