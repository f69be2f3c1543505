"""Landing files written by the API: rows accepted over HTTP, appended durably, loaded by ``convopt ingest``.

``convopt ingest`` loads a file once, by its content hash, so a file must not grow after it is loaded. The
server therefore appends to *open segments* in a hidden folder that ingest never reads
(``<landing>/.api-open/``), and a segment becomes a landing file only when it is *sealed*: moved, whole,
into ``<landing>/api/``, after which nobody writes to it again.

* The writer holds an exclusive ``flock`` on its segment while it appends and syncs a group of rows
  (one ``write`` of whole lines, then ``fsync``), and checks under that lock that the segment is still
  the open one (a sealed one has moved): then it starts a new segment.
* ``seal_open_segments`` (called by ``convopt ingest`` for every landing folder it reads) takes the same
  lock on each open segment, cuts a torn last line (a write cut short by a crash was never
  acknowledged), and renames the segment into ``api/``. A server that is running, stopped or killed
  (``kill -9``) loses nothing it acknowledged: an acknowledged row was synced before the response.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import secrets
from pathlib import Path

OPEN_DIR = ".api-open"  # hidden: ingest's folder discovery skips it
SEALED_DIR = "api"
SEGMENT_MAX_BYTES = 64 << 20  # a segment is sealed by its writer when it grows past this


def open_dir(landing: Path) -> Path:
    return landing / OPEN_DIR


def sealed_dir(landing: Path) -> Path:
    return landing / SEALED_DIR


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_tail(fd: int) -> int:
    """Truncate a segment after its last complete line; its size afterwards."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0
    end = size
    while end > 0:
        start = max(0, end - 65536)
        block = os.pread(fd, end - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            keep = start + cut + 1
            if keep != size:
                os.ftruncate(fd, keep)
            return keep
        end = start
    os.ftruncate(fd, 0)
    return 0


def seal_segment(path: Path, landing: Path) -> Path | None:
    """Seal one open segment (under its lock): the landing file it became, or None if it was empty."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:  # sealed meanwhile by someone else
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not path.exists() or os.stat(path).st_ino != os.fstat(fd).st_ino:
            return None  # moved while we waited for the lock
        size = _cut_torn_tail(fd)
        if size == 0:
            path.unlink()
            return None
        os.fsync(fd)
        target_dir = sealed_dir(landing)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / path.name
        os.rename(path, target)
        fsync_dir(target_dir)
        fsync_dir(path.parent)
        return target
    finally:
        os.close(fd)  # also releases the lock


def seal_open_segments(landing: Path) -> list[Path]:
    """Seal every open segment of a landing folder (none: nothing to do); the landing files made."""
    folder = open_dir(landing)
    if not folder.is_dir():
        return []
    sealed = []
    for path in sorted(folder.glob("*.jsonl")):
        target = seal_segment(path, landing)
        if target is not None:
            sealed.append(target)
    return sealed


class SegmentWriter:
    """Appends groups of JSON lines of one stream to the open segment, durably (one writer thread)."""

    def __init__(self, landing: Path, stream: str) -> None:
        self.landing = landing
        self.stream = stream
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0

    def _new_segment(self) -> None:
        folder = open_dir(self.landing)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        # The name starts with the stream: ingest tells the stream from it once the segment is sealed.
        self._path = folder / f"{self.stream}-api-{stamp}-{os.getpid()}-{secrets.token_hex(3)}.jsonl"
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._size = 0
        fsync_dir(folder)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._path = None, None

    def append(self, lines: list[bytes]) -> None:
        """Write whole lines and fsync them before returning (the rows are then acknowledged)."""
        data = b"".join(lines)
        while True:
            if self._fd is None:
                self._new_segment()
            assert self._fd is not None and self._path is not None
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                try:
                    still_open = os.stat(self._path).st_ino == os.fstat(self._fd).st_ino
                except FileNotFoundError:
                    still_open = False
                if not still_open:  # sealed by an ingest: continue in a new segment
                    self._close()
                    continue
                _write_all(self._fd, data)
                os.fsync(self._fd)
                self._size += len(data)
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            break
        if self._size >= SEGMENT_MAX_BYTES:
            self.seal()

    def seal(self) -> None:
        """Seal the current segment (so the next ingest loads it) and start a new one on the next append."""
        if self._path is not None:
            path = self._path
            self._close()
            seal_segment(path, self.landing)

    def close(self) -> None:
        self._close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
