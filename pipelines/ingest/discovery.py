"""Finding landing files: which files a path names, the stream of each, and its content hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from pipelines.contract import STREAMS
from pipelines.ingest.errors import IngestFileError, IngestUsageError

FORMATS: dict[str, str] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
HASH_CHUNK = 1 << 20


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
