"""What an export run hands back to its caller: the summary of what it did, or a usage error."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


class ExportUsageError(ValueError):
    """A problem the user fixes (missing token, bad option, missing or inconsistent input table)."""


@dataclass
class ExportSummary:
    """What one run did. Counts are conversions (events), not log rows."""

    run_id: str
    dry_run: bool
    as_of: dt.datetime | None = None
    test_event_code: str | None = None
    sent: int = 0  # delivered in this run (dry run: would be sent)
    failed: int = 0  # rejected for good (Meta validation error or not sendable as it is)
    failed_retryable: int = 0  # not delivered for a transient reason; the next run sends them again
    unknown: int = 0  # last request's outcome unknown; the next run sends them again
    unknown_then_resent: int = 0  # sent in this run after an earlier attempt whose outcome was unknown
    # The request a killed run left in flight: its events, and how many of them this run resent first,
    # as their own batch with the same event_ids (inside the resend window).
    in_flight_recovered: int = 0
    in_flight_resent: int = 0
    in_flight_batch: str | None = None
    # Events whose earliest unknown request is older than the resend window: not resent (recorded failed).
    unknown_too_old: int = 0
    expired: int = 0
    skipped: int = 0
    not_attempted: int = 0  # left out because the token or the pixel was rejected
    # Identity fields left out of the sent events because their values could not be normalized
    # (meta_capi_events.dropped_user_data_fields summed over the events sent; dry run: would send).
    dropped_user_data_fields: int = 0
    requests: int = 0  # HTTP requests made (dry run: request bodies written)
    pixels: int = 0
    not_found: list[str] = field(default_factory=list)  # --conversion-id values absent from the mart
    already_delivered: list[str] = field(default_factory=list)  # --conversion-id values sent before
    failure_reasons: Counter[str] = field(default_factory=Counter)
    aborted: str | None = None
    dry_run_files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything ready was delivered (or, in a dry run, would be sent)."""
        pending = (
            self.failed + self.failed_retryable + self.unknown + self.not_attempted + len(self.not_found)
        )
        return pending == 0 and self.aborted is None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1
