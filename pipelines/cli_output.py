"""Terminal rendering for the convopt commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from pipelines.contract import STREAMS

if TYPE_CHECKING:
    from pipelines.generate.config import GeneratorConfig
    from pipelines.generate.writing import WrittenFile

# --- generate ---


def print_generate_summary(
    console: Console,
    out_dir: Path,
    written: list[WrittenFile],
    config: GeneratorConfig,
    persons: int,
    elapsed: float,
) -> None:
    """The files ``convopt generate`` wrote (rows, bad rows, size), the run's throughput, and stray files.

    A note names other stream files already in ``out_dir``, since ingest would load them too.
    """
    table = Table(title=f"convopt generate → {out_dir}", title_justify="left")
    table.add_column("file")
    table.add_column("stream")
    table.add_column("rows", justify="right")
    table.add_column("bad rows", justify="right")
    table.add_column("size", justify="right")
    for item in written:
        table.add_row(
            item.path.name, item.stream, f"{item.rows:,}", f"{item.bad_rows:,}", _human_size(item.bytes)
        )
    rows = sum(item.rows for item in written)
    table.add_section()
    table.add_row(
        "total",
        "",
        f"{rows:,}",
        f"{sum(i.bad_rows for i in written):,}",
        _human_size(sum(i.bytes for i in written)),
    )
    console.print(table)
    console.print(
        f"{persons:,} persons, {config.days} days from {config.start.isoformat()}, seed {config.seed}, "
        f"format {config.fmt}: {rows:,} rows in {elapsed:.1f} s ({rows / max(elapsed, 1e-9):,.0f} rows/s)"
    )
    mine = {item.path.name for item in written}
    stale = sorted(
        path.name
        for path in out_dir.iterdir()
        if path.is_file() and path.name not in mine and path.name.startswith(STREAMS)
    )
    if stale:
        console.print(
            f"[yellow]note:[/yellow] {out_dir} also holds {len(stale)} other stream file(s) "
            f"({', '.join(stale[:3])}{', …' if len(stale) > 3 else ''}); ingest would load them too"
        )


def _human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size} B"
