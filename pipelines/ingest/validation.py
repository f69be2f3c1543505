"""Validation: pandera's failure cases on a typed frame become one rejected row per bad row, with
one reason per failing field."""

from __future__ import annotations

import functools

import pandera.errors
import polars as pl
from pandera.config import ValidationDepth, config_context

from pipelines.contract import columns
from pipelines.ingest.errors import REASON_VALUE_CHARS
from pipelines.ingest.frames import ROW, Source
from pipelines.schemas import (
    POLARS_TYPES,
    PROBLEM_DETAILS,
    check_expressions,
    expectations,
    problem_column,
    stream_schema,
)


def failure_cases(typed: pl.DataFrame, stream: str) -> pl.DataFrame:
    """``(_idx, column, check)`` for every failed check of every row (empty when all rows pass)."""
    # Always check the data, whatever PANDERA_VALIDATION_* says in the environment.
    checks_on = config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA)
    try:
        with checks_on:
            stream_schema(stream).validate(typed, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if cases["index"].null_count():
            # Not about rows (a dtype mismatch, a check that raised): a bug, not bad data.
            raise RuntimeError(f"{stream} schema could not check the typed frame:\n{exc}") from exc
        return cases.select(pl.col("index").cast(pl.Int64).alias("_idx"), "column", "check")
    return pl.DataFrame(schema={"_idx": pl.Int64, "column": pl.String, "check": pl.String})


def failure_cases_one_pass(typed: pl.DataFrame, stream: str) -> pl.DataFrame:
    """The same ``(_idx, column, check)`` rows as :func:`failure_cases`, from the schema's own check
    expressions evaluated in one polars pass.

    pandera's fixed cost per validation (about 70 ms for a conversions frame, whatever its size) is
    small beside a landing file's chunk but dominates the few rows of an API request; the checks and
    their order are the same (tests compare the two on every kind of bad row).
    """
    checks = check_expressions(stream)
    if not typed.height:
        return pl.DataFrame(schema={"_idx": pl.Int64, "column": pl.String, "check": pl.String})
    # A check that reads only columns null in every row (fields no row gave) has the same result in
    # every row, known once per set of such columns (an API request names a few of the fields).
    null_everywhere = frozenset(
        name
        for name, nulls in zip(typed.columns, typed.null_count().row(0), strict=True)
        if nulls == typed.height
    )
    varying, constant_failures = _split_checks(stream, null_everywhere)
    failed = typed.select([(~checks[number][2]).alias(str(number)) for number in varying]).with_row_index(
        "_idx"
    )
    counts = dict(zip(varying, failed.drop("_idx").sum().row(0), strict=True)) if varying else {}
    parts = []
    for number, (column, check, _) in enumerate(checks):
        if number in constant_failures:
            idx = pl.Series("_idx", range(typed.height), dtype=pl.UInt32)
        elif counts.get(number):
            idx = failed.filter(pl.col(str(number)))["_idx"]
        else:
            continue
        parts.append(
            pl.DataFrame({"_idx": idx.cast(pl.Int64)}).with_columns(
                column=pl.lit(column, pl.String), check=pl.lit(check, pl.String)
            )
        )
    if not parts:
        return pl.DataFrame(schema={"_idx": pl.Int64, "column": pl.String, "check": pl.String})
    return pl.concat(parts).sort("_idx", maintain_order=True)


@functools.lru_cache(maxsize=256)
def _split_checks(stream: str, null_everywhere: frozenset[str]) -> tuple[tuple[int, ...], frozenset[int]]:
    """The numbers (in :func:`check_expressions`) of the checks that read some column not in
    ``null_everywhere``, and of those that read only such columns and fail (then in every row: they
    are evaluated once, on a row of nulls)."""
    checks = check_expressions(stream)
    varying, constant = [], []
    for number, (_, _, passes) in enumerate(checks):
        (constant if set(passes.meta.root_names()) <= null_everywhere else varying).append(number)
    nulls = pl.DataFrame(
        {ROW: [None]}
        | {c.name: [None] for c in columns(stream)}
        | {problem_column(c.name): [None] for c in columns(stream)},
        schema={ROW: pl.Int64}
        | {c.name: POLARS_TYPES[c.kind] for c in columns(stream)}
        | {problem_column(c.name): pl.String for c in columns(stream)},
    )
    fails = (
        nulls.select([(~checks[number][2]).alias(str(number)) for number in constant]).row(0)
        if constant
        else ()
    )
    return tuple(varying), frozenset(number for number, failed in zip(constant, fails, strict=True) if failed)


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    c = pl.col(name)
    if dtype == pl.String:
        return c
    if isinstance(dtype, pl.Struct | pl.List | pl.Array):
        return pl.struct(c).struct.json_encode().str.slice(len(name) + 4).str.head(-1)
    if dtype == pl.Binary:
        return c.bin.encode("hex")
    return c.cast(pl.String)


def rejections(source: Source, typed: pl.DataFrame, cases: pl.DataFrame, stream: str) -> pl.DataFrame:
    """``(_idx, row_number, failing_fields, reason, payload)`` per rejected row, in file order."""
    cases = cases.join(expectations(stream), on=["column", "check"], how="left")
    if cases["expected"].null_count():
        unknown = cases.filter(pl.col("expected").is_null()).select("column", "check").unique().rows()
        raise RuntimeError(f"failed checks without a reason text: {unknown}")
    first = cases.sort("_idx", "rank").unique(["_idx", "column"], keep="first", maintain_order=True)

    idx = first["_idx"].unique().sort()
    names = [c.name for c in columns(stream)]
    values = (
        source.values[idx]
        .select(pl.Series("_idx", idx), *[_as_text(n, source.values.schema[n]) for n in names])
        .unpivot(index="_idx", variable_name="column", value_name="value")
    )
    problems = (
        typed[idx]
        .select(pl.Series("_idx", idx), *[pl.col(problem_column(n)).alias(n) for n in names])
        .unpivot(index="_idx", variable_name="column", value_name="problem")
    )
    value = pl.col("value")
    length = value.str.len_chars()
    shown = (
        pl.when(length > REASON_VALUE_CHARS)
        .then(value.str.slice(0, REASON_VALUE_CHARS - 1) + "…")
        .otherwise(value)
    )
    detail = pl.col("problem").replace_strict(PROBLEM_DETAILS, default="", return_dtype=pl.String)
    reasons = (
        first.join(values, on=["_idx", "column"], how="left")
        .join(problems, on=["_idx", "column"], how="left")
        .sort("_idx", "rank")
        .with_columns(
            reason=pl.concat_str(
                pl.col("column"),
                pl.lit(": "),
                pl.col("expected"),
                pl.lit(", got "),
                pl.when(value.is_null()).then(pl.lit("null")).otherwise(pl.lit("'") + shown + pl.lit("'")),
                pl.when(pl.col("check") == "max_length")
                .then(pl.lit(" (") + length.cast(pl.String) + pl.lit(" characters)"))
                .when((pl.col("check") == "plausible") & value.str.contains(r"^\d{9,10}$"))
                .then(pl.lit(" (epoch seconds? expected milliseconds)"))
                .when(detail != "")
                .then(pl.lit(" (") + detail + pl.lit(")"))
                .otherwise(pl.lit("")),
            )
        )
        .group_by("_idx", maintain_order=True)
        .agg(failing_fields=pl.col("column").str.join(","), reason=pl.col("reason").str.join("; "))
    )
    return reasons.with_columns(
        row_number=source.values[ROW].gather(reasons["_idx"]),
        payload=source.payloads(reasons["_idx"]),
    )
