"""Reading landing files: JSONL, CSV and Parquet readers that yield the contract columns as read
(text or typed) with row numbers and payloads, and turn unreadable files into file errors."""

from __future__ import annotations

import contextlib
import csv
import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from itertools import repeat
from pathlib import Path

import duckdb
import orjson
import polars as pl

from pipelines.contract import Column, columns
from pipelines.ingest.errors import IngestFileError, first_line, snippet
from pipelines.ingest.frames import (
    JSON_KIND_PROBLEMS,
    JSON_SUFFIX,
    JTYPE_SUFFIX,
    ROW,
    Source,
    arrow_view,
    query_row,
    quoted,
)
from pipelines.schemas import PROBLEM_DETAILS

# Rows validated and inserted at a time: with CHUNK_BYTES, what bounds the memory of reading and
# validating, whatever the file size (DuckDB's own part is bounded by its memory_limit). Twice the
# 122,880 rows of a DuckDB row group, so each insert writes whole row groups: partly filled ones are
# merged when the warehouse is closed, which took as much memory as DuckDB's memory_limit allowed.
# 491,520 rows took 0.8 GB more at the peak of a 10M-row JSONL file than this.
CHUNK_ROWS = 2 * 122_880
# Text files (JSONL, CSV) are read this many bytes at a time, cut at a record boundary.
CHUNK_BYTES = 32 << 20
# CSV blocks parsed ahead of the chunk being validated and written (about one chunk's worth).
CSV_READ_AHEAD = 4

# SQL: the minified JSON text of a value (null if not JSON), and the JSON type it holds
# (OBJECT, ARRAY, ...), INVALID, or null when the value is blank.
_JSON_TEXT_SQL = "try(json({v}))::varchar"
_JSON_KIND_SQL = (
    "case when {v} is null or trim({v}) = '' then null when {j} is null then 'INVALID' "
    "else json_type({j}) end"
)


_LONE_CR = re.compile(rb"\r(?!\n)")
# A JSON \\u escape of half of a UTF-16 surrogate pair: valid JSON syntax, but no Unicode character.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _quotes_open(data: bytes, quote: bytes | None, start: int, end: int) -> bool:
    """Whether ``data[start:end]`` leaves a ``quote``d field open (an odd number of quote chars)."""
    return quote is not None and data.count(quote, start, end) % 2 == 1


def _first_record_end(data: bytes, quote: bytes | None) -> int:
    """Just after the first line end of ``data`` outside a quoted field; 0 if there is none."""
    end = data.find(b"\n") + 1
    while end and _quotes_open(data, quote, 0, end):
        end = data.find(b"\n", end) + 1
    return end


def _last_record_end(data: bytes, quote: bytes | None) -> int:
    """Just after the last line end of ``data`` outside a quoted field; 0 if there is none."""
    end = data.rfind(b"\n") + 1
    open_ = _quotes_open(data, quote, 0, end)
    while end and open_:  # step back one line, taking its quotes off the count
        previous = data.rfind(b"\n", 0, end - 1) + 1
        open_ ^= _quotes_open(data, quote, previous, end)
        end = previous
    return end


def _blocks(path: Path, quote: bytes | None) -> Iterator[bytes]:
    """A text file's bytes in blocks of about ``CHUNK_BYTES``, each ending with a whole record.

    A block never splits a record (a line end inside a ``quote``d field does not end one) nor a
    UTF-8 character; a record longer than ``CHUNK_BYTES`` is read whole. Blocks are read one at a time.
    """
    with path.open("rb") as f:
        offset, size = 0, CHUNK_BYTES
        while True:
            f.seek(offset)
            data = f.read(size)
            if not data:
                return
            cut = len(data) if len(data) < size else _last_record_end(data, quote)
            if not cut:  # no record ends in this block: read a larger one
                size *= 2
                continue
            yield data if cut == len(data) else data[:cut]
            offset, size = offset + cut, CHUNK_BYTES


def _utf8_error(path: Path) -> str | None:
    """Where a file stops being UTF-8 (``byte N (line L)``), or None if it is valid UTF-8."""
    offset = lines = 0  # bytes and line ends before the block
    for block in _blocks(path, None):
        try:
            block.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = lines + block.count(b"\n", 0, exc.start) + 1
            return f"invalid UTF-8 at byte {offset + exc.start} (line {line}): expected UTF-8 text"
        offset, lines = offset + len(block), lines + block.count(b"\n")
    return None


def _read_error(path: Path, what: str, exc: Exception) -> IngestFileError:
    """A reader's exception as a one-line file error, located where we can."""
    message = str(exc).lower()
    if "utf-8" in message or "utf8" in message:
        located = _utf8_error(path)
        if located:
            return IngestFileError(located)
    return IngestFileError(f"cannot read {what}: {first_line(exc)}")


def _numbered(frames: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
    """The rows of ``frames`` in chunks of exactly ``CHUNK_ROWS`` (the last one smaller), each with
    ``_source_row`` (1-based, across frames)."""
    rows, rest = 0, None
    for frame in frames:
        if rest is not None:
            frame, rest = pl.concat([rest, frame]), None
        full = frame.height - frame.height % CHUNK_ROWS
        for start in range(0, full, CHUNK_ROWS):
            yield _with_row_numbers(frame.slice(start, CHUNK_ROWS), rows + 1)
            rows += CHUNK_ROWS
        rest = frame.slice(full) if full < frame.height else None
        del frame  # keep only the rest while the next frame is read
    if rest is not None:
        yield _with_row_numbers(rest, rows + 1)


def _read_ahead(frames: Iterator[pl.DataFrame], depth: int) -> Iterator[pl.DataFrame]:
    """``frames``, made by a thread at most ``depth`` frames ahead of the caller.

    Parsing the next blocks then overlaps with validating and writing the current chunk (polars
    and DuckDB release the GIL), as a streaming reader would, but with its memory bounded. The
    thread's errors are raised here; when the caller stops early, the thread stops too.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for frame in frames:
                if stop.is_set():
                    return
                ready.put(frame)
            ready.put(end)
        except BaseException as exc:  # handed to the caller, raised there
            ready.put(exc)

    thread = threading.Thread(target=produce, name="ingest-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, pl.DataFrame)
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # free the queue so a waiting put returns and the thread sees stop
            with contextlib.suppress(queue.Empty):
                ready.get_nowait()
            thread.join(timeout=0.05)


def _with_row_numbers(chunk: pl.DataFrame, first: int) -> pl.DataFrame:
    return chunk.with_row_index(ROW, offset=first).with_columns(pl.col(ROW).cast(pl.Int64))


def _read_jsonl(con: duckdb.DuckDBPyConnection, path: Path, stream: str) -> Iterator[Source]:
    """One JSON object per line; DuckDB extracts the fields of each line (exact line numbers).

    Fields are extracted as text (numbers as written, objects as JSON text). Only values that
    could be a JSON object, array or boolean (text starting with ``{``/``[``, or ``true``/``false``)
    get their JSON type looked up, so a string field holding an object is rejected cheaply.
    """

    def lines(block: bytes, first_line: int) -> pl.DataFrame:
        nul = block.find(b"\x00")
        if nul >= 0:
            line = first_line + block.count(b"\n", 0, nul)
            raise IngestFileError(
                f"line {line} contains a NUL byte: expected JSON text, one object per line (a binary file?)"
            )
        lone_cr = _LONE_CR.search(block) if b"\r" in block else None  # `in`: a fast scan of most files
        if lone_cr is not None:
            line = first_line + block.count(b"\n", 0, lone_cr.start())
            raise IngestFileError(
                f"line {line} ends with a carriage return (CR) alone: expected lines ending in LF or CRLF "
                "(convert the file's line ends)"
            )
        try:
            return pl.read_csv(
                block,
                has_header=False,
                separator="\x00",  # never in valid JSON text: each line is one field
                quote_char=None,
                schema={"line": pl.String},
                raise_if_empty=False,
            )
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise _read_error(path, "the JSONL file", exc) from exc

    def frames() -> Iterator[pl.DataFrame]:
        line = 1  # each line is a row, blank ones too, so rows read so far give the line number
        for block in _blocks(path, None):
            frame = lines(block, line)
            line += frame.height
            yield frame

    for chunk in _numbered(frames()):
        yield _jsonl_chunk(con, chunk, stream)


def jsonl_lines_source(
    con: duckdb.DuckDBPyConnection, lines: list[str], stream: str, *, serialized: bool = False
) -> Source:
    """JSON object lines (not from a file, e.g. an API request) read exactly as a JSONL file's lines:
    row number = position in ``lines``, from 1. Raises IngestFileError for a line that is not an object.

    ``serialized=True`` says the lines were written by a JSON serializer from parsed objects (dicts), so
    none is blank or anything but an object, and none holds what strict JSON forbids and DuckDB's reader
    lets through (a trailing comma, a key given twice): those checks are skipped, which is most of the
    fixed cost of a small group of lines."""
    frame = pl.DataFrame({"line": lines}, schema={"line": pl.String})
    return _jsonl_chunk(con, _with_row_numbers(frame, 1), stream, serialized=serialized)


_NONE = type(None)


def _plain_column(name: str, values: list, kinds: set[type]) -> pl.Series | None:
    """A field's values as the JSONL reader extracts them (text), when each is a string, an integer, a
    boolean or null: the reader keeps an integer's digits and writes a boolean as ``true``/``false``.
    None when some value is anything else (a float, an object, an array). ``kinds``: the values' types."""
    if kinds <= {str, _NONE}:
        return pl.Series(name, values, dtype=pl.String)
    if kinds <= {int, _NONE}:
        try:
            return pl.Series(name, values, dtype=pl.Int64).cast(pl.String)  # digits as Python writes them
        except TypeError:  # beyond 64 bits: below
            pass
    if not kinds <= {str, _NONE, int, bool}:
        return None
    texts = [
        v if type(v) is str or v is None else ("true" if v is True else "false" if v is False else str(v))
        for v in values
    ]
    return pl.Series(name, texts, dtype=pl.String)


def objects_source(con: duckdb.DuckDBPyConnection, rows: list[dict], stream: str) -> Source:
    """Parsed JSON objects (e.g. an API request's rows) read as the JSONL reader reads the lines a JSON
    serializer writes of them (:func:`jsonl_lines_source` with ``serialized=True``): the same values,
    JSON types and row numbers (position in ``rows``, from 1), so typing and checks see the same thing.

    Without the round trip through JSON text where it is not needed: a field whose values are all
    strings, integers, booleans or null is taken from the objects as is (an absent field, or one null in
    every row, becomes a column of nulls); only the fields holding anything else (floats, objects,
    arrays, and every value of a ``json`` column) are serialized and extracted by DuckDB as a JSONL file's
    lines are, which keeps its reading of numbers and its minified JSON text.
    """
    n = len(rows)
    present = set().union(*rows) if rows else set()
    frame: dict[str, pl.Series] = {ROW: pl.Series(ROW, range(1, n + 1), dtype=pl.Int64)}
    absent: list[str] = []
    read_as_lines: list[str] = []
    for col in columns(stream):
        name = col.name
        values = list(map(dict.get, rows, repeat(name))) if name in present else None
        kinds = set(map(type, values)) if values is not None else {_NONE}
        if kinds == {_NONE}:
            absent.append(name)
            continue
        texts = None if col.kind == "json" else _plain_column(name, values, kinds)
        if texts is None:
            read_as_lines.append(name)
            continue
        frame[name] = texts
        if col.kind == "str" and bool in kinds:  # what JSON said the value was
            frame[name + JTYPE_SUFFIX] = pl.Series(
                name + JTYPE_SUFFIX, ["BOOLEAN" if type(v) is bool else None for v in values], dtype=pl.String
            )
    values_frame = pl.DataFrame(frame).with_columns(pl.lit(None).alias(name) for name in absent)
    if read_as_lines:
        lines = [_dumps({name: row.get(name) for name in read_as_lines}) for row in rows]
        read = jsonl_lines_source(con, lines, stream, serialized=True).values
        wanted = [
            c
            for c in read.columns
            if c in read_as_lines or c.removesuffix(JTYPE_SUFFIX).removesuffix(JSON_SUFFIX) in read_as_lines
        ]
        values_frame = pl.concat([values_frame, read.select(wanted)], how="horizontal")

    def payloads(idx: pl.Series) -> pl.Series:
        return pl.Series("line", [_dumps(rows[i]) for i in idx.to_list()], dtype=pl.String)

    return Source(values_frame, payloads)


def _dumps(value: object) -> str:
    """Compact JSON text; integers beyond 64 bits written exactly (by the standard library)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _jsonl_chunk(
    con: duckdb.DuckDBPyConnection, lines: pl.DataFrame, stream: str, *, serialized: bool = False
) -> Source:
    line = pl.col("line")
    if serialized:
        lines = lines.with_columns(_blank=pl.lit(False), _object=pl.lit(True))
    else:
        lines = lines.with_columns(
            (line.is_null() | line.str.contains(r"^\s*$")).alias("_blank"),
            line.str.contains(r"^\s*\{").alias("_object"),
        )
    cols = columns(stream)
    con.register("_ingest_lines", arrow_view(lines))
    try:
        if not serialized:
            not_object = lines.filter(~pl.col("_blank") & ~pl.col("_object"))
            if not_object.height:
                _fail_line(con, int(not_object[ROW][0]), not_object["line"][0])
        struct = ", ".join(f'"{c.name}": "VARCHAR"' for c in cols)
        json_cols = [(quoted(c.name), quoted(c.name + JSON_SUFFIX), c.name) for c in cols if c.kind == "json"]
        texts = "".join(f", {_JSON_TEXT_SQL.format(v=v)} as {j}" for v, j, _ in json_cols)
        kinds = "".join(
            f', {_JSON_KIND_SQL.format(v=v, j=j)} as "{n}{JTYPE_SUFFIX}"' for v, j, n in json_cols
        )
        query = (
            f"select *{kinds} from (select *{texts} from (select {ROW}, "
            f"unnest(from_json(line, '{{{struct}}}')) from _ingest_lines where not _blank))"
        )
        try:
            values = pl.from_arrow(con.sql(query).to_arrow_table())
        except duckdb.Error as exc:
            bad = query_row(
                con,
                f"select {ROW}, line from _ingest_lines where not _blank and not json_valid(line) "
                f"order by {ROW} limit 1",
            )
            if bad is None:
                raise
            _fail_line(con, bad[0], bad[1], exc)
        assert isinstance(values, pl.DataFrame)
        if not serialized:
            _check_strict_json(con)
        values = _with_json_types(con, values, [c for c in cols if c.kind == "str"])
    finally:
        con.unregister("_ingest_lines")

    first_row = int(lines[ROW][0]) if lines.height else 1

    def payloads(idx: pl.Series) -> pl.Series:
        return lines["line"].gather(values[ROW].gather(idx) - first_row)

    return Source(values, payloads)


def _fail_line(
    con: duckdb.DuckDBPyConnection, number: int, text: str, cause: Exception | None = None
) -> None:
    """Raise the file error for a JSONL line that is not a JSON object."""
    kind = query_row(con, "select case when json_valid($1) then json_type($1) end", [text])
    if (kind is None or kind[0] is None) and (escape := _lone_surrogate(text)):
        raise IngestFileError(
            f"line {number} holds the escape {escape}, half of a UTF-16 surrogate pair and no character "
            "on its own: expected JSON text of valid Unicode characters"
        ) from cause
    if kind is None or kind[0] is None:
        raise IngestFileError(
            f"line {number} is not valid JSON (expected one JSON object per line): {snippet(text)}"
        ) from cause
    what = PROBLEM_DETAILS.get(JSON_KIND_PROBLEMS.get(kind[0], ""), kind[0])
    raise IngestFileError(
        f"line {number} is {what}, not an object (expected one JSON object per line)"
    ) from cause


def _lone_surrogate(text: str) -> str | None:
    """The first ``\\uD800``-``\\uDFFF`` escape of ``text`` that is not part of a valid pair, if any."""
    for match in _SURROGATE_ESCAPE.finditer(text):
        try:
            json.loads(f'"{match.group()}"').encode("utf-8")
        except UnicodeEncodeError:
            pair = text[match.start() : match.start() + 12]
            try:
                json.loads(f'"{pair}"').encode("utf-8")
            except (UnicodeEncodeError, ValueError):
                return match.group()
    return None


def _check_strict_json(con: duckdb.DuckDBPyConnection) -> None:
    """Fail the file at the first line DuckDB's lenient parser accepts but JSON does not allow: a
    trailing comma, or a key given twice (which value counts would be a guess)."""
    comma = query_row(
        con,
        f"select {ROW} from _ingest_lines where not _blank and regexp_matches(line, ',\\s*[}}\\]]\\s*$') "
        f"order by {ROW} limit 1",
    )
    if comma is not None:
        raise IngestFileError(
            f"line {comma[0]} has a trailing comma before its closing brace: not valid JSON"
        )
    # Lines of one file mostly share a few key lists: check each distinct list once, then find the line.
    duplicated = query_row(
        con,
        "select k from (select distinct json_keys(line) as k from _ingest_lines where not _blank) "
        "where len(k) <> len(list_distinct(k)) limit 1",
    )
    if duplicated is None:
        return
    names = duplicated[0]
    key = next((k for n, k in enumerate(names) if k in names[:n]), "?")
    line = query_row(
        con, f"select min({ROW}) from _ingest_lines where not _blank and json_keys(line) = ?", [names]
    )
    raise IngestFileError(
        f"line {line[0] if line else '?'} has the key {key!r} twice: expected each field once per JSON object"
    )


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
    rows = values.filter(pl.any_horizontal(suspect).fill_null(False)).select(ROW)
    if not rows.height:
        return values
    paths = ", ".join(f"'$.\"{c.name}\"'" for c in cols)
    types = ", ".join(
        f"case when t[{i}] in ('OBJECT', 'ARRAY', 'BOOLEAN') then t[{i}] end as \"{c.name}{JTYPE_SUFFIX}\""
        for i, c in enumerate(cols, start=1)
    )
    con.register("_ingest_suspects", arrow_view(rows))
    try:
        found = con.sql(
            f"select {ROW}, {types} from (select l.{ROW}, json_type(l.line, [{paths}]) as t "
            f"from _ingest_lines as l semi join _ingest_suspects as s on l.{ROW} = s.{ROW})"
        ).to_arrow_table()
    finally:
        con.unregister("_ingest_suspects")
    return values.join(pl.from_arrow(found), on=ROW, how="left", maintain_order="left")  # type: ignore[arg-type]


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
        rows = original[idx].drop(ROW)
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


def _csv_problem(path: Path) -> str | None:
    """Where a CSV file stops parsing (a quote never closed, a ragged record), by data row and line;
    None when Python's strict CSV reader finds nothing wrong (error path only)."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, [])
            number, start = 0, reader.line_num + 1
            try:
                for number, record in enumerate(reader, start=1):
                    if len(record) != len(header) and record:
                        return (
                            f"data row {number} (line {start}) has {len(record)} fields: expected "
                            f"{len(header)}, as in the header (a stray quote joins lines into one field)"
                        )
                    start = reader.line_num + 1
            except csv.Error as exc:
                return (
                    f"data row {number + 1} (line {start}) cannot be parsed ({exc}): expected fields "
                    'quoted in pairs of ", with a quote inside a quoted field doubled ("")'
                )
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _tabular_source(con: duckdb.DuckDBPyConnection, original: pl.DataFrame, stream: str) -> Source:
    values = original.select(
        ROW,
        *[
            pl.col(c.name) if c.name in original.columns else pl.lit(None, pl.String).alias(c.name)
            for c in columns(stream)
        ],
    )
    for col in columns(stream):
        if col.kind == "json" and values.schema[col.name] == pl.String:
            values = pl.concat([values, _json_columns(con, values[col.name])], how="horizontal")
    return Source(values, _json_payloads(original))


def _json_columns(con: duckdb.DuckDBPyConnection, texts: pl.Series) -> pl.DataFrame:
    """Per value: its minified JSON text (``<name>__json``) and what it holds (``<name>__jtype``)."""
    name = texts.name
    con.register("_ingest_json", arrow_view(texts.to_frame("v")))
    order = query_row(con, "select current_setting('preserve_insertion_order')")
    con.execute("set preserve_insertion_order = true")  # the results must line up with the values
    try:
        table = con.sql(
            f"select j as {quoted(name + JSON_SUFFIX)}, {_JSON_KIND_SQL.format(v='v', j='j')} as "
            f"{quoted(name + JTYPE_SUFFIX)} from (select v, {_JSON_TEXT_SQL.format(v='v')} as j from _ingest_json)"
        ).to_arrow_table()
    finally:
        con.execute(f"set preserve_insertion_order = {bool(order and order[0])}")
        con.unregister("_ingest_json")
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _read_csv(con: duckdb.DuckDBPyConnection, path: Path, stream: str) -> Iterator[Source]:
    def on_error(exc: Exception) -> IngestFileError:
        if isinstance(exc, pl.exceptions.NoDataError):
            return IngestFileError("the CSV file is empty: expected a header row")
        if "more fields" in str(exc):
            return IngestFileError(_ragged_csv_row(path))
        located = _csv_problem(path)
        if located:
            return IngestFileError(located)
        return _read_error(path, "the CSV file", exc)

    with path.open("rb") as f:  # a binary file named .csv: say so, not "missing columns"
        head = f.read(1 << 16)
    if (nul := head.find(b"\x00")) >= 0:
        line = head.count(b"\n", 0, nul) + 1
        raise IngestFileError(f"line {line} contains a NUL byte: expected CSV text (a binary file?)")
    scan = pl.scan_csv(path, infer_schema=False, quote_char='"', encoding="utf8", glob=False)
    try:
        names = scan.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise on_error(exc) from exc
    _missing_required(names, stream, "the CSV header")

    def frames() -> Iterator[pl.DataFrame]:
        header = b""  # the header record, put before each later block so it parses the same way
        for block in _blocks(path, b'"'):
            if not header:
                header = block[: _first_record_end(block, b'"') or len(block)]
            else:
                block = header + block
            try:
                frame = pl.read_csv(block, infer_schema=False, quote_char='"', encoding="utf8")
            except (pl.exceptions.PolarsError, OSError) as exc:
                raise on_error(exc) from exc
            yield frame

    # Parsing CSV is much of the work: the next blocks are parsed while this chunk is written.
    for original in _numbered(_read_ahead(frames(), CSV_READ_AHEAD)):
        yield _tabular_source(con, original, stream)


def _read_parquet(con: duckdb.DuckDBPyConnection, path: Path, stream: str) -> Iterator[Source]:
    def on_error(exc: Exception) -> IngestFileError:
        return IngestFileError(f"not a readable Parquet file (truncated or corrupt?): {first_line(exc)}")

    scan = pl.scan_parquet(path, glob=False)
    try:
        names = scan.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise on_error(exc) from exc
    _missing_required(names, stream, "the Parquet file")

    def frames() -> Iterator[pl.DataFrame]:
        # One slice at a time: polars reads only the row groups a slice needs.
        try:
            rows = scan.select(pl.len()).collect().item()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise on_error(exc) from exc
        for start in range(0, rows, CHUNK_ROWS):
            try:
                frame = scan.slice(start, CHUNK_ROWS).collect()
            except (pl.exceptions.PolarsError, OSError) as exc:
                raise on_error(exc) from exc
            yield frame

    for original in _numbered(frames()):
        yield _tabular_source(con, original, stream)


READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}
