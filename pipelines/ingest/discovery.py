"""Finding landing files: which files a path names, the stream of each, and its content hash.

A folder is scanned in full: every entry that is not hidden is a landing file, whatever its name, so
a file the loader cannot use (``events.json``, ``events.jsonl.gz``, a named pipe, a symlink that leads
outside the folder, a subfolder it may not read) is reported and failed by the loader, never skipped
silently. Only hidden names (``.generated``, ``.cache/``) are left out.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from pipelines.contract import STREAMS
from pipelines.ingest.errors import IngestFileError, IngestUsageError

FORMATS: dict[str, str] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".snappy", ".tgz")
HASH_CHUNK = 1 << 20
# The first bytes of files that are not the text their name says (checked before a file is parsed).
_MAGIC = {
    b"PAR1": "a Parquet file",
    b"\x1f\x8b": "a gzip-compressed file",
    b"PK\x03\x04": "a zip archive",
    b"BZh": "a bzip2-compressed file",
    b"\xfd7zXZ": "an xz-compressed file",
    b"\x28\xb5\x2f\xfd": "a zstd-compressed file",
}


def discover_files(paths: Sequence[Path]) -> list[Path]:
    """The landing files named by ``paths`` (see :func:`discover`)."""
    return [path for path, _ in discover(paths)]


def discover(paths: Sequence[Path]) -> list[tuple[Path, Path | None]]:
    """The landing files named by ``paths``: files as given, folders scanned recursively.

    Every entry of a folder that is not hidden and not a folder counts (the loader fails the ones it
    cannot load, with the reason); a subfolder that cannot be listed is returned too, so the loader
    reports it. Each folder's entries are sorted by path so loads are deterministic; a file named
    twice is loaded once. Returns ``(file, landing folder it was found in, or None if named)``.
    """
    found: list[tuple[Path, Path | None]] = []
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise IngestUsageError(f"{path} does not exist (expected a landing file or folder)")
        if path.is_dir():
            found.extend((p, path) for p in _scan(path))
        else:
            found.append((path, None))
    unique: dict[Path, tuple[Path, Path | None]] = {}
    for p, folder in found:
        unique.setdefault(_identity(p), (p, folder))
    return list(unique.values())


def _identity(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: keep the path as written
        return path.absolute()


def _scan(folder: Path) -> list[Path]:
    entries: list[Path] = []
    unlistable: list[Path] = []

    def on_error(exc: OSError) -> None:
        if exc.filename and Path(exc.filename) != folder:
            unlistable.append(Path(exc.filename))
        else:
            raise IngestUsageError(f"cannot list the landing folder {folder}: {exc.strerror}") from exc

    for root, dirs, files in os.walk(folder, onerror=on_error):
        base = Path(root)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        entries.extend(base / name for name in files if not name.startswith("."))
        # Symlinks to folders are not followed (no loops, nothing outside the folder): reported.
        entries.extend(base / d for d in dirs if (base / d).is_symlink())
    return sorted(entries + unlistable)


def check_landing_file(path: Path, folder: Path | None = None) -> None:
    """Raise IngestFileError when ``path`` is not a regular file the loader may open and read.

    Named pipes, sockets and devices are refused without being opened (opening a pipe would wait for
    a writer). A symlink found in a landing ``folder`` must lead to a regular file inside it.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise IngestFileError("not found (a broken symlink, or removed while ingesting)") from None
    except OSError as exc:
        raise IngestFileError(f"cannot read it: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        if path.is_symlink():
            raise IngestFileError(
                "a symlink to a folder: not followed (name that folder on the command line)"
            )
        raise IngestFileError("a folder that cannot be listed (permission denied?): expected readable files")
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a named pipe (FIFO)"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a device"
        )
        raise IngestFileError(f"{kind}, not a regular file: refused without reading it")
    if folder is not None and path.is_symlink():
        target, root = _identity(path), _identity(folder)
        if not target.is_relative_to(root):
            raise IngestFileError(
                "a symlink to a file outside the landing folder: refused without reading it "
                "(copy the file into the folder, or name it on the command line)"
            )


def check_file_type(path: Path) -> str:
    """The format of ``path`` from its extension, checked against its first bytes; else IngestFileError."""
    suffix = path.suffix.lower()
    if suffix in COMPRESSED_SUFFIXES:
        raise IngestFileError(
            f"compressed files ({suffix}) are not read: decompress it into the landing folder "
            f"(expected {', '.join(FORMATS)})"
        )
    file_format = FORMATS.get(suffix)
    if file_format is None:
        raise IngestFileError(
            f"unknown file type {path.suffix or '(no extension)'!r}: expected {', '.join(FORMATS)}"
        )
    head = read_head(path)
    for magic, what in _MAGIC.items():
        if head.startswith(magic) and not (file_format == "parquet" and magic == b"PAR1"):
            raise IngestFileError(
                f"{what}, not {file_format.upper()} as its name {path.suffix!r} says: rename or convert it"
            )
    return file_format


def read_head(path: Path, size: int = 8) -> bytes:
    """The first ``size`` bytes of a file (IngestFileError if it cannot be read)."""
    try:
        with path.open("rb") as f:
            return f.read(size)
    except OSError as exc:
        raise IngestFileError(f"cannot read it: {exc.strerror or exc}") from None


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
