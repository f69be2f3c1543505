"""Terminal rendering for the convopt commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pipelines.meta.results import ExportSummary


# --- meta export ---


def print_export_summary(summary: ExportSummary, console: Console) -> None:
    """The final table a person reads, plus the failure reasons and what to do next."""
    title = "Meta export (dry run: nothing sent)" if summary.dry_run else "Meta export"
    table = Table(title=f"{title} — run {summary.run_id}", show_header=False)
    rows = [
        ("would send" if summary.dry_run else "sent", summary.sent),
        ("failed (rejected by Meta or not sendable)", summary.failed),
        ("failed (transient, retried next run)", summary.failed_retryable),
        ("outcome unknown (resent next run)", summary.unknown),
        ("unknown, then resent", summary.unknown_then_resent),
        ("expired", summary.expired),
        ("skipped", summary.skipped),
        ("not attempted", summary.not_attempted),
        ("identity fields dropped (not normalizable, not sent)", summary.dropped_user_data_fields),
        ("requests" if not summary.dry_run else "request bodies", summary.requests),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    if summary.not_found:
        console.print(
            "[red]not in marts.meta_capi_events[/red] (not eligible, or the model is not built yet): "
            + ", ".join(summary.not_found)
        )
    if summary.already_delivered:
        console.print("already delivered, not sent again: " + ", ".join(summary.already_delivered))
    if summary.aborted:
        console.print(f"[red]stopped:[/red] {summary.aborted}")
    for reason, count in summary.failure_reasons.most_common(20):
        console.print(f"[yellow]{count} x[/yellow] {reason}")
    if summary.failed and not summary.dry_run:
        console.print("failed events are not resent automatically: fix them, then run with --retry-failed")
    for path in summary.dry_run_files:
        console.print(f"wrote {path}")
