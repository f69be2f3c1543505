"""Loading: one landing file read, validated and written to ``raw.*`` in one transaction (its raw
rows, rejected rows and ``raw.load_log`` row), and many files loaded into a warehouse."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.contract import STREAMS, columns
from pipelines.ingest.discovery import (
    FORMATS,
    check_file_type,
    check_landing_file,
    discover,
    file_sha256,
    stream_of,
)
from pipelines.ingest.errors import IngestFileError, IngestUsageError, first_line
from pipelines.ingest.frames import ROW, Source, execute_with, query_row, quoted
from pipelines.ingest.readers import READERS
from pipelines.ingest.typed import typed_frame
from pipelines.ingest.validation import failure_cases, rejections
from pipelines.warehouse import (
    MEMORY_LIMIT_ENV,
    WarehouseSettingError,
    apply_memory_settings,
    connect,
    ensure_raw_schema,
    memory_settings,
)


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
    """What an ingest did: one result per landing file, in load order."""

    files: list[FileResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no file failed (rejected rows are reported but are not failures)."""
        return all(f.status != "failed" for f in self.files)


# --------------------------------------------------------------------------------------------
# Writing: one transaction per file
# --------------------------------------------------------------------------------------------


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
    names = ", ".join(quoted(c.name) for c in columns(stream))
    rows = typed.select(ROW, *[c.name for c in columns(stream)])
    where = ""
    if len(rejected_idx):
        rows = rows.with_columns(
            _rejected=pl.int_range(0, pl.len(), dtype=pl.Int64).is_in(rejected_idx.implode())
        )
        where = "where not _rejected"
    result = execute_with(
        con,
        f"insert into raw.{stream} by name select {names}, $load_id as _load_id, $file as _source_file, "
        f"{ROW}, $loaded_at as _loaded_at from _frame {where}",
        rows,
        {"load_id": load_id, "file": file_name, "loaded_at": loaded_at},
    )
    return int(result[0][0]) if result else 0


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
    execute_with(
        con,
        "insert into raw.rejected_rows by name select $load_id as load_id, $file as file_name, "
        "$stream as stream, row_number, failing_fields, reason, payload, $at as rejected_at from _frame",
        rejected.drop("_idx"),
        {"load_id": load_id, "file": file_name, "stream": stream, "at": rejected_at},
    )


def _write_chunk(
    con: duckdb.DuckDBPyConnection,
    stream: str,
    chunk: Source,
    *,
    load_id: str,
    file_name: str,
    loaded_at: dt.datetime,
) -> tuple[int, int]:
    """Validate one chunk of a file and insert its rows and rejected rows: (loaded, rejected).

    Its own function so that the chunk's typed frame and rejections are freed when it returns.
    """
    typed = typed_frame(chunk.values, stream)
    cases = failure_cases(typed, stream)
    rejected = rejections(chunk, typed, cases, stream) if cases.height else None
    rejected_idx = rejected["_idx"] if rejected is not None else pl.Series([], dtype=pl.Int64)
    loaded = _insert_raw_rows(
        con, stream, typed, rejected_idx, load_id=load_id, file_name=file_name, loaded_at=loaded_at
    )
    if rejected is not None:
        _insert_rejected_rows(
            con, stream, rejected, load_id=load_id, file_name=file_name, rejected_at=loaded_at
        )
    if loaded + len(rejected_idx) != typed.height:  # pragma: no cover - would be a bug
        raise RuntimeError(f"{file_name}: loaded {loaded} + rejected {len(rejected_idx)} rows")
    return loaded, len(rejected_idx)


def _insert_load_log(con: duckdb.DuckDBPyConnection, **row: object) -> None:
    con.execute(
        "insert into raw.load_log (load_id, file_name, content_sha256, stream, file_format, rows_read, "
        "rows_loaded, rows_rejected, started_at, loaded_at, status, error) values ($load_id, $file_name, "
        "$content_sha256, $stream, $file_format, $rows_read, $rows_loaded, $rows_rejected, $started_at, "
        "$loaded_at, $status, $error)",
        row,
    )


def _already_loaded(
    con: duckdb.DuckDBPyConnection, sha256: str, empty_format: str | None = None
) -> tuple[str, str] | None:
    """The load of the same content, if any. An empty file matches only an empty file of its format:
    a 0-byte JSONL file holds no rows (loaded once), a 0-byte CSV or Parquet file is broken."""
    row = query_row(
        con,
        "select load_id, file_name from raw.load_log where content_sha256 = $sha and status = 'loaded' "
        "and ($format is null or file_format = $format) order by loaded_at limit 1",
        {"sha": sha256, "format": empty_format},
    )
    return (row[0], row[1]) if row else None


def _memory_hint(con: duckdb.DuckDBPyConnection, exc: duckdb.Error) -> str:
    """What to change when DuckDB ran out of memory (empty for other errors)."""
    if not isinstance(exc, duckdb.OutOfMemoryException):
        return ""
    limit = query_row(con, "select current_setting('memory_limit')")
    return f" (DuckDB's memory_limit is {limit[0] if limit else '?'}: raise {MEMORY_LIMIT_ENV})"


def _warehouse_file(path: Path, warehouse: Path) -> bool:
    """Whether ``path`` is the warehouse or one of its side files (WAL, run lock, journal) found
    in a scanned folder: those are never landing files."""
    return path.parent.resolve() == warehouse.parent.resolve() and path.name.startswith(warehouse.name)


def _size(path: Path) -> int:
    """A landing file's size for the progress bar (0 when it cannot be read or is not a file)."""
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# One microsecond: the resolution of DuckDB's timestamps, so the smallest step between two load times.
_TICK = dt.timedelta(microseconds=1)


def _next_load_time(con: duckdb.DuckDBPyConnection) -> dt.datetime:
    """The time of a new load: now, or one microsecond after the latest load logged when the clock has
    not moved past it (two loads in one microsecond, or the clock set back). Every load is therefore
    later than every load before it, which is what the incremental models rely on: a build reads the
    rows loaded strictly after the newest load its tables already reflect (`_loaded_at > watermark`),
    so it never reads the same load twice and never misses one. Called inside the load's transaction;
    loads into one warehouse file are serialized by DuckDB's write lock."""
    latest = query_row(con, "select max(loaded_at) from raw.load_log")
    now = _now()
    if latest is None or latest[0] is None:
        return now
    return max(now, latest[0].astimezone(dt.UTC) + _TICK)


# --------------------------------------------------------------------------------------------
# One file, many files
# --------------------------------------------------------------------------------------------


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    stream: str | None = None,
    on_phase: Callable[[str], None] | None = None,
    folder: Path | None = None,
) -> FileResult:
    """Validate and load one landing file in one transaction; never raises for a bad file.

    Returns a skipped result when a file with the same content was loaded before, and a failed
    one (also recorded in ``raw.load_log``, with a one-line reason) when the file cannot be read:
    not a regular file (a named pipe, socket or device is never opened), not readable, compressed,
    of an unknown type, or not the format its name says. ``folder`` is the landing folder the file
    was found in (a symlink there must stay inside it). Unexpected errors roll the file back and
    propagate.
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

    load_id = f"{started:%Y%m%dT%H%M%S}-{secrets.token_hex(7)}"
    stream_name: str | None = None
    log = {"load_id": load_id, "file_name": file_name, "content_sha256": "", "file_format": None}

    def failed(message: str, rows_read: int | None = None) -> FileResult:
        message = " ".join(message.split())  # one line, whatever the cause said
        _insert_load_log(
            con, **log, stream=stream_name, rows_read=rows_read, rows_loaded=0, rows_rejected=0,
            started_at=started, loaded_at=_now(), status="failed", error=message,
        )  # fmt: skip
        return result("failed", stream_name, rows_read or 0, message=message, load_id=load_id)

    # What is not a regular, readable file is failed before it is opened (a named pipe would block).
    phase("hashing")
    try:
        check_landing_file(path, folder)
        sha256 = file_sha256(path)
    except IngestFileError as exc:
        return failed(str(exc))
    except OSError as exc:
        return failed(f"cannot read it: {exc.strerror or first_line(exc)}")
    log["content_sha256"] = sha256
    # Same content loaded before: skipped. Failed loads never match, so a broken file is retried.
    empty_format = (FORMATS.get(path.suffix.lower()) or "?") if path.stat().st_size == 0 else None
    previous = _already_loaded(con, sha256, empty_format)
    if previous is not None:
        try:
            known_stream: str | None = stream_of(path, stream)
        except IngestFileError:
            known_stream = None
        message = f"already loaded as load_id {previous[0]} ({previous[1]})"
        return result("skipped", known_stream, message=message, load_id=previous[0])

    load_id = f"{started:%Y%m%dT%H%M%S}-{sha256[:10]}-{secrets.token_hex(2)}"
    log["load_id"] = load_id
    log["file_format"] = FORMATS.get(path.suffix.lower())
    try:
        stream_name = stream_of(path, stream)
        file_format = check_file_type(path)
    except IngestFileError as exc:
        return failed(str(exc))

    # Reading happens on its own cursor, so a failed read query never aborts the write transaction.
    reader = con.cursor()
    read = loaded = rejected_total = 0
    con.begin()
    try:
        loaded_at = _next_load_time(con)
        phase("reading")
        for chunk in READERS[file_format](reader, path, stream_name):
            phase(f"validating and writing ({read + chunk.values.height:,} rows)")
            chunk_loaded, chunk_rejected = _write_chunk(
                con, stream_name, chunk, load_id=load_id, file_name=file_name, loaded_at=loaded_at
            )
            read += chunk.values.height
            loaded, rejected_total = loaded + chunk_loaded, rejected_total + chunk_rejected
            del chunk  # let go of this chunk before the next one is read
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
        return failed(f"warehouse error: {first_line(exc)}{_memory_hint(con, exc)}", read)
    except OSError as exc:  # the file went away or became unreadable while it was read
        con.rollback()
        return failed(f"cannot read it: {exc.strerror or first_line(exc)}", read)
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

    DuckDB works within the memory budget of :func:`pipelines.warehouse.memory_settings`
    (``$CONVOPT_DUCKDB_MEMORY_LIMIT``, ``$CONVOPT_DUCKDB_TEMP_DIRECTORY``).

    Raises IngestUsageError for a path that does not exist or an unknown stream,
    WarehouseSettingError for a memory setting DuckDB rejects, and WarehouseLockedError when
    another process holds the warehouse; bad files are reported in the returned report
    (``report.ok`` is False when any file failed).
    """
    console = console or Console(stderr=True)
    if stream is not None and stream not in STREAMS:
        raise IngestUsageError(f"unknown stream {stream!r}: expected one of {', '.join(STREAMS)}")
    # Rows the API server acknowledged sit in open segments until sealed into landing files.
    from pipelines.api.landing import seal_open_segments

    for path in paths:
        if path.is_dir():
            seal_open_segments(path)
    found = [(p, folder) for p, folder in discover(paths) if not _warehouse_file(p, warehouse)]
    files = [p for p, _ in found]
    report = IngestReport()
    if not files:
        console.print(
            escape(f"no landing files (.jsonl, .ndjson, .csv, .parquet) in {', '.join(map(str, paths))}")
        )
        return report

    settings = memory_settings()
    con = connect(warehouse)
    try:
        # DuckDB keeps its buffers within the memory budget; a file's rows beyond it go to disk.
        apply_memory_settings(con, settings)
        con.execute("set preserve_insertion_order = false")  # rows carry their own row numbers
        ensure_raw_schema(con)
        sizes = [_size(p) for p in files]
        columns_ = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
        with Progress(*columns_, console=console, transient=True, disable=not progress) as bar:
            task = bar.add_task("ingest", total=sum(sizes))
            for number, ((path, folder), size) in enumerate(zip(found, sizes, strict=True), start=1):

                def on_phase(phase: str, path: Path = path, number: int = number) -> None:
                    bar.update(task, description=escape(f"[{number}/{len(files)}] {phase} {path.name}"))

                report.files.append(ingest_file(con, path, stream=stream, on_phase=on_phase, folder=folder))
                bar.advance(task, size)
    except duckdb.OutOfMemoryException as exc:  # outside a file's transaction: nothing half-written
        raise WarehouseSettingError(
            f"{MEMORY_LIMIT_ENV}={settings['memory_limit']!r} is too small for DuckDB to work in: "
            f"{first_line(exc)}"
        ) from exc
    finally:
        con.close()
    # The summary is drawn by the commands' rendering module, imported only when it is needed.
    from pipelines.cli_output import print_ingest_report

    print_ingest_report(report, console)
    return report
