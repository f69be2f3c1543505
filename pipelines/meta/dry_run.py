"""Dry run: the exact request bodies and events a run would send, written to files instead of sent.

``requests.jsonl`` has one request body per line (without the access token), ``events.parquet`` one row per
event with its batch number. Nothing is recorded in the warehouse.

The files carry what Meta's API wants in clear (client IP addresses, user agents, fbp, fbc), so they go to a
folder of their own, never into the shareable reports: ``$CONVOPT_META_DRY_RUN``, else ``meta_dry_run/``
beside the warehouse file (where the raw data already is).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.meta.batching import build_request_body
from pipelines.meta.results import ExportSummary

DEFAULT_DRY_RUN_DIR = Path("meta_dry_run")  # beside the warehouse file, unless $CONVOPT_META_DRY_RUN says
DRY_RUN_DIR_ENV = "CONVOPT_META_DRY_RUN"
DRY_RUN_REQUESTS_FILE = "requests.jsonl"
DRY_RUN_EVENTS_FILE = "events.parquet"
DRY_RUN_EVENTS_SCHEMA = pa.schema(
    [
        ("batch_no", pa.int32()),
        ("pixel_id", pa.string()),
        ("conversion_id", pa.string()),
        ("event_id", pa.string()),
        ("payload", pa.string()),
    ]
)


def dry_run_dir(warehouse: Path, explicit: Path | None = None) -> Path:
    """Where a dry run writes: ``explicit``, else ``$CONVOPT_META_DRY_RUN``, else ``meta_dry_run/`` beside
    the warehouse file."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(DRY_RUN_DIR_ENV):
        return Path(os.environ[DRY_RUN_DIR_ENV])
    return Path(warehouse).parent / DEFAULT_DRY_RUN_DIR


def write_dry_run(
    out: Path,
    rows: pa.Table,
    data: dict[str, list[Any]],
    plan: list[tuple[str, list[int]]],
    summary: ExportSummary,
) -> None:
    """The request bodies and events the plan would send, built from the Arrow rows (same bytes as sent)."""
    order = [i for _, idx in plan for i in idx]
    columns = rows.select(["pixel_id", "conversion_id", "event_id", "payload"])
    if order == list(range(len(order))):
        # The usual plan: the selection puts the rows to send first, in sending order (no copy).
        columns = columns.slice(0, len(order))
    elif all(a < b for a, b in itertools.pairwise(order)):
        # The rows to send in the selection's order, others between them: one filtering pass (a take of
        # long strings is several times slower).
        mask = [False] * rows.num_rows
        for i in order:
            mask[i] = True
        columns = columns.filter(pa.array(mask, type=pa.bool_()))
    else:
        columns = columns.take(pa.array(order, type=pa.int64()))
    events = pa.table(
        {
            "batch_no": pa.array(
                [batch_no for batch_no, (_, idx) in enumerate(plan, start=1) for _ in idx], type=pa.int32()
            ),
            **{name: columns.column(name).cast(pa.string()) for name in columns.column_names},
        }
    )
    # Each body is build_request_body(payloads): its envelope around the payloads joined by commas,
    # here joined by Arrow, chunk by chunk (combining the chunks first would copy every payload once more).
    envelope = build_request_body([], summary.test_event_code)
    prefix, suffix = envelope[: len(b'{"data":[')], envelope[len(b'{"data":[') :]
    ends = list(itertools.accumulate(len(idx) for _, idx in plan))
    # Written piece by piece from Arrow's buffers: a body is never copied into a Python bytes object.
    bodies = _request_bodies(events.column("payload"), ends, prefix, suffix + b"\n")
    summary.sent = len(events)
    summary.dropped_user_data_fields = sum(
        data["dropped_user_data_fields"][i] for _, idx in plan for i in idx
    )
    summary.requests = len(plan)
    summary.dry_run_files = _write_files(out, bodies, events)


def _request_bodies(
    payloads: pa.ChunkedArray, ends: list[int], prefix: bytes, suffix: bytes
) -> Iterator[list[bytes | pa.Buffer]]:
    """Each request's body as its pieces: ``prefix``, its payloads joined by commas, ``suffix``. Request i
    has the payloads up to row ``ends[i]`` (exclusive) from the previous request's end; a request whose
    payloads span two chunks of ``payloads`` is joined in each chunk and the parts by a comma."""
    comma = pa.scalar(",", pa.large_string())
    pieces: list[bytes | pa.Buffer] = [prefix]
    request, chunk_start = 0, 0
    for chunk in payloads.chunks:
        chunk_end = chunk_start + len(chunk)
        if chunk_end == chunk_start:
            continue
        # Boundaries of the requests (or parts of them) inside this chunk, as offsets into it.
        first_request = request
        local = [0]
        while request < len(ends) and ends[request] <= chunk_end:
            local.append(ends[request] - chunk_start)
            request += 1
        if local[-1] != chunk_end - chunk_start:
            local.append(chunk_end - chunk_start)  # the next request continues in the next chunk
        joined = pc.binary_join(
            pa.LargeListArray.from_arrays(pa.array(local, type=pa.int64()), chunk.cast(pa.large_string())),
            comma,
        )
        for n, part in enumerate(joined):
            if len(pieces) > 1:
                pieces.append(b",")
            pieces.append(part.as_buffer())
            if first_request + n < request:  # this request ends in this chunk
                pieces.append(suffix)
                yield pieces
                pieces = [prefix]
        chunk_start = chunk_end


def _write_files(out: Path, bodies: Iterable[Iterable[bytes | pa.Buffer]], events: pa.Table) -> list[Path]:
    """requests.jsonl (one body per line, each given as its pieces, newline included, no token) and
    events.parquet (one row per event)."""
    out.mkdir(parents=True, exist_ok=True)
    requests_path, events_path = out / DRY_RUN_REQUESTS_FILE, out / DRY_RUN_EVENTS_FILE
    tmp = requests_path.with_name(requests_path.name + ".tmp")
    with tmp.open("wb") as fh:
        for pieces in bodies:
            for piece in pieces:
                fh.write(piece)
    os.replace(tmp, requests_path)
    tmp = events_path.with_name(events_path.name + ".tmp")
    pq.write_table(events.cast(DRY_RUN_EVENTS_SCHEMA), tmp)
    os.replace(tmp, events_path)
    return [requests_path, events_path]
