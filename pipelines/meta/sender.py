"""Sending one run's planned requests to the Graph API, and logging every outcome before the next request.

Every request outcome is appended to the delivery log in its own transaction, with the in-flight journal
written before the request and removed after it is logged, so a crash or kill between requests loses
nothing and duplicates nothing. Transient and unknown outcomes are retried with the same body up to
``RetryPolicy.max_attempts`` requests. Other 4xx errors are not retried: Meta rejects a whole batch for one
invalid event, so the batch is split in halves until the invalid events are isolated and recorded
``failed`` with Meta's message, code and subcode; every valid event is still delivered. A rejected token
stops the run; a rejected pixel stops that pixel. Their events stay retryable.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import duckdb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.meta.batching import build_request_body
from pipelines.meta.delivery_log import append_log, write_inflight_journal
from pipelines.meta.graph_client import GraphClient, GraphResponse, Outcome, RetryPolicy
from pipelines.meta.results import ExportSummary

log = logging.getLogger(__name__)


class _Abort(Exception):
    """Stop sending to one pixel (``whole_run`` False) or altogether."""

    def __init__(self, message: str, *, whole_run: bool) -> None:
        super().__init__(message)
        self.whole_run = whole_run


class _Sender:
    """Sends the planned batches of one run and appends every request outcome to the log."""

    def __init__(
        self,
        *,
        con: duckdb.DuckDBPyConnection,
        client: GraphClient,
        rows: dict[str, list[Any]],
        summary: ExportSummary,
        journal: Path,
        retry: RetryPolicy,
        rng: random.Random,
        sleep: Callable[[float], None],
    ) -> None:
        self.con, self.client, self.summary, self.journal = con, client, summary, journal
        self.retry, self.rng, self.sleep = retry, rng, sleep
        self.conversion_id: list[str] = rows["conversion_id"]
        self.event_id: list[str] = rows["event_id"]
        self.payload: list[bytes] = rows["payload_bytes"]
        self.attempts: list[int] = rows["last_attempt"]  # updated as requests are made
        self.had_unknown: list[bool] = rows["had_unknown"]
        self.dropped: list[int] = rows["dropped_user_data_fields"]
        self.settled: set[int] = set()  # rows whose outcome in this run is counted in the summary

    def deliver(self, pixel_id: str, indices: Sequence[int], batch_id: str) -> None:
        """Send one batch; if Meta rejects it for an invalid event, split it until every valid event is in."""
        response = self._send_with_retries(pixel_id, indices, batch_id)
        if response.outcome is Outcome.INVALID and len(indices) > 1:
            middle = len(indices) // 2
            self.deliver(pixel_id, indices[:middle], f"{batch_id}.1")
            self.deliver(pixel_id, indices[middle:], f"{batch_id}.2")

    def _send_with_retries(self, pixel_id: str, indices: Sequence[int], batch_id: str) -> GraphResponse:
        s = self.summary
        body = build_request_body([self.payload[i] for i in indices], s.test_event_code)
        for request_no in range(1, self.retry.max_attempts + 1):
            for i in indices:
                self.attempts[i] += 1
            requested_at = dt.datetime.now(dt.UTC)
            write_inflight_journal(
                self.journal,
                run_id=s.run_id,
                pixel_id=pixel_id,
                batch_id=batch_id,
                requested_at=requested_at,
                test_event_code=s.test_event_code,
                as_of=s.as_of,
                conversion_ids=[self.conversion_id[i] for i in indices],
                event_ids=[self.event_id[i] for i in indices],
                attempts=[self.attempts[i] for i in indices],
            )
            response = self.client.post_events(pixel_id, body)
            s.requests += 1
            status, retryable = self._row_status(response, len(indices))
            self._record(pixel_id, indices, batch_id, requested_at, response, status, retryable)
            self.journal.unlink(missing_ok=True)
            log.info(
                "pixel %s batch %s (%d events, request %d): %s, HTTP %s",
                pixel_id,
                batch_id,
                len(indices),
                request_no,
                response.outcome.value,
                response.http_status,
            )
            if response.outcome is Outcome.UNKNOWN:
                for i in indices:
                    self.had_unknown[i] = True
            if (
                response.outcome in (Outcome.TRANSIENT, Outcome.UNKNOWN)
                and request_no < self.retry.max_attempts
            ):
                self.sleep(self.retry.delay(request_no, self.rng, response.retry_after_seconds))
                continue
            break
        self._count_final(response, indices)
        if response.outcome is Outcome.REJECTED_TOKEN:
            raise _Abort(f"Meta rejected the access token: {self._reason(response)}", whole_run=True)
        if response.outcome is Outcome.REJECTED_PIXEL:
            raise _Abort(
                f"Meta rejected requests for pixel {pixel_id}: {self._reason(response)}", whole_run=False
            )
        return response

    @staticmethod
    def _row_status(response: GraphResponse, n_events: int) -> tuple[str, bool | None]:
        if response.outcome is Outcome.SENT:
            return "sent", None
        if response.outcome is Outcome.UNKNOWN:
            return "unknown", True
        if response.outcome is Outcome.INVALID and n_events == 1:
            return "failed", False
        return "failed", True

    @staticmethod
    def _reason(response: GraphResponse) -> str:
        code = (
            f"code {response.error_code}"
            if response.error_code is not None
            else f"HTTP {response.http_status}"
        )
        if response.error_subcode is not None:
            code += f"/{response.error_subcode}"
        return f"{code}: {response.error_message}"

    def _count_final(self, response: GraphResponse, indices: Sequence[int]) -> None:
        s, n = self.summary, len(indices)
        if response.outcome is not Outcome.INVALID or n == 1:
            self.settled.update(indices)
        if response.outcome is Outcome.SENT:
            if response.events_received != n:
                log.warning("Meta reported events_received=%s for %d events", response.events_received, n)
            s.sent += n
            s.unknown_then_resent += sum(self.had_unknown[i] for i in indices)
            s.dropped_user_data_fields += sum(self.dropped[i] for i in indices)
        elif response.outcome is Outcome.INVALID:
            if n == 1:
                s.failed += 1
                s.failure_reasons[self._reason(response)] += 1
        elif response.outcome is Outcome.UNKNOWN:
            s.unknown += n
            s.failure_reasons[f"outcome unknown after {self.retry.max_attempts} requests"] += n
        else:
            s.failed_retryable += n
            s.failure_reasons[f"{self._reason(response)} (will be retried)"] += n

    def _record(
        self,
        pixel_id: str,
        indices: Sequence[int],
        batch_id: str,
        requested_at: dt.datetime,
        response: GraphResponse,
        status: str,
        retryable: bool | None,
    ) -> None:
        n, s = len(indices), self.summary
        message = response.error_message
        if response.outcome is Outcome.INVALID and n > 1:
            message = f"batch of {n} rejected, splitting it to isolate the invalid events: {message}"
        append_log(
            self.con,
            {
                "conversion_id": [self.conversion_id[i] for i in indices],
                "event_id": [self.event_id[i] for i in indices],
                "pixel_id": [pixel_id] * n,
                "batch_id": [batch_id] * n,
                "attempt": [self.attempts[i] for i in indices],
                "status": [status] * n,
                "events_received": [response.events_received] * n,
                "fbtrace_id": [response.fbtrace_id] * n,
                "error_type": [response.error_type] * n,
                "error_code": [response.error_code] * n,
                "error_subcode": [response.error_subcode] * n,
                "error_message": [message] * n,
                "http_status": [response.http_status] * n,
                "test_event_code": [s.test_event_code] * n,
                "requested_at": [requested_at] * n,
                "recorded_at": [dt.datetime.now(dt.UTC)] * n,
                "run_id": [s.run_id] * n,
                "is_retryable": [retryable] * n,
                "as_of": [s.as_of] * n,
            },
        )


def send_all(
    con: duckdb.DuckDBPyConnection,
    client: GraphClient,
    data: dict[str, list[Any]],
    plan: list[tuple[str, list[int]]],
    summary: ExportSummary,
    journal: Path,
    retry: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], None],
    progress: bool,
    console: Console | None,
) -> None:
    """Deliver the planned requests in order; a rejected token stops the run, a rejected pixel its requests."""
    sender = _Sender(
        con=con, client=client, rows=data, summary=summary, journal=journal, retry=retry, rng=rng, sleep=sleep
    )
    total = sum(len(idx) for _, idx in plan)
    bar = Progress(
        TextColumn("[bold]export-meta[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        disable=not progress,
    )
    skip_pixels: set[str] = set()
    with bar:
        task = bar.add_task("events", total=total)
        per_pixel_no: Counter[str] = Counter()
        for n, (pixel, idx) in enumerate(plan):
            if pixel in skip_pixels:
                summary.not_attempted += len(idx)
                bar.advance(task, len(idx))
                continue
            per_pixel_no[pixel] += 1
            try:
                sender.deliver(pixel, idx, f"{summary.run_id}/{pixel}/{per_pixel_no[pixel]}")
            except _Abort as stop:
                summary.aborted = str(stop)
                summary.not_attempted += sum(i not in sender.settled for i in idx)
                log.error("%s", stop)
                if stop.whole_run:
                    summary.not_attempted += sum(len(rest) for _, rest in plan[n + 1 :])
                    break
                skip_pixels.add(pixel)
            bar.advance(task, len(idx))
