"""Terminal rendering for the convopt commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pipelines.report import ReportResult


# --- report ---


def print_report(result: ReportResult, console: Console) -> None:
    """What `convopt report` wrote and where to look, for a person."""
    table = Table(title=f"report {result.folder}", title_justify="left")
    for name, justify in (("dataset", "left"), ("rows", "right"), ("files", "right"), ("columns", "right")):
        table.add_column(name, justify=justify)
    for d in result.datasets:
        table.add_row(d.name, f"{d.rows:,}", str(len(d.files)), str(len(d.columns)))
    console.print(table)
    build = result.build or {}
    console.print(
        f"range {result.range.since} to {result.range.end} ({result.range.period}); "
        f"dbt build {build.get('invocation_id', 'unknown')} finished {build.get('finished_at', '?')}; "
        + ("replaced the earlier report" if result.replaced else "new report")
    )
    for path in result.charts:
        console.print(f"chart {path}")
    if result.charts:
        console.print(f"open {result.folder / 'index.html'}")
