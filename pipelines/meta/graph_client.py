"""The Graph API client of the Conversions API: one request per call, its outcome classified, and retry backoff.

``classify_response`` turns an HTTP response into an ``Outcome``: 429, 5xx, Graph codes 1, 2, 4, 17, 32, 613,
``is_transient`` errors and connection errors are transient (retried with ``RetryPolicy``'s exponential
backoff and jitter, ``Retry-After`` respected up to the cap); a read timeout or a connection dropped after
the request was written is *unknown* (Meta may have processed it); token errors (401, codes 102/190) and
permission or unknown-pixel errors (403, code 10, 200-299, 803, 100/33) are told apart from other 4xx
errors, which concern the events themselves.

The access token goes only into the request body sent to Meta: never into logs, reprs or exception
messages (``GraphClient.redact``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from pipelines.meta.results import ExportUsageError

DEFAULT_GRAPH_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v24.0"

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=5.0)
THROTTLING_CODES = frozenset({4, 17, 32, 613})
TRANSIENT_CODES = frozenset({1, 2}) | THROTTLING_CODES
TOKEN_ERROR_CODES = frozenset({102, 190})
PIXEL_ERROR_CODES = frozenset({10, 803, *range(200, 300)})


class Outcome(StrEnum):
    """How one HTTP request to the Graph API ended."""

    SENT = "sent"  # 2xx with events_received
    INVALID = "invalid"  # 4xx about the events: split the batch, no retry
    TRANSIENT = "transient"  # not processed (429, 5xx, throttling, connect error): retry
    UNKNOWN = "unknown"  # may or may not have been processed (timeout, dropped connection): retry
    REJECTED_PIXEL = "rejected_pixel"  # permission / unknown pixel: stop this pixel
    REJECTED_TOKEN = "rejected_token"  # bad or expired token: stop the run


@dataclass(frozen=True)
class GraphResponse:
    """The outcome of one ``POST /{version}/{pixel_id}/events``, with what Meta said."""

    outcome: Outcome
    http_status: int | None = None
    events_received: int | None = None
    fbtrace_id: str | None = None
    error_type: str | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    error_message: str | None = None
    retry_after_seconds: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and "equal jitter" (half fixed, half random)."""

    max_attempts: int = 5
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0

    def delay(self, retry_no: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry_no`` (1 = the first retry)."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (retry_no - 1))
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay_seconds))
        return wait


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify_response(status: int, content: bytes, retry_after: str | None = None) -> GraphResponse:
    """Turn a Graph API HTTP response into an Outcome plus Meta's fields (success body or error envelope)."""
    try:
        body = json.loads(content) if content else None
    except ValueError:
        body = None
    retry_after_seconds = None
    if retry_after:
        try:
            retry_after_seconds = max(0.0, float(retry_after))
        except ValueError:
            retry_after_seconds = None
    if 200 <= status < 300:
        if isinstance(body, dict) and isinstance(body.get("events_received"), int):
            messages = body.get("messages") or []
            return GraphResponse(
                Outcome.SENT,
                status,
                events_received=body["events_received"],
                fbtrace_id=body.get("fbtrace_id"),
                error_message=json.dumps(messages, ensure_ascii=False) if messages else None,
            )
        # A 2xx that is not Meta's success body: we cannot tell whether the events were processed.
        return GraphResponse(Outcome.UNKNOWN, status, error_message="2xx response without events_received")
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code, subcode = _int_or_none(error.get("code")), _int_or_none(error.get("error_subcode"))
    fields = {
        "http_status": status,
        "fbtrace_id": error.get("fbtrace_id"),
        "error_type": error.get("type"),
        "error_code": code,
        "error_subcode": subcode,
        "error_message": error.get("message") or f"HTTP {status} without a Graph error body",
        "retry_after_seconds": retry_after_seconds,
    }
    if status == 429 or status >= 500 or code in TRANSIENT_CODES or error.get("is_transient") is True:
        outcome = Outcome.TRANSIENT
    elif status == 401 or code in TOKEN_ERROR_CODES:
        outcome = Outcome.REJECTED_TOKEN
    elif status == 403 or code in PIXEL_ERROR_CODES or (code == 100 and subcode == 33):
        outcome = Outcome.REJECTED_PIXEL
    elif 400 <= status < 500:
        outcome = Outcome.INVALID
    else:  # 1xx/3xx: not the Graph API we expect (wrong base URL, a proxy); nothing was processed
        outcome = Outcome.REJECTED_PIXEL
    return GraphResponse(outcome, **fields)


class GraphClient:
    """A small Conversions API client on httpx: one ``post_events`` call per request body.

    The token is held privately and added to the body at send time only; ``transport`` lets tests
    route requests to a fake server or an ``httpx.MockTransport``.
    """

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str = DEFAULT_GRAPH_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ExportUsageError(f"graph base URL must be http(s)://host[:port], not {base_url!r}")
        if not api_version or "/" in api_version:
            raise ExportUsageError(f"api version must look like v24.0, not {api_version!r}")
        self.base_url = str(url).rstrip("/")
        self.api_version = api_version
        self._token = access_token
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": "convopt-export-meta"},
        )

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r}, api_version={self.api_version!r})"

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def redact(self, text: str) -> str:
        """``text`` with the access token (if it appears at all) replaced."""
        return text.replace(self._token, "[redacted]") if self._token else text

    def post_events(self, pixel_id: str, body: bytes) -> GraphResponse:
        """Send one request body (``build_request_body``) to ``/{version}/{pixel_id}/events``."""
        content = body[:-1] + b',"access_token":' + json.dumps(self._token).encode() + b"}"
        try:
            response = self._http.post(
                f"/{self.api_version}/{pixel_id}/events",
                content=content,
                headers={"Content-Type": "application/json"},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # The request never left this machine: safe to retry, nothing can have been counted.
            return GraphResponse(
                Outcome.TRANSIENT, error_type=type(exc).__name__, error_message=self.redact(str(exc))
            )
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise ExportUsageError(f"cannot send to {self.base_url}: {self.redact(str(exc))}") from None
        except httpx.TransportError as exc:
            # Written (at least partly) but no response: Meta may or may not have processed it.
            return GraphResponse(
                Outcome.UNKNOWN, error_type=type(exc).__name__, error_message=self.redact(str(exc)) or None
            )
        result = classify_response(
            response.status_code, response.content, response.headers.get("retry-after")
        )
        if result.error_message and self._token in result.error_message:
            result = GraphResponse(**{**result.__dict__, "error_message": self.redact(result.error_message)})
        return result
