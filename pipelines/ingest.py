"""Validated ingestion: landing files (JSONL, CSV, Parquet) → ``raw.events`` / ``raw.conversions`` /
``raw.ad_spend``, bad rows → ``raw.rejected_rows``, one ``raw.load_log`` row per file.

Guarantees (what ``convopt ingest`` promises):

* Nothing is silently dropped: for every loaded file, rows loaded + rows rejected = rows read.
  Blank lines of a JSONL file are not rows (line numbers still count them).
* A file is loaded once: its SHA-256 content hash is looked up in ``raw.load_log`` (status
  ``loaded``); a file with the same content, under any name, is skipped, so reruns are safe.
* A file loads atomically: its raw rows, its rejected rows and its ``load_log`` row are written in
  one DuckDB transaction; an error or crash mid-file leaves nothing of it behind. Big files are
  read, validated and inserted in chunks of ``CHUNK_ROWS`` rows inside that one transaction, so
  memory stays bounded whatever the file size.
* A file that cannot be read (unknown type or stream, invalid UTF-8, a JSONL line that is not a
  JSON object, truncated Parquet, missing required CSV/Parquet columns, a Parquet column of an
  unusable type) is *failed*: reported with where and what was expected, recorded in ``load_log``
  with status ``failed`` and the error (a rerun retries it), and the other files still load.

How values are read (the validation rules themselves are in :mod:`pipelines.schemas`):

* The stream comes from the file name prefix (``events``, ``conversions``, ``ad_spend``) or
  ``--stream``. Unknown extra columns are ignored (but kept in a rejected row's payload); a missing
  optional column is null; a missing required column fails a CSV or Parquet file (a JSONL record
  missing a required field is a rejected row).
* Values are stored as the raw DDL types them: strings exactly as received (staging trims),
  whole numbers as bigint, timestamps as instants (timestamptz, UTC), dates as date, JSON objects
  as minified JSON text (so JSONL, CSV and Parquet store the same text). Blank values of
  non-string columns count as missing.
* JSONL: one JSON object per line; strings and numbers are accepted for string fields; ``properties``
  may be an object or a string holding one. Row number = line number; payload = the line.
* CSV: a header row, comma-separated, ``"``-quoted, UTF-8; empty fields are null. Row number = data
  record number (1 = first row after the header); payload = the record as a JSON object of strings.
* Parquet: typed columns are accepted where they carry the contract's meaning: integer columns for
  ints (and for timestamps: epoch ms), whole-valued floats for ints, timestamp columns *with* a time
  zone, date columns, struct columns for ``properties``, and string columns parsed like CSV text.
  A timestamp column *without* a time zone fails the file: its instant is ambiguous, exactly like a
  naive ISO string, and a whole file of it is a producer bug to fix (write ``tz=UTC``), not a few
  bad rows. Row number = 1-based row; payload = the row as JSON.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandera.errors
import polars as pl
import pyarrow as pa
from pandera.config import ValidationDepth, config_context
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from pipelines.contract import STREAMS, Column, columns
from pipelines.schemas import POLARS_TYPES, PROBLEM_DETAILS, expectations, problem_column, stream_schema
from pipelines.warehouse import connect, ensure_raw_schema

FORMATS: dict[str, str] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
HASH_CHUNK = 1 << 20
CHUNK_ROWS = 500_000  # rows validated and inserted at a time: bounds memory for files of any size
REASON_VALUE_CHARS = 60  # longer values are cut in reasons (the payload keeps them whole)

_ROW = "_source_row"
_TYPED = "__typed"  # suffix: a column's typed value while the problem codes are worked out
_JTYPE = "__jtype"  # suffix: the JSON type of a JSONL field (or the refined kind of a json column)

_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:?\d{2})$"
_NAIVE_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
_EPOCH_MS_LIMIT = 10**14  # |ms| beyond this (year 5138) cannot be a timestamp; avoids overflow
_WHOLE_NUMBER = r"^([+-]?\d+)(?:\.0*)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_JSON = "__json"  # suffix: a json column's text parsed and written back minified (null if not JSON)
# SQL: the minified JSON text of a value (null if not JSON), and the JSON type it holds
# (OBJECT, ARRAY, ...), INVALID, or null when the value is blank.
_JSON_TEXT_SQL = "try(json({v}))::varchar"
_JSON_KIND_SQL = (
    "case when {v} is null or trim({v}) = '' then null when {j} is null then 'INVALID' "
    "else json_type({j}) end"
)
_JSON_KIND_PROBLEMS = {
    "ARRAY": "json_array",
    "VARCHAR": "json_string",
    "BIGINT": "json_number",
    "UBIGINT": "json_number",
    "DOUBLE": "json_number",
    "BOOLEAN": "json_boolean",
    "NULL": "json_null",
    "INVALID": "invalid_json",
}


class IngestUsageError(ValueError):
    """Bad arguments: a path that does not exist, an unknown ``--stream`` (CLI exit code 2)."""


class IngestFileError(Exception):
    """One landing file cannot be read; the message says where and what was expected."""


@dataclass
class FileResult:
    """What happened to one landing file."""

    file_name: str
    stream: str | None
    status: str  # "loaded" | "skipped" | "failed"
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    seconds: float
    message: str = ""
    load_id: str | None = None


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file failed (rejected rows are reported but are not failures)."""
        return all(f.status != "failed" for f in self.files)


# --------------------------------------------------------------------------------------------
# Finding files, their stream and their hash
# --------------------------------------------------------------------------------------------


def discover_files(paths: Sequence[Path]) -> list[Path]:
    """The landing files named by ``paths``: files as given, folders expanded recursively.

    In folders only ``.jsonl``/``.ndjson``/``.csv``/``.parquet`` files count, and hidden files or
    folders (``.generated``, ``.cache/``) are ignored. Each folder's files are sorted by path so
    loads are deterministic; a file named twice is loaded once.
    """
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise IngestUsageError(f"{path} does not exist (expected a landing file or folder)")
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in FORMATS
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        else:
            found.append(path)
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def stream_of(path: Path, forced: str | None = None) -> str:
    """The stream of a landing file: ``forced`` if given, else the file name's prefix."""
    if forced is not None:
        return forced
    for stream in sorted(STREAMS, key=len, reverse=True):
        if path.name.startswith(stream):
            return stream
    raise IngestFileError(
        f"cannot tell the stream from the file name {path.name!r}: expected it to start with "
        f"{', '.join(STREAMS)}, or pass --stream"
    )


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's bytes (streamed in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Reading: each reader returns the contract columns as read (text or typed) plus row numbers
# --------------------------------------------------------------------------------------------


@dataclass
class _Source:
    """A landing file as read, before typing.

    ``values`` has ``_source_row`` and one column per contract column (missing optional columns
    null), plus ``<column>__jtype`` for what JSON said a value was (JSONL string fields, json
    columns) and ``<column>__json`` for a json column's minified text.
    ``payloads(idx)`` gives the original rows at positions ``idx`` of ``values`` as JSON text.
    """

    values: pl.DataFrame
    payloads: Callable[[pl.Series], pl.Series]


def _one(con: duckdb.DuckDBPyConnection, query: str, params: object = None) -> tuple | None:
    """The first row of a query, or None; the result is consumed (DuckDB 2.0 wants it finished)."""
    found = con.execute(query, params).fetchall()
    return found[0] if found else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _snippet(text: str, limit: int = REASON_VALUE_CHARS) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _utf8_error(path: Path) -> str | None:
    """Where a file stops being UTF-8 (``byte N (line L)``), or None if it is valid UTF-8."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return f"invalid UTF-8 at byte {exc.start} (line {line}): expected UTF-8 text"
    return None


def _read_error(path: Path, what: str, exc: Exception) -> IngestFileError:
    """A reader's exception as a one-line file error, located where we can."""
    message = str(exc).lower()
    if "utf-8" in message or "utf8" in message:
        located = _utf8_error(path)
        if located:
            return IngestFileError(located)
    return IngestFileError(f"cannot read {what}: {_first_line(exc)}")


def _arrow(frame: pl.DataFrame) -> pa.Table:
    """Zero-copy Arrow view of a polars frame, in batches DuckDB can scan on all threads."""
    table = frame.to_arrow(compat_level=pl.CompatLevel.newest())
    return pa.Table.from_batches(table.to_batches(max_chunksize=122_880), schema=table.schema)


def _chunks(scan: pl.LazyFrame, on_error: Callable[[Exception], IngestFileError]) -> Iterator[pl.DataFrame]:
    """Stream a scan (with ``_source_row``) in chunks of ``CHUNK_ROWS``; read errors become file errors."""
    batches = iter(scan.with_row_index(_ROW, offset=1).collect_batches(chunk_size=CHUNK_ROWS))
    while True:
        try:
            chunk = next(batches)
        except StopIteration:
            return
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise on_error(exc) from exc
        yield chunk.with_columns(pl.col(_ROW).cast(pl.Int64))


def _read_jsonl(con: duckdb.DuckDBPyConnection, path: Path, stream: str) -> Iterator[_Source]:
    """One JSON object per line; DuckDB extracts the fields of each line (exact line numbers).

    Fields are extracted as text (numbers as written, objects as JSON text). Only values that
    could be a JSON object, array or boolean (text starting with ``{``/``[``, or ``true``/``false``)
    get their JSON type looked up, so a string field holding an object is rejected cheaply.
    """

    def on_error(exc: Exception) -> IngestFileError:
        if "more fields" in str(exc):
            data = path.read_bytes()
            line = data.count(b"\n", 0, data.find(b"\x00")) + 1
            return IngestFileError(f"line {line} contains a NUL byte: not valid JSON text")
        return _read_error(path, "the JSONL file", exc)

    scan = pl.scan_csv(
        path,
        has_header=False,
        separator="\x00",  # never in valid JSON text: each line is one field
        quote_char=None,
        schema={"line": pl.String},
        raise_if_empty=False,
        glob=False,  # a file name is a name, not a pattern ("events[1].jsonl")
    )
    for lines in _chunks(scan, on_error):
        yield _jsonl_chunk(con, lines, stream)


def _jsonl_chunk(con: duckdb.DuckDBPyConnection, lines: pl.DataFrame, stream: str) -> _Source:
    line = pl.col("line")
    lines = lines.with_columns(
        (line.is_null() | line.str.contains(r"^\s*$")).alias("_blank"),
        line.str.contains(r"^\s*\{").alias("_object"),
    )
    cols = columns(stream)
    con.register("_ingest_lines", _arrow(lines))
    try:
        not_object = lines.filter(~pl.col("_blank") & ~pl.col("_object"))
        if not_object.height:
            _fail_line(con, int(not_object[_ROW][0]), not_object["line"][0])
        struct = ", ".join(f'"{c.name}": "VARCHAR"' for c in cols)
        json_cols = [(_quoted(c.name), _quoted(c.name + _JSON), c.name) for c in cols if c.kind == "json"]
        texts = "".join(f", {_JSON_TEXT_SQL.format(v=v)} as {j}" for v, j, _ in json_cols)
        kinds = "".join(f', {_JSON_KIND_SQL.format(v=v, j=j)} as "{n}{_JTYPE}"' for v, j, n in json_cols)
        query = (
            f"select *{kinds} from (select *{texts} from (select {_ROW}, "
            f"unnest(from_json(line, '{{{struct}}}')) from _ingest_lines where not _blank))"
        )
        try:
            values = pl.from_arrow(con.sql(query).to_arrow_table())
        except duckdb.Error as exc:
            bad = _one(
                con,
                f"select {_ROW}, line from _ingest_lines where not _blank and not json_valid(line) "
                f"order by {_ROW} limit 1",
            )
            if bad is None:
                raise
            _fail_line(con, bad[0], bad[1], exc)
        assert isinstance(values, pl.DataFrame)
        values = _with_json_types(con, values, [c for c in cols if c.kind == "str"])
    finally:
        con.unregister("_ingest_lines")

    first_row = int(lines[_ROW][0]) if lines.height else 1

    def payloads(idx: pl.Series) -> pl.Series:
        return lines["line"].gather(values[_ROW].gather(idx) - first_row)

    return _Source(values, payloads)


def _fail_line(
    con: duckdb.DuckDBPyConnection, number: int, text: str, cause: Exception | None = None
) -> None:
    """Raise the file error for a JSONL line that is not a JSON object."""
    kind = _one(con, "select case when json_valid($1) then json_type($1) end", [text])
    if kind is None or kind[0] is None:
        raise IngestFileError(
            f"line {number} is not valid JSON (expected one JSON object per line): {_snippet(text)}"
        ) from cause
    what = PROBLEM_DETAILS.get(_JSON_KIND_PROBLEMS.get(kind[0], ""), kind[0])
    raise IngestFileError(
        f"line {number} is {what}, not an object (expected one JSON object per line)"
    ) from cause


def _with_json_types(
    con: duckdb.DuckDBPyConnection, values: pl.DataFrame, cols: list[Column]
) -> pl.DataFrame:
    """Add ``<column>__jtype`` (the JSON type, where it is an object, array or boolean) to JSONL values."""
    suspect = [
        pl.col(c.name).str.starts_with("{")
        | pl.col(c.name).str.starts_with("[")
        | pl.col(c.name).is_in(["true", "false"])
        for c in cols
    ]
    rows = values.filter(pl.any_horizontal(suspect).fill_null(False)).select(_ROW)
    if not rows.height:
        return values
    paths = ", ".join(f"'$.\"{c.name}\"'" for c in cols)
    types = ", ".join(
        f"case when t[{i}] in ('OBJECT', 'ARRAY', 'BOOLEAN') then t[{i}] end as \"{c.name}{_JTYPE}\""
        for i, c in enumerate(cols, start=1)
    )
    con.register("_ingest_suspects", _arrow(rows))
    try:
        found = con.sql(
            f"select {_ROW}, {types} from (select l.{_ROW}, json_type(l.line, [{paths}]) as t "
            f"from _ingest_lines as l semi join _ingest_suspects as s on l.{_ROW} = s.{_ROW})"
        ).to_arrow_table()
    finally:
        con.unregister("_ingest_suspects")
    return values.join(pl.from_arrow(found), on=_ROW, how="left", maintain_order="left")  # type: ignore[arg-type]


def _missing_required(names: list[str], stream: str, what: str) -> None:
    missing = [c.name for c in columns(stream) if c.required and c.name not in names]
    if missing:
        required = ", ".join(c.name for c in columns(stream) if c.required)
        raise IngestFileError(
            f"{what} is missing required column(s) {', '.join(missing)} "
            f"(required {stream} columns: {required})"
        )


def _json_payloads(original: pl.DataFrame) -> Callable[[pl.Series], pl.Series]:
    """Payloads of CSV/Parquet rows: the whole original row (extra columns too) as a JSON object."""

    def payloads(idx: pl.Series) -> pl.Series:
        rows = original[idx].drop(_ROW)
        rows = rows.with_columns(pl.col(pl.Binary).bin.encode("hex"))
        return rows.select(pl.struct(pl.all()).struct.json_encode()).to_series()

    return payloads


def _ragged_csv_row(path: Path) -> str:
    """Where a CSV file has a record with more fields than its header (error path only)."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        for number, record in enumerate(reader, start=1):
            if len(record) > len(header):
                return (
                    f"data row {number} (line {reader.line_num}) has {len(record)} fields: expected at most "
                    f"{len(header)}, as in the header"
                )
    return "a record has more fields than the header"


def _tabular_source(con: duckdb.DuckDBPyConnection, original: pl.DataFrame, stream: str) -> _Source:
    values = original.select(
        _ROW,
        *[
            pl.col(c.name) if c.name in original.columns else pl.lit(None, pl.String).alias(c.name)
            for c in columns(stream)
        ],
    )
    for col in columns(stream):
        if col.kind == "json" and values.schema[col.name] == pl.String:
            values = pl.concat([values, _json_columns(con, values[col.name])], how="horizontal")
    return _Source(values, _json_payloads(original))


def _json_columns(con: duckdb.DuckDBPyConnection, texts: pl.Series) -> pl.DataFrame:
    """Per value: its minified JSON text (``<name>__json``) and what it holds (``<name>__jtype``)."""
    name = texts.name
    con.register("_ingest_json", _arrow(texts.to_frame("v")))
    order = _one(con, "select current_setting('preserve_insertion_order')")
    con.execute("set preserve_insertion_order = true")  # the results must line up with the values
    try:
        table = con.sql(
            f"select j as {_quoted(name + _JSON)}, {_JSON_KIND_SQL.format(v='v', j='j')} as "
            f"{_quoted(name + _JTYPE)} from (select v, {_JSON_TEXT_SQL.format(v='v')} as j from _ingest_json)"
        ).to_arrow_table()
    finally:
        con.execute(f"set preserve_insertion_order = {bool(order and order[0])}")
        con.unregister("_ingest_json")
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, stream: str) -> Iterator[_Source]:
    def on_error(exc: Exception) -> IngestFileError:
        if isinstance(exc, pl.exceptions.NoDataError):
            return IngestFileError("the CSV file is empty: expected a header row")
        if "more fields" in str(exc):
            return IngestFileError(_ragged_csv_row(path))
        return _read_error(path, "the CSV file", exc)

    scan = pl.scan_csv(path, infer_schema=False, quote_char='"', encoding="utf8", glob=False)
    try:
        names = scan.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise on_error(exc) from exc
    _missing_required(names, stream, "the CSV header")
    for original in _chunks(scan, on_error):
        yield _tabular_source(con, original, stream)


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, stream: str) -> Iterator[_Source]:
    def on_error(exc: Exception) -> IngestFileError:
        return IngestFileError(f"not a readable Parquet file (truncated or corrupt?): {_first_line(exc)}")

    scan = pl.scan_parquet(path, glob=False)
    try:
        names = scan.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise on_error(exc) from exc
    _missing_required(names, stream, "the Parquet file")
    for original in _chunks(scan, on_error):
        yield _tabular_source(con, original, stream)


READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}


# --------------------------------------------------------------------------------------------
# Typing: contract columns → typed values + problem codes (what pandera then checks)
# --------------------------------------------------------------------------------------------


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
        iso = pl.when(iso_shaped).then(
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

    if col.kind == "json":
        if isinstance(dtype, pl.Struct):
            return pl.when(c.is_not_null()).then(c.struct.json_encode()), none
        if dtype != pl.String or jtype is None:
            raise unusable
        problem = (
            pl.when(jtype.is_null() | (jtype == "OBJECT"))
            .then(none)
            .otherwise(jtype.replace(_JSON_KIND_PROBLEMS))
        )
        return pl.when(jtype == "OBJECT").then(pl.col(col.name + _JSON)), problem

    raise ValueError(f"unknown column kind {col.kind!r}")  # pragma: no cover - contract bug


def _kind_dtype(col: Column) -> pl.DataType:
    return POLARS_TYPES[col.kind]


def typed_frame(source: pl.DataFrame, stream: str) -> pl.DataFrame:
    """The typed frame pandera checks: ``_source_row``, then per column its value and problem code."""
    values: list[pl.Expr] = []
    exprs: list[pl.Expr] = [pl.col(_ROW)]
    for col in columns(stream):
        jname = f"{col.name}{_JTYPE}"
        jtype = pl.col(jname) if jname in source.columns else None
        value, problem = _typed(col, source.schema[col.name], jtype)
        values.append(value.cast(_kind_dtype(col)).alias(col.name + _TYPED))
        exprs += [pl.col(col.name + _TYPED).alias(col.name), problem.alias(problem_column(col.name))]
    return source.lazy().with_columns(values).select(exprs).collect()


# --------------------------------------------------------------------------------------------
# Validation: pandera failure cases → one rejected row per bad row, one reason per failing field
# --------------------------------------------------------------------------------------------


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


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    c = pl.col(name)
    if dtype == pl.String:
        return c
    if isinstance(dtype, pl.Struct | pl.List | pl.Array):
        return pl.struct(c).struct.json_encode().str.slice(len(name) + 4).str.head(-1)
    if dtype == pl.Binary:
        return c.bin.encode("hex")
    return c.cast(pl.String)


def rejections(source: _Source, typed: pl.DataFrame, cases: pl.DataFrame, stream: str) -> pl.DataFrame:
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
        row_number=source.values[_ROW].gather(reasons["_idx"]),
        payload=source.payloads(reasons["_idx"]),
    )


# --------------------------------------------------------------------------------------------
# Writing: one transaction per file
# --------------------------------------------------------------------------------------------


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _insert_raw_rows(
    con: duckdb.DuckDBPyConnection,
    stream: str,
    typed: pl.DataFrame,
    rejected_idx: pl.Series,
    *,
    load_id: str,
    file_name: str,
    loaded_at: dt.datetime,
) -> int:
    names = ", ".join(_quoted(c.name) for c in columns(stream))
    rows = typed.select(_ROW, *[c.name for c in columns(stream)])
    where = ""
    if len(rejected_idx):
        rows = rows.with_columns(
            _rejected=pl.int_range(0, pl.len(), dtype=pl.Int64).is_in(rejected_idx.implode())
        )
        where = "where not _rejected"
    con.register("_ingest_rows", _arrow(rows))
    try:
        result = _one(
            con,
            f"insert into raw.{stream} by name select {names}, $load_id as _load_id, $file as _source_file, "
            f"{_ROW}, $loaded_at as _loaded_at from _ingest_rows {where}",
            {"load_id": load_id, "file": file_name, "loaded_at": loaded_at},
        )
    finally:
        con.unregister("_ingest_rows")
    return int(result[0]) if result else 0


def _insert_rejected_rows(
    con: duckdb.DuckDBPyConnection,
    stream: str,
    rejected: pl.DataFrame,
    *,
    load_id: str,
    file_name: str,
    rejected_at: dt.datetime,
) -> None:
    if not rejected.height:
        return
    con.register("_ingest_rejected", _arrow(rejected.drop("_idx")))
    try:
        con.execute(
            "insert into raw.rejected_rows by name select $load_id as load_id, $file as file_name, "
            "$stream as stream, row_number, failing_fields, reason, payload, $at as rejected_at "
            "from _ingest_rejected",
            {"load_id": load_id, "file": file_name, "stream": stream, "at": rejected_at},
        )
    finally:
        con.unregister("_ingest_rejected")


def _insert_load_log(con: duckdb.DuckDBPyConnection, **row: object) -> None:
    con.execute(
        "insert into raw.load_log (load_id, file_name, content_sha256, stream, file_format, rows_read, "
        "rows_loaded, rows_rejected, started_at, loaded_at, status, error) values ($load_id, $file_name, "
        "$content_sha256, $stream, $file_format, $rows_read, $rows_loaded, $rows_rejected, $started_at, "
        "$loaded_at, $status, $error)",
        row,
    )


def _already_loaded(con: duckdb.DuckDBPyConnection, sha256: str) -> tuple[str, str] | None:
    row = _one(
        con,
        "select load_id, file_name from raw.load_log where content_sha256 = ? and status = 'loaded' "
        "order by loaded_at limit 1",
        [sha256],
    )
    return (row[0], row[1]) if row else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------------------------
# One file, many files
# --------------------------------------------------------------------------------------------


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    stream: str | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> FileResult:
    """Validate and load one landing file in one transaction; never raises for a bad file.

    Returns a skipped result when a file with the same content was loaded before, and a failed
    one (also recorded in ``raw.load_log``) when the file cannot be read. Unexpected errors roll
    the file back and propagate.
    """
    clock = time.perf_counter()
    started = _now()
    file_name = str(path)
    phase = on_phase or (lambda _: None)
    ensure_raw_schema(con)

    def result(
        status: str, stream_: str | None, read: int = 0, loaded: int = 0, rejected: int = 0, **kw
    ) -> FileResult:
        return FileResult(
            file_name, stream_, status, read, loaded, rejected, time.perf_counter() - clock, **kw
        )

    phase("hashing")
    sha256 = file_sha256(path)
    # An empty file is never "already loaded": a 0-byte CSV or Parquet file is broken, not a copy.
    previous = _already_loaded(con, sha256) if path.stat().st_size else None
    if previous is not None:
        try:
            known_stream: str | None = stream_of(path, stream)
        except IngestFileError:
            known_stream = None
        message = f"already loaded as load_id {previous[0]} ({previous[1]})"
        return result("skipped", known_stream, message=message, load_id=previous[0])

    load_id = f"{started:%Y%m%dT%H%M%S}-{sha256[:10]}-{secrets.token_hex(2)}"
    file_format = FORMATS.get(path.suffix.lower())
    stream_name: str | None = None
    log = {"load_id": load_id, "file_name": file_name, "content_sha256": sha256, "file_format": file_format}

    def failed(message: str, rows_read: int | None = None) -> FileResult:
        _insert_load_log(
            con, **log, stream=stream_name, rows_read=rows_read, rows_loaded=0, rows_rejected=0,
            started_at=started, loaded_at=_now(), status="failed", error=message,
        )  # fmt: skip
        return result("failed", stream_name, rows_read or 0, message=message, load_id=load_id)

    try:
        stream_name = stream_of(path, stream)
        if file_format is None:
            raise IngestFileError(
                f"unknown file type {path.suffix or '(no extension)'!r}: expected {', '.join(FORMATS)}"
            )
    except IngestFileError as exc:
        return failed(str(exc))

    # Reading happens on its own cursor, so a failed read query never aborts the write transaction.
    reader = con.cursor()
    loaded_at = _now()
    read = loaded = rejected_total = 0
    con.begin()
    try:
        phase("reading")
        for chunk in READERS[file_format](reader, path, stream_name):
            phase(f"validating ({read + chunk.values.height:,} rows)")
            typed = typed_frame(chunk.values, stream_name)
            cases = failure_cases(typed, stream_name)
            rejected = rejections(chunk, typed, cases, stream_name) if cases.height else None
            phase(f"writing ({read + typed.height:,} rows)")
            rejected_idx = rejected["_idx"] if rejected is not None else pl.Series([], dtype=pl.Int64)
            chunk_loaded = _insert_raw_rows(
                con,
                stream_name,
                typed,
                rejected_idx,
                load_id=load_id,
                file_name=file_name,
                loaded_at=loaded_at,
            )
            if rejected is not None:
                _insert_rejected_rows(
                    con, stream_name, rejected, load_id=load_id, file_name=file_name, rejected_at=loaded_at
                )
            if chunk_loaded + len(rejected_idx) != typed.height:  # pragma: no cover - would be a bug
                raise RuntimeError(f"{file_name}: loaded {chunk_loaded} + rejected {len(rejected_idx)} rows")
            read, loaded, rejected_total = (
                read + typed.height,
                loaded + chunk_loaded,
                rejected_total + len(rejected_idx),
            )
            phase("reading")
        _insert_load_log(
            con, **log, stream=stream_name, rows_read=read, rows_loaded=loaded, rows_rejected=rejected_total,
            started_at=started, loaded_at=loaded_at, status="loaded", error=None,
        )  # fmt: skip
        con.commit()
    except IngestFileError as exc:
        con.rollback()
        return failed(str(exc))
    except duckdb.Error as exc:
        con.rollback()
        return failed(f"warehouse error: {_first_line(exc)}", read)
    except BaseException:
        con.rollback()
        raise
    finally:
        reader.close()
    return result("loaded", stream_name, read, loaded, rejected_total, load_id=load_id)


def ingest_paths(
    paths: list[Path],
    *,
    warehouse: Path,
    stream: str | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> IngestReport:
    """Load every landing file under ``paths`` into ``warehouse`` and print a summary.

    Raises IngestUsageError for a path that does not exist or an unknown stream, and
    WarehouseLockedError when another process holds the warehouse; bad files are reported in the
    returned report (``report.ok`` is False when any file failed).
    """
    console = console or Console(stderr=True)
    if stream is not None and stream not in STREAMS:
        raise IngestUsageError(f"unknown stream {stream!r}: expected one of {', '.join(STREAMS)}")
    files = discover_files(paths)
    report = IngestReport()
    if not files:
        console.print(f"no landing files (.jsonl, .ndjson, .csv, .parquet) in {', '.join(map(str, paths))}")
        return report

    con = connect(warehouse)
    try:
        con.execute("set preserve_insertion_order = false")  # rows carry their own row numbers
        ensure_raw_schema(con)
        sizes = [p.stat().st_size for p in files]
        columns_ = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
        with Progress(*columns_, console=console, transient=True, disable=not progress) as bar:
            task = bar.add_task("ingest", total=sum(sizes))
            for number, (path, size) in enumerate(zip(files, sizes, strict=True), start=1):

                def on_phase(phase: str, path: Path = path, number: int = number) -> None:
                    bar.update(task, description=escape(f"[{number}/{len(files)}] {phase} {path.name}"))

                report.files.append(ingest_file(con, path, stream=stream, on_phase=on_phase))
                bar.advance(task, size)
    finally:
        con.close()
    print_summary(report, console)
    return report


def print_summary(report: IngestReport, console: Console) -> None:
    """The summary table, one line per failed file, and how to look at rejected rows."""
    # File names relative to their common folder (named in the title) keep the table readable on
    # an 80-column terminal or a cron log.
    parents = [os.path.dirname(os.path.abspath(f.file_name)) for f in report.files]
    base = os.path.commonpath(parents) if parents else ""
    shown = {f.file_name: os.path.relpath(os.path.abspath(f.file_name), base) for f in report.files}
    table = Table(title=f"ingest {base}", title_justify="left")
    table.add_column(
        "file", overflow="fold", min_width=min(32, max((len(v) for v in shown.values()), default=4))
    )
    for name in ("stream", "status"):
        table.add_column(name, no_wrap=True)
    for name in ("read", "loaded", "rejected", "seconds", "rows/s"):
        table.add_column(name, justify="right", no_wrap=True)
    style = {"loaded": "green", "skipped": "dim", "failed": "red"}
    for f in report.files:
        rate = f"{f.rows_read / f.seconds:,.0f}" if f.status == "loaded" and f.seconds > 0 else ""
        table.add_row(
            Text(shown[f.file_name]),
            f.stream or "?",
            f"[{style[f.status]}]{f.status}[/]",
            f"{f.rows_read:,}",
            f"{f.rows_loaded:,}",
            f"[yellow]{f.rows_rejected:,}[/]" if f.rows_rejected else "0",
            f"{f.seconds:.2f}",
            rate,
        )
    console.print(table)
    skipped = [f for f in report.files if f.status == "skipped"]
    if skipped:
        console.print(
            f"[dim]{len(skipped)} file(s) skipped: same content already loaded (see raw.load_log)[/]"
        )
    for f in report.files:
        if f.status == "failed":
            console.print(Text("failed: ", style="red") + Text(f"{f.file_name}: {f.message}"), soft_wrap=True)
    with_rejects = [f for f in report.files if f.rows_rejected]
    if with_rejects:
        total = sum(f.rows_rejected for f in with_rejects)
        console.print(f"[yellow]{total:,} row(s) rejected[/] (not loaded; reason and original payload kept):")
        for f in with_rejects:
            hint = f"  select * from raw.rejected_rows where load_id = '{f.load_id}';  -- {f.file_name}"
            console.print(Text(hint), soft_wrap=True)
