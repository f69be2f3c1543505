"""Validated ingestion: landing files (JSONL, CSV, Parquet) → ``raw.events`` / ``raw.conversions`` /
``raw.ad_spend``, bad rows → ``raw.rejected_rows``, one ``raw.load_log`` row per file.

Guarantees (what ``convopt ingest`` promises):

* Nothing is silently dropped: for every loaded file, rows loaded + rows rejected = rows read.
  Blank lines of a JSONL file are not rows (line numbers still count them).
* A file is loaded once: its SHA-256 content hash is looked up in ``raw.load_log`` (status
  ``loaded``); a file with the same content, under any name, is skipped, so reruns are safe.
* A file loads atomically: its raw rows, its rejected rows and its ``load_log`` row are written in
  one DuckDB transaction; an error or crash mid-file leaves nothing of it behind. Big files are
  read, validated and inserted in chunks of ``CHUNK_ROWS`` rows inside that one transaction, and
  DuckDB keeps within ``$CONVOPT_DUCKDB_MEMORY_LIMIT`` (default 4GB; what does not fit goes to
  disk), so memory stays bounded whatever the file size. A limit too small for DuckDB to work in
  fails the file (rolled back) or, outside a file's transaction, stops the ingest with an error.
* A file that cannot be read (not a regular file: a named pipe, socket or device is refused
  without being opened; a symlink in a landing folder that leads outside it; a file or subfolder
  this user may not read; a compressed file; an unknown extension, or content of another format
  than the name says; unknown stream, invalid UTF-8, a JSONL line that is not a JSON object,
  truncated Parquet, missing required CSV/Parquet columns, a Parquet column of an unusable type)
  is *failed*: reported with where and what was expected, recorded in ``load_log`` with status
  ``failed`` and a one-line error (a rerun retries it), and the other files still load. Every
  entry of a landing folder except hidden ones is looked at, so nothing is skipped silently.

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

The work is split by step: :mod:`~pipelines.ingest.discovery` (files, streams, hashes),
:mod:`~pipelines.ingest.readers` (JSONL, CSV, Parquet), :mod:`~pipelines.ingest.typed` (typed values
and problem codes), :mod:`~pipelines.ingest.validation` (rejected rows and their reasons) and
:mod:`~pipelines.ingest.loading` (the transaction per file, and many files).
"""

from pipelines.ingest.discovery import discover_files, file_sha256, stream_of
from pipelines.ingest.errors import IngestFileError, IngestUsageError
from pipelines.ingest.loading import FileResult, IngestReport, ingest_file, ingest_paths

__all__ = [
    "FileResult",
    "IngestFileError",
    "IngestReport",
    "IngestUsageError",
    "discover_files",
    "file_sha256",
    "ingest_file",
    "ingest_paths",
    "stream_of",
]
