"""Terminal rendering for the convopt commands."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from pipelines.ingest import IngestReport

# --- ingest ---


def print_ingest_report(report: IngestReport, console: Console) -> None:
    """An ingest's summary table, one line per failed file, and how to look at rejected rows."""
    # File names relative to their common folder (named in the title) keep the table readable on
    # an 80-column terminal or a cron log.
    parents = [os.path.dirname(os.path.abspath(f.file_name)) for f in report.files]
    base = os.path.commonpath(parents) if parents else ""
    shown = {f.file_name: os.path.relpath(os.path.abspath(f.file_name), base) for f in report.files}
    table = Table(title=f"ingest {base}", title_justify="left")
    table.add_column(
        "file", overflow="fold", min_width=min(32, max((len(v) for v in shown.values()), default=4))
    )
    for name in ("stream", "status"):
        table.add_column(name, no_wrap=True)
    for name in ("read", "loaded", "rejected", "seconds", "rows/s"):
        table.add_column(name, justify="right", no_wrap=True)
    style = {"loaded": "green", "skipped": "dim", "failed": "red"}
    for f in report.files:
        rate = f"{f.rows_read / f.seconds:,.0f}" if f.status == "loaded" and f.seconds > 0 else ""
        table.add_row(
            Text(shown[f.file_name]),
            f.stream or "?",
            f"[{style[f.status]}]{f.status}[/]",
            f"{f.rows_read:,}",
            f"{f.rows_loaded:,}",
            f"[yellow]{f.rows_rejected:,}[/]" if f.rows_rejected else "0",
            f"{f.seconds:.2f}",
            rate,
        )
    console.print(table)
    skipped = [f for f in report.files if f.status == "skipped"]
    if skipped:
        console.print(
            f"[dim]{len(skipped)} file(s) skipped: same content already loaded (see raw.load_log)[/]"
        )
    for f in report.files:
        if f.status == "failed":
            console.print(Text("failed: ", style="red") + Text(f"{f.file_name}: {f.message}"), soft_wrap=True)
    with_rejects = [f for f in report.files if f.rows_rejected]
    if with_rejects:
        total = sum(f.rows_rejected for f in with_rejects)
        console.print(f"[yellow]{total:,} row(s) rejected[/] (not loaded; reason and original payload kept):")
        for f in with_rejects:
            hint = f"  select * from raw.rejected_rows where load_id = '{f.load_id}';  -- {f.file_name}"
            console.print(Text(hint), soft_wrap=True)
