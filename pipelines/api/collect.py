"""Collecting rows over the API: validated like a landing file, appended durably, answered once per key.

Rows posted to ``/api/conversions`` and ``/api/events`` go through the same contract and checks as
``convopt ingest`` (:mod:`pipelines.schemas`; the JSONL reader of :mod:`pipelines.ingest.readers`), so a
row the API accepts is a row ingest loads. Accepted rows are appended to the landing zone by
:mod:`pipelines.api.landing` and synced before the answer.

Requests are committed in groups: one thread takes every row waiting (from all requests), validates them
as one frame, writes them with one ``write`` + ``fsync``, then answers each request. A lone request waits
for nothing; under load many requests share one validation and one sync (group commit).

Replays: a conversion is identified by ``(conversion_type, event_id)``, an event by ``event_id``, as the
warehouse deduplicates them. A key already accepted (by this server, now or before a restart: the index
is rebuilt from the API's landing files at start) is answered as the first time and not written again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import queue
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import methodcaller
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from pipelines.api.landing import SegmentWriter, open_dir, sealed_dir
from pipelines.contract import PII_FIELDS
from pipelines.ingest.errors import REASON_VALUE_CHARS
from pipelines.ingest.readers import objects_source
from pipelines.ingest.typed import typed_frame
from pipelines.ingest.validation import failure_cases_one_pass
from pipelines.schemas import expectations

MAX_BODY_BYTES = 16 << 20  # a larger request body is refused (413)
MAX_BATCH_ROWS = 10_000  # rows in one request at most (413 beyond)
MAX_GROUP_ROWS = 50_000  # rows validated and synced together at most
SMALL_GROUP_ROWS = 2_000  # up to this many rows, a group's outcomes become Python objects at once
# The time field a row may leave out (then: when the server received it).
TIME_FIELDS = {"conversions": "conversion_time", "events": "event_time"}


# What staging's trim removes (the `trim_whitespace` macro), which is what Python's str.strip() removes.
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)


def _uuid_layout(digest: str) -> str:
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def conversion_id(conversion_type: str | None, event_id: str | None) -> str:
    """The id the warehouse gives the conversion ``(conversion_type, event_id)`` (``conversion_event.id``).

    The same as the ``uuid_from_columns(['conversion_type', 'event_id'])`` macro on the staged values
    (trimmed as Python's ``str.strip()`` does; the type lower-cased): MD5 of ``type|event_id`` laid out
    as a UUID. A conversion reported again more than the deduplication window after its first report
    is a second conversion with an id of its own; the API accepts a key once, so it never makes one.
    """
    ctype = (conversion_type or "").strip(WHITESPACE).lower()
    eid = (event_id or "").strip(WHITESPACE)
    return _uuid_layout(hashlib.md5(f"{ctype}|{eid}".encode()).hexdigest())  # an id, not a secret


def row_key(stream: str, conversion_type: Any, event_id: Any) -> str:
    """The replay key: ``type|event_id`` for conversions, ``event_id`` for events (trimmed as staging does)."""
    eid = str(event_id if event_id is not None else "").strip(WHITESPACE)
    if stream == "conversions":
        return f"{str(conversion_type or '').strip(WHITESPACE).lower()}|{eid}"
    return eid


@dataclass(slots=True)
class RowOutcome:
    """What happened to one posted row (``row`` is its 1-based position in the request)."""

    row: int
    status: str  # accepted | replayed | rejected
    event_id: str | None = None
    id: str | None = None  # conversions: conversion_event.id
    errors: list[dict[str, str]] = field(default_factory=list)  # rejected rows only

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row, "status": self.status}
        if self.status == "rejected":
            out["errors"] = self.errors
        else:
            out["event_id"] = self.event_id
            if self.id is not None:
                out["id"] = self.id
        return out


class RepeatedKey:
    """A posted object that names one field twice (found by the HTTP layer, which sees the text):
    rejected as ``convopt ingest`` rejects such a line, since which value counts would be a guess."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


def _rejection(field_name: str, rule: str, message: str) -> list[dict[str, str]]:
    return [{"field": field_name, "rule": rule, "message": message}]


def _not_an_object(value: Any) -> list[dict[str, str]]:
    """The errors of a posted row that is not a JSON object (or names a field twice)."""
    if isinstance(value, RepeatedKey):
        message = f"{value.key}: expected each field once per JSON object, got it twice"
        return _rejection(value.key, "repeated_key", message)
    kind = {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean", type(None): "JSON null"}
    what = kind.get(type(value), "a JSON number")
    return _rejection("", "json_object", f"expected a JSON object, got {what}")


def _line(row: dict) -> bytes | None:
    """The row as one compact JSON line (what is written); None when it holds text that is not valid
    Unicode (half of a UTF-16 surrogate pair, which JSON can escape but UTF-8 cannot hold)."""
    try:
        return orjson.dumps(row)
    except TypeError:  # an integer beyond 64 bits (the standard library writes it exactly), or a surrogate
        try:
            return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()
        except UnicodeEncodeError:
            return None


class _Lines:
    """The JSON lines of a group's objects (what is written): one orjson call for the whole group,
    cut at the objects' boundaries; row by row where that is not possible."""

    def __init__(self, objects: list[dict]) -> None:
        self._count = len(objects)
        self._each: list[bytes | None] | None = None
        self.unwritable: list[int] = []  # objects holding a lone surrogate
        try:
            whole = orjson.dumps(objects)  # [{...},{...},...]
        except TypeError:  # an integer beyond 64 bits, or a lone surrogate: row by row
            self._each = [_line(row) for row in objects]
            self.unwritable = [n for n, line in enumerate(self._each) if line is None]
            return
        # Compact JSON of a list of objects: "},{" between two objects; if it occurs nowhere else
        # (in a string, or between nested objects), the text is cut there exactly.
        self._whole = whole if whole.count(b"},{") == self._count - 1 else None
        if self._whole is None:
            self._each = [orjson.dumps(row) for row in objects]

    def joined(self, rows: list[int] | range) -> bytes:
        """The lines of the objects ``rows`` (positions, in order), each ending with a line break."""
        if self._each is None and rows == range(self._count):
            return self._whole[1:-1].replace(b"},{", b"}\n{") + b"\n"
        if self._each is None:
            cut = self._whole[2:-2].split(b"},{")
            self._each = [b"{" + text + b"}" for text in cut]
        return b"".join([self._each[n] + b"\n" for n in rows])


def _not_unicode(row: dict) -> list[dict[str, str]]:
    """The errors of a row holding a lone surrogate: the first field whose value holds one."""
    for name, value in row.items():
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            message = (
                f"{name}: expected text of valid Unicode characters, got half of a UTF-16 surrogate pair "
                "(an escape from \\ud800 to \\udfff without its other half)"
            )
            return _rejection(name, "unicode", message)
    return _rejection("", "unicode", "expected field names of valid Unicode characters")


_DIGEST = pl.col("digest")
_UUID_LAYOUT = pl.concat_str(
    _DIGEST.str.slice(0, 8),
    pl.lit("-"),
    _DIGEST.str.slice(8, 4),
    pl.lit("-"),
    _DIGEST.str.slice(12, 4),
    pl.lit("-"),
    _DIGEST.str.slice(16, 4),
    pl.lit("-"),
    _DIGEST.str.slice(20, 12),
)
_EMPTY_OUTCOMES = pl.DataFrame(
    schema={"status": pl.String, "event_id": pl.String, "id": pl.String, "errors": pl.String}
)


def _shown(field_name: str, value: Any) -> str:
    if value is None:
        return "null"
    if field_name in PII_FIELDS:
        return "a value not shown (personal data)"
    text = str(value)
    if len(text) > REASON_VALUE_CHARS:
        text = text[: REASON_VALUE_CHARS - 1] + "…"
    return f"'{text}'"


class _Group:
    """The outcomes of a group of requests committed together, one row per posted row in order:
    ``status``, ``event_id``, ``id`` and ``errors`` (JSON text). Shared by the requests' :class:`Outcomes`."""

    __slots__ = ("_rows", "frame", "stream")

    def __init__(self, frame: pl.DataFrame, stream: str) -> None:
        self.frame = frame
        self.stream = stream
        self._rows: list[tuple] | None = None

    def rows(self, offset: int, length: int) -> list[tuple]:
        if self.frame.height > SMALL_GROUP_ROWS:  # a large group: only this request's rows
            return self.frame.slice(offset, length).rows()
        if self._rows is None:  # a group of small requests: converted once for all of them
            self._rows = self.frame.rows()
        return self._rows[offset : offset + length]


class Outcomes:
    """The outcomes of one request's rows: ``status`` (accepted | replayed | rejected), ``event_id`` and,
    for conversions, ``id`` (the warehouse's ``conversion_event.id``) of rows not rejected, and the
    errors of rejected ones; row numbers are positions in the request, from 1.

    Kept as columns: the HTTP layer writes a batch's answer from them (:meth:`rows_json`); :meth:`rows`
    gives the same as :class:`RowOutcome` objects."""

    __slots__ = ("_group", "_length", "_offset")

    def __init__(self, group: _Group, offset: int, length: int) -> None:
        self._group, self._offset, self._length = group, offset, length

    def __len__(self) -> int:
        return self._length

    def _frame(self) -> pl.DataFrame:
        return self._group.frame.slice(self._offset, self._length)

    def counts(self) -> dict[str, int]:
        status = self._frame()["status"]
        return {s: int((status == s).sum()) for s in ("accepted", "replayed", "rejected")}

    def rows(self) -> list[RowOutcome]:
        return [
            RowOutcome(n, status, errors=orjson.loads(errors))
            if status == "rejected"
            else RowOutcome(n, status, event_id, cid)
            for n, (status, event_id, cid, errors) in enumerate(
                self._group.rows(self._offset, self._length), start=1
            )
        ]

    def rows_json(self) -> bytes:
        """The rows' outcomes as a JSON array (what :meth:`RowOutcome.as_json` gives, row by row)."""
        row = pl.int_range(1, self._length + 1, dtype=pl.Int64).alias("row")
        fields = [row, pl.col("status"), pl.col("event_id")]
        if self._group.stream == "conversions":
            fields.append(pl.col("id"))
        rejected = pl.concat_str(
            pl.lit('{"row":'),
            row.cast(pl.String),
            pl.lit(',"status":"rejected","errors":'),
            pl.col("errors"),
            pl.lit("}"),
        )
        each = (
            pl.when(pl.col("status") == "rejected")
            .then(rejected)
            .otherwise(pl.struct(fields).struct.json_encode())
        )
        text = self._frame().select(each.str.join(",")).item()
        return b"[" + (text or "").encode() + b"]"


class Collector:
    """Validates and appends posted rows; one writer thread per server (see the module docstring)."""

    def __init__(self, landing: Path, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.landing = landing
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._con = duckdb.connect()  # the JSON reader's scratch database; this thread only
        self._writers = {s: SegmentWriter(landing, s) for s in TIME_FIELDS}
        # Every key ever accepted (as :func:`row_key`) -> "". A conversion's id is the MD5 of its key and
        # its event_id is part of the key, so the key is all a replay's answer needs. Strings only: such a
        # dict is not tracked by Python's garbage collector, which would otherwise walk every entry of a
        # growing index on each full collection.
        self._index: dict[str, dict[str, str]] = {s: {} for s in TIME_FIELDS}
        self._queue: queue.Queue[tuple[str, list[Any], Callable[[object], None]] | None] = queue.Queue()
        self._lock = threading.Lock()  # process_group without the thread (direct calls, tests)
        self._load_index()
        self._thread = threading.Thread(target=self._run, name="convopt-api-collector", daemon=True)
        self._thread.start()

    # ---- the index of accepted keys -----------------------------------------------------------

    def _load_index(self) -> None:
        """Rebuild the accepted keys from the API's landing files (open and sealed)."""
        for stream in TIME_FIELDS:
            globs = [
                str(d / f"{stream}-api-*.jsonl") for d in (open_dir(self.landing), sealed_dir(self.landing))
            ]
            files = [g for g in globs if list(Path(g).parent.glob(Path(g).name))]
            if not files:
                continue
            cols = "{'event_id': 'VARCHAR', 'conversion_type': 'VARCHAR'}"
            rows = self._con.execute(
                f"select conversion_type, event_id from read_json({files!r}, columns = {cols}, "
                "format = 'newline_delimited', ignore_errors = true)"
            ).fetchall()
            self._index[stream].update(
                dict.fromkeys((row_key(stream, ctype, eid) for ctype, eid in rows), "")
            )

    # ---- group commit ---------------------------------------------------------------------------

    def submit(self, stream: str, rows: list[Any], done: Callable[[object], None]) -> None:
        """Queue ``rows``; ``done`` is called (on the writer thread) with their :class:`Outcomes` or an
        exception."""
        self._queue.put((stream, rows, done))

    def submit_and_wait(self, stream: str, rows: list[Any]) -> list[RowOutcome]:
        """Queue ``rows`` and wait for their outcomes (the Python API's way in)."""
        ready = threading.Event()
        box: list[object] = []

        def done(result: object) -> None:
            box.append(result)
            ready.set()

        self.submit(stream, rows, done)
        ready.wait()
        if isinstance(box[0], BaseException):
            raise box[0]
        assert isinstance(box[0], Outcomes)
        return box[0].rows()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            count = len(first[1])
            while count < MAX_GROUP_ROWS:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(item)
                count += len(item[1])
            for stream in TIME_FIELDS:
                items = [(rows, done) for s, rows, done in group if s == stream]
                if not items:
                    continue
                try:
                    with self._lock:
                        results = self.process_group(stream, [rows for rows, _ in items])
                except Exception as exc:  # answered as a server error; nothing was acknowledged
                    for _, done in items:
                        done(exc)
                    continue
                for (_, done), result in zip(items, results, strict=True):
                    done(result)

    def process_group(self, stream: str, requests: list[list[Any]]) -> list[Outcomes]:
        """Validate, deduplicate and append the rows of several requests; their outcomes, per request.

        The rows are validated as one frame built from the parsed objects (:func:`objects_source`),
        and their outcomes are worked out as columns: per row, only the replay index is looked up and
        the accepted rows are serialized."""
        now = self._clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        time_field = TIME_FIELDS[stream]
        posted = list(chain.from_iterable(requests))
        refused: dict[int, list[dict[str, str]]] = {}  # position -> errors, of rows that are not objects
        if (
            set(map(type, posted)) == {dict}
            and None not in map(dict.get, posted, repeat("event_id"))
            and None not in map(dict.get, posted, repeat(time_field))
        ):  # the common case, checked without a Python step per row: objects that need nothing added
            objects, object_at = posted, list(range(len(posted)))
        else:
            objects, object_at = [], []  # object_at: position in the group of each object
            for position, row in enumerate(posted):
                if type(row) is not dict:
                    refused[position] = _not_an_object(row)
                    continue
                if row.get("event_id") is None:  # the server names it; the answer says which
                    row = {**row, "event_id": str(uuid.uuid4())}
                if row.get(time_field) is None:
                    row = {**row, time_field: now}
                objects.append(row)
                object_at.append(position)
        lines = _Lines(objects)
        if lines.unwritable:  # text that is not valid Unicode: rejected before anything reads it
            for n in reversed(lines.unwritable):
                refused[object_at.pop(n)] = _not_unicode(objects.pop(n))
            lines = _Lines(objects)
        frame = self._outcomes(stream, objects, lines) if objects else _EMPTY_OUTCOMES
        if refused:
            frame = (
                pl.concat(
                    [
                        frame.with_columns(_at=pl.Series(object_at, dtype=pl.Int64)),
                        pl.DataFrame(
                            {
                                "status": ["rejected"] * len(refused),
                                "errors": [orjson.dumps(e).decode() for e in refused.values()],
                                "_at": list(refused),
                            },
                            schema_overrides={"_at": pl.Int64},
                        ),
                    ],
                    how="diagonal",
                )
                .sort("_at")
                .drop("_at")
            )
        group, outcomes, offset = _Group(frame, stream), [], 0
        for rows in requests:
            outcomes.append(Outcomes(group, offset, len(rows)))
            offset += len(rows)
        return outcomes

    def _outcomes(self, stream: str, objects: list[dict], lines: _Lines) -> pl.DataFrame:
        """Validate ``objects``, append the accepted ones (``lines``, synced), update the replay index;
        per object its status, event_id, id and errors (JSON text)."""
        source = objects_source(self._con, objects, stream)
        typed = typed_frame(source.values, stream)
        cases = failure_cases_one_pass(typed, stream)
        rejected = self._rejections(source.values, cases, stream)
        eid = pl.col("event_id").str.strip_chars(WHITESPACE).fill_null("")
        if stream == "conversions":
            ctype = pl.col("conversion_type").str.strip_chars(WHITESPACE).str.to_lowercase().fill_null("")
            key = pl.concat_str(ctype, pl.lit("|"), eid)
        else:
            key = eid
        keyed = typed.select(key.alias("key"), eid.alias("event_id"))
        keys = keyed["key"].to_list()
        index = self._index[stream]
        if not rejected and not any(map(index.__contains__, keys)) and len(set(keys)) == len(keys):
            written: list[int] | range = range(len(keys))  # the common case: every row is new
            status = pl.lit("accepted")
        else:  # the first good row of a key not yet accepted is accepted; a later one replays it
            statuses, written, seen = [], [], set()
            for n, k in enumerate(keys):
                if n in rejected:
                    statuses.append("rejected")
                elif k in index or k in seen:
                    statuses.append("replayed")
                else:
                    statuses.append("accepted")
                    written.append(n)
                    seen.add(k)
            status = pl.Series(statuses, dtype=pl.String)
        if written:
            self._writers[stream].append([lines.joined(written)])  # synced: from here on, acknowledged
            index.update(
                dict.fromkeys(keys if isinstance(written, range) else [keys[n] for n in written], "")
            )
        good = status != "rejected" if isinstance(status, pl.Series) else pl.lit(True)
        if stream == "conversions":  # the MD5 of the key laid out as a UUID (see conversion_id)
            digests = pl.Series(list(map(methodcaller("hexdigest"), map(hashlib.md5, map(str.encode, keys)))))
            cid = pl.when(good).then(_UUID_LAYOUT).alias("id")
        else:
            digests, cid = pl.Series([None] * len(keys), dtype=pl.String), pl.lit(None, pl.String).alias("id")
        errors = pl.lit(None, pl.String)
        if rejected:
            texts = [None] * len(keys)
            for n, found in rejected.items():
                texts[n] = orjson.dumps(found).decode()
            errors = pl.Series(texts, dtype=pl.String)
        return keyed.with_columns(digest=digests).select(
            status=status, event_id=pl.when(good).then(pl.col("event_id")), id=cid, errors=errors
        )

    @staticmethod
    def _rejections(
        values: pl.DataFrame, cases: pl.DataFrame, stream: str
    ) -> dict[int, list[dict[str, str]]]:
        """Per rejected line (0-based): its failing fields, each with the rule and a message, in the
        order and with the expectation texts of ingest's rejected rows (a field is named once)."""
        if not cases.height:
            return {}
        first = (
            cases.join(expectations(stream), on=["column", "check"], how="left")
            .sort("_idx", "rank")
            .unique(["_idx", "column"], keep="first", maintain_order=True)
        )
        found: dict[int, list[dict[str, str]]] = {}
        for idx, column, check, expected in first.select("_idx", "column", "check", "expected").iter_rows():
            value = values[column][idx]
            found.setdefault(idx, []).append(
                {
                    "field": column,
                    "rule": check,
                    "message": f"{column}: {expected}, got {_shown(column, value)}",
                }
            )
        return found

    def seal(self) -> None:
        """Seal the open segments (at shutdown: the next ingest loads them without waiting for a seal)."""
        with self._lock:
            for writer in self._writers.values():
                writer.seal()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        for writer in self._writers.values():
            writer.close()
        self._con.close()
