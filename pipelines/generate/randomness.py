"""Seeded randomness: named, independent uniform streams and the draws built on them (picks, UUIDs)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from itertools import accumulate

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc


class Rng:
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


def pick(groups: pl.Series, u: pl.Series, options: Sequence[Sequence[object]]) -> pl.Series:
    """For each row, one of ``options[group]`` chosen uniformly by ``u`` (vectorised ragged lookup)."""
    flat = [value for group in options for value in group]
    offsets = pl.Series([0, *accumulate(len(group) for group in options)][:-1], dtype=pl.Int64)
    lengths = pl.Series([len(group) for group in options], dtype=pl.Int64)
    group_len = lengths.gather(groups)
    index = offsets.gather(groups) + (u * group_len).floor().cast(pl.Int64).clip(0, group_len - 1)
    return pl.Series(flat).gather(index)


def uuids(keys: pl.Series, seed: int) -> pl.Series:
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
