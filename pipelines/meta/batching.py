"""Request bodies and batching: how the events to send are cut into requests within Meta's bounds.

A request carries at most ``MAX_EVENTS_PER_REQUEST`` events (Meta's limit for ``data``) and at most
``max_request_bytes`` of body (default ``MAX_REQUEST_BYTES``, our own bound: Meta documents only the
1000-event limit, and smaller bodies keep each request well inside the read timeout). The token is not part
of the bodies built here; ``TOKEN_RESERVE_BYTES`` keeps room for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

MAX_EVENTS_PER_REQUEST = 1000  # Meta's documented limit for `data`
MAX_REQUEST_BYTES = 2_000_000  # our bound on one request body, access_token included
TOKEN_RESERVE_BYTES = 1024  # room kept in every body for `,"access_token":"…"`


def build_request_body(payloads: Sequence[bytes], test_event_code: str | None = None) -> bytes:
    """The request body without the token: ``{"data":[…payloads…]}`` plus ``test_event_code`` if any.

    Payloads are inserted byte for byte, so the dry-run files show exactly what is sent.
    """
    body = b'{"data":[' + b",".join(payloads) + b"]"
    if test_event_code:
        body += b',"test_event_code":' + json.dumps(test_event_code).encode()
    return body + b"}"


def body_overhead_bytes(test_event_code: str | None) -> int:
    """Bytes of a request body that are not event payloads (envelope, test code, token reserve)."""
    return len(build_request_body([], test_event_code)) + TOKEN_RESERVE_BYTES


def plan_batches(
    payload_bytes: Sequence[int], *, batch_size: int, max_request_bytes: int, overhead: int
) -> list[range]:
    """Greedy, order-keeping split into consecutive batches within the event-count and byte bounds.

    Each event costs its payload length plus one separator byte; a single event that cannot fit even alone
    must be rejected by the caller before planning.
    """
    batches: list[range] = []
    start, used = 0, overhead
    for i, size in enumerate(payload_bytes):
        cost = size + 1
        if i > start and (i - start >= batch_size or used + cost > max_request_bytes):
            batches.append(range(start, i))
            start, used = i, overhead
        used += cost
    if start < len(payload_bytes):
        batches.append(range(start, len(payload_bytes)))
    return batches


def plan_requests(
    data: dict[str, list[Any]], send_idx: list[int], *, batch_size: int, max_request_bytes: int, overhead: int
) -> list[tuple[str, list[int]]]:
    """(pixel_id, row indices) per request, in order: rows are sorted by pixel, so each pixel is one run."""
    plan: list[tuple[str, list[int]]] = []
    start = 0
    while start < len(send_idx):
        pixel = data["pixel_id"][send_idx[start]]
        end = start
        while end < len(send_idx) and data["pixel_id"][send_idx[end]] == pixel:
            end += 1
        group = send_idx[start:end]
        sizes = [data["payload_size"][i] for i in group]
        for r in plan_batches(
            sizes, batch_size=batch_size, max_request_bytes=max_request_bytes, overhead=overhead
        ):
            plan.append((pixel, group[r.start : r.stop]))
        start = end
    return plan
