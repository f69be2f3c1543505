"""Typing: the contract columns as read become typed values plus a problem code per value
(what the pandera schema of the stream then checks)."""

from __future__ import annotations

import functools

import polars as pl

from pipelines.contract import Column, columns
from pipelines.ingest.errors import IngestFileError
from pipelines.ingest.frames import JSON_KIND_PROBLEMS, JSON_SUFFIX, JTYPE_SUFFIX, ROW
from pipelines.schemas import POLARS_TYPES, problem_column

_TYPED = "__typed"  # suffix: a column's typed value while the problem codes are worked out

_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:?\d{2})$"
# A leap second (``23:59:60``) is not an instant polars can hold: it would silently become the next
# minute, so it is rejected as not a valid time.
_LEAP_SECOND = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:60"
_NAIVE_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
_EPOCH_MS_LIMIT = 10**14  # |ms| beyond this (year 5138) cannot be a timestamp; avoids overflow
_WHOLE_NUMBER = r"^([+-]?\d+)(?:\.0*)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
# Text a ``bool`` column accepts (after trim + lower-case), and the value it stands for.
_BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _typed(col: Column, dtype: pl.DataType, jtype: pl.Expr | None) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, problem code) expressions for one contract column read as ``dtype``.

    The problem expression reads the typed value back as ``<column>__typed`` (see
    :func:`typed_frame`), so each value is converted once.
    """
    c = pl.col(col.name)
    typed = pl.col(col.name + _TYPED)
    none = pl.lit(None, pl.String)
    unusable = IngestFileError(f"column {col.name} has type {dtype}, which cannot hold a {col.kind} value")
    if dtype == pl.Null:
        return pl.lit(None, _kind_dtype(col)), none
    text = c.str.strip_chars() if dtype == pl.String else None
    blank = (text.is_null() | (text == "")) if text is not None else c.is_null()

    if col.kind == "str":
        if dtype == pl.String:
            problem = none
            if jtype is not None:
                problem = (
                    pl.when(jtype == "OBJECT")
                    .then(pl.lit("json_object"))
                    .when(jtype == "ARRAY")
                    .then(pl.lit("json_array"))
                    .when(jtype == "BOOLEAN")
                    .then(pl.lit("json_boolean"))
                    .otherwise(none)
                )
            return c, problem
        if dtype.is_numeric() or dtype in (pl.Boolean, pl.Categorical) or isinstance(dtype, pl.Enum):
            return c.cast(pl.String), none
        raise unusable

    if col.kind == "int":
        if text is not None:
            value = text.str.extract(_WHOLE_NUMBER, 1).cast(pl.Int64, strict=False)
        elif dtype.is_integer():
            value = c.cast(pl.Int64, strict=False)
        elif dtype.is_float() or dtype.is_decimal():
            x = c.cast(pl.Float64)
            whole = x.is_finite() & (x == x.floor()) & (x.abs() < 9.2e18)
            value = pl.when(whole).then(x).cast(pl.Int64)
        else:
            raise unusable
        return value, pl.when(~blank & typed.is_null()).then(pl.lit("not_whole")).otherwise(none)

    if col.kind == "timestamp":
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is None:
                raise IngestFileError(
                    f"column {col.name} is a timestamp without time zone: expected a UTC-adjusted "
                    "timestamp (tz=UTC), epoch milliseconds, or ISO-8601 text with an offset"
                )
            return c.dt.convert_time_zone("UTC").dt.cast_time_unit("us"), none
        if text is None and not dtype.is_integer():
            raise unusable
        epoch = (text if text is not None else c).cast(pl.Int64, strict=False)
        in_range = pl.when(epoch.abs() < _EPOCH_MS_LIMIT).then(epoch)
        from_epoch = pl.from_epoch(in_range, "ms").dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        if text is None:
            problem = pl.when(~blank & typed.is_null()).then(pl.lit("epoch_out_of_range")).otherwise(none)
            return from_epoch, problem
        iso_shaped = text.str.contains(_ISO_TIMESTAMP)
        iso = pl.when(iso_shaped & ~text.str.contains(_LEAP_SECOND)).then(
            text.str.to_datetime("%+", time_zone="UTC", time_unit="us", strict=False)
        )
        value = pl.coalesce(from_epoch, iso)
        problem = (
            pl.when(blank | typed.is_not_null())
            .then(none)
            .when(epoch.is_not_null())
            .then(pl.lit("epoch_out_of_range"))
            .when(iso_shaped)
            .then(pl.lit("invalid_datetime"))
            .when(text.str.contains(_NAIVE_TIMESTAMP))
            .then(pl.lit("no_offset"))
            .otherwise(pl.lit("bad_timestamp"))
        )
        return value, problem

    if col.kind == "date":
        if dtype == pl.Date:
            return c, none
        if text is None:
            raise unusable
        value = pl.when(text.str.contains(_DATE)).then(text.str.to_date("%Y-%m-%d", strict=False))
        return value, pl.when(~blank & typed.is_null()).then(pl.lit("bad_date")).otherwise(none)

    if col.kind == "bool":
        if dtype == pl.Boolean:
            return c, none
        if text is not None:
            value = text.str.to_lowercase().replace_strict(
                _BOOLEAN_TEXT, default=None, return_dtype=pl.Boolean
            )
        elif dtype.is_integer():
            value = pl.when(c == 1).then(pl.lit(True)).when(c == 0).then(pl.lit(False))
        else:
            raise unusable
        return value, pl.when(~blank & typed.is_null()).then(pl.lit("not_boolean")).otherwise(none)

    if col.kind == "json":
        if isinstance(dtype, pl.Struct):
            return pl.when(c.is_not_null()).then(c.struct.json_encode()), none
        if dtype != pl.String or jtype is None:
            raise unusable
        problem = (
            pl.when(jtype.is_null() | (jtype == "OBJECT"))
            .then(none)
            .otherwise(jtype.replace(JSON_KIND_PROBLEMS))
        )
        return pl.when(jtype == "OBJECT").then(pl.col(col.name + JSON_SUFFIX)), problem

    raise ValueError(f"unknown column kind {col.kind!r}")  # pragma: no cover - contract bug


def _kind_dtype(col: Column) -> pl.DataType:
    return POLARS_TYPES[col.kind]


def typed_frame(source: pl.DataFrame, stream: str) -> pl.DataFrame:
    """The typed frame pandera checks: ``_source_row``, then per column its value and problem code."""
    schema = source.schema
    signature = tuple(
        (col.name, schema[col.name], f"{col.name}{JTYPE_SUFFIX}" in schema) for col in columns(stream)
    )
    values, exprs = _typing_expressions(stream, signature)
    # Eager, not lazy: planning a query of this many expressions costs more than typing an API
    # request's rows, and the plan could not do less work than these two steps.
    return source.with_columns(values).select(exprs)


@functools.lru_cache(maxsize=64)
def _typing_expressions(
    stream: str, signature: tuple[tuple[str, pl.DataType, bool], ...]
) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """(typed values, output columns) for a source whose columns have these (name, dtype, has a JSON
    type column). Cached: building the expressions costs more than typing the few rows of an API
    request, and sources of one stream share a handful of signatures (JSONL, CSV, Parquet)."""
    values: list[pl.Expr] = []
    exprs: list[pl.Expr] = [pl.col(ROW)]
    for col, (_, dtype, has_jtype) in zip(columns(stream), signature, strict=True):
        jtype = pl.col(f"{col.name}{JTYPE_SUFFIX}") if has_jtype else None
        value, problem = _typed(col, dtype, jtype)
        values.append(value.cast(_kind_dtype(col)).alias(col.name + _TYPED))
        exprs += [pl.col(col.name + _TYPED).alias(col.name), problem.alias(problem_column(col.name))]
    return values, exprs
