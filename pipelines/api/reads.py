"""Reading the snapshot: one read-only connection per snapshot file, reopened when a new one is published,
and query results as JSON-ready rows."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.api.snapshot import BuildInfo, current_snapshot_file, open_snapshot


class ApiUsageError(ValueError):
    """A request the caller must fix (a bad filter, an unknown id); the message says what and where."""

    def __init__(self, message: str, *, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class NotFoundError(ApiUsageError):
    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class BusyError(RuntimeError):
    """The warehouse is being written by a build (or another export): try again later (HTTP 503)."""


@dataclass
class Answer:
    """What a read returns: the rows (or one object), the build they reflect, and the next page's cursor."""

    data: Any
    build: BuildInfo | None = None
    next_cursor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data": self.data}
        if self.next_cursor is not None or isinstance(self.data, list):
            out["next_cursor"] = self.next_cursor
        out.update(self.extra)
        return out


class SnapshotReader:
    """Read-only access to the current snapshot: the file the ``current`` link names at each read."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self._lock = threading.Lock()
        self._file: Path | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._info: BuildInfo | None = None

    @contextmanager
    def read(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, BuildInfo, Path]]:
        """A cursor on the current snapshot, the build it reflects and its file (SnapshotError if none)."""
        file = current_snapshot_file(self.link)
        with self._lock:
            if file != self._file or self._con is None:
                # The previous connection is dropped, not closed: a read still using it finishes on
                # the file it started on (the publisher keeps the previous file).
                self._con, self._info = open_snapshot(file)
                self._file = file
            cursor = self._con.cursor()
            info = self._info
        assert info is not None
        try:
            yield cursor, info, file
        finally:
            cursor.close()


def jsonable(value: Any) -> Any:
    """A DuckDB value as JSON: instants as ISO-8601 UTC, decimals as numbers, JSON text kept as text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            return value.isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def fetch_rows(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> list[dict]:
    result = cursor.execute(sql, params or {})
    names = [d[0] for d in result.description]
    return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in result.fetchall()]


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(text: str, size: int) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise ApiUsageError("cursor: expected the next_cursor of a previous page", field="cursor")
    return values


def parse_instant(text: str | None, name: str) -> dt.datetime | None:
    """``YYYY-MM-DD`` (00:00 UTC) or ISO-8601 with an offset (naive means UTC); ApiUsageError otherwise."""
    if text is None or text == "":
        return None
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiUsageError(
            f"{name}: expected a date YYYY-MM-DD or an ISO-8601 time, got {text!r}", field=name
        ) from None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
