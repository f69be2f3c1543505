"""Writing the streams: split into files, render JSONL, CSV or Parquet chunk by chunk, rename into place."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.contract import Column, columns
from pipelines.generate.config import MS_MINUTE, GeneratorConfig

T = TypeVar("T")
_CHUNK_ROWS = 500_000  # rows rendered and written at a time (bounds memory for text formats)


@dataclass(frozen=True)
class WrittenFile:
    """One landing file written by :func:`generate_dataset`."""

    path: Path
    stream: str
    rows: int
    bad_rows: int
    bytes: int


def write_stream(
    out_dir: Path, stream: str, frame: pl.DataFrame, config: GeneratorConfig
) -> list[WrittenFile]:
    """Write one stream as ``config.files_per_stream`` files in ``config.fmt``, each renamed when complete."""
    k, n = config.files_per_stream, frame.height
    contract = columns(stream)
    # Columns the simulation does not produce (the consent columns: not given) are written empty.
    frame = frame.with_columns(
        pl.lit(None, pl.String).alias(c.name) for c in contract if c.name not in frame.columns
    )
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
