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
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from pipelines.api.landing import SegmentWriter, open_dir, sealed_dir
from pipelines.contract import PII_FIELDS
from pipelines.ingest.errors import REASON_VALUE_CHARS
from pipelines.ingest.readers import jsonl_lines_source
from pipelines.ingest.typed import typed_frame
from pipelines.ingest.validation import failure_cases_one_pass
from pipelines.schemas import expectations

MAX_BODY_BYTES = 16 << 20  # a larger request body is refused (413)
MAX_BATCH_ROWS = 10_000  # rows in one request at most (413 beyond)
MAX_GROUP_ROWS = 50_000  # rows validated and synced together at most
SMALL_GROUP_ROWS = 500  # fewer rows: conversion ids hashed in Python, not by one DuckDB query
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


def _not_an_object(row: int, value: Any) -> RowOutcome:
    kind = {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean", type(None): "JSON null"}
    what = kind.get(type(value), "a JSON number")
    message = f"expected a JSON object, got {what}"
    return RowOutcome(row, "rejected", errors=[{"field": "", "rule": "json_object", "message": message}])


def _json_lines(rows: list[dict]) -> bytes:
    """The rows as compact JSON lines joined by line breaks (what is validated and what is written)."""
    try:
        return b"\n".join([orjson.dumps(row) for row in rows])
    except TypeError:  # an integer beyond 64 bits: the standard library writes it exactly
        return "\n".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in rows).encode()


def _shown(field_name: str, value: Any) -> str:
    if value is None:
        return "null"
    if field_name in PII_FIELDS:
        return "a value not shown (personal data)"
    text = str(value)
    if len(text) > REASON_VALUE_CHARS:
        text = text[: REASON_VALUE_CHARS - 1] + "…"
    return f"'{text}'"


class Collector:
    """Validates and appends posted rows; one writer thread per server (see the module docstring)."""

    def __init__(self, landing: Path, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.landing = landing
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._con = duckdb.connect()  # the JSON reader's scratch database; this thread only
        self._writers = {s: SegmentWriter(landing, s) for s in TIME_FIELDS}
        # Every key ever accepted -> its conversion id ("" for an event); the event_id is the key's own
        # (see _known). Strings only: such a dict is not tracked by Python's garbage collector, which
        # would otherwise walk every entry of a growing index on each full collection.
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
            index = self._index[stream]
            for ctype, eid in rows:
                key = row_key(stream, ctype, eid)
                if key not in index:
                    index[key] = conversion_id(ctype, eid) if stream == "conversions" else ""

    @staticmethod
    def _known(stream: str, key: str, cid: str) -> tuple[str, str | None]:
        """The answer to an accepted key: (event_id, conversion id). A conversion's key is
        ``type|event_id`` (a conversion type has no ``|``), an event's key its event_id."""
        if stream == "conversions":
            return key.split("|", 1)[1], cid
        return key, None

    # ---- group commit ---------------------------------------------------------------------------

    def submit(self, stream: str, rows: list[Any], done: Callable[[object], None]) -> None:
        """Queue ``rows``; ``done`` is called (on the writer thread) with the outcomes or an exception."""
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
        return box[0]  # type: ignore[return-value]

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

    def process_group(self, stream: str, requests: list[list[Any]]) -> list[list[RowOutcome]]:
        """Validate, deduplicate and append the rows of several requests; their outcomes, per request."""
        now = self._clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        time_field = TIME_FIELDS[stream]
        outcomes: list[list[RowOutcome | None]] = [[None] * len(rows) for rows in requests]
        objects: list[dict] = []
        where: list[tuple[int, int]] = []  # (request, row) of each object
        for r, rows in enumerate(requests):
            for i, row in enumerate(rows):
                if not isinstance(row, dict):
                    outcomes[r][i] = _not_an_object(i + 1, row)
                    continue
                if row.get("event_id") is None:  # the server names it; the answer says which
                    row = {**row, "event_id": str(uuid.uuid4())}
                if row.get(time_field) is None:
                    row = {**row, time_field: now}
                objects.append(row)
                where.append((r, i))
        if objects:
            encoded = _json_lines(objects)
            lines = encoded.decode().split("\n")  # a JSON text has no raw line break
            source = jsonl_lines_source(self._con, lines, stream, serialized=True)
            typed = typed_frame(source.values, stream)
            cases = failure_cases_one_pass(typed, stream)
            rejected = self._rejections(source.values, cases, stream)
            keys, eids, ids = self._keys(typed, stream)
            index = self._index[stream]
            fresh: dict[str, str] = {}
            written: list[int] = []
            for n, (r, i) in enumerate(where):
                if n in rejected:
                    outcomes[r][i] = RowOutcome(i + 1, "rejected", errors=rejected[n])
                    continue
                key = keys[n]
                known = index.get(key)
                if known is None:
                    known = fresh.get(key)
                if known is not None:
                    outcomes[r][i] = RowOutcome(i + 1, "replayed", *self._known(stream, key, known))
                    continue
                fresh[key] = ids[n] or ""
                outcomes[r][i] = RowOutcome(i + 1, "accepted", eids[n], ids[n])
                written.append(n)
            if written:
                data = "\n".join(lines[n] for n in written).encode() + b"\n"
                self._writers[stream].append([data])  # synced: from here on the rows are acknowledged
            index.update(fresh)
        return [[o for o in request if o is not None] for request in outcomes]

    def _keys(self, typed: pl.DataFrame, stream: str) -> tuple[list[str], list[str], list[str | None]]:
        """Per row: its replay key (as :func:`row_key`), its event_id as staging trims it, and for a
        conversion its warehouse id (as :func:`conversion_id`: MD5 of the key, computed by DuckDB for
        the whole group at once; None for an event)."""
        eid = pl.col("event_id").str.strip_chars(WHITESPACE).fill_null("")
        if stream != "conversions":
            frame = typed.select(eid.alias("eid"))
            eids = frame["eid"].to_list()
            return eids, eids, [None] * len(eids)
        ctype = pl.col("conversion_type").str.strip_chars(WHITESPACE).str.to_lowercase().fill_null("")
        frame = typed.select(pl.concat_str(ctype, pl.lit("|"), eid).alias("key"), eid.alias("eid"))
        keys = frame["key"].to_list()
        if len(keys) < SMALL_GROUP_ROWS:  # a query's fixed cost is more than hashing a few keys here
            return (
                keys,
                frame["eid"].to_list(),
                [_uuid_layout(hashlib.md5(k.encode()).hexdigest()) for k in keys],
            )
        keyed = frame.select("key").to_arrow()  # noqa: F841  (read by name in the query below)
        ids = self._con.sql(  # a projection keeps the rows' order (preserve_insertion_order)
            "select substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' "
            "|| substr(h, 17, 4) || '-' || substr(h, 21, 12) as id from (select md5(key) as h from keyed)"
        ).to_arrow_table()
        return keys, frame["eid"].to_list(), ids.column("id").to_pylist()

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
