"""Terminal rendering for the convopt commands."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pipelines.contract import STREAMS
from pipelines.rules import COLUMNS, OPTIONAL_COLUMNS

if TYPE_CHECKING:
    import polars as pl

    from pipelines.engines.load import LoadReport, TableCopy
    from pipelines.generate.config import GeneratorConfig
    from pipelines.generate.writing import WrittenFile
    from pipelines.ingest import IngestReport
    from pipelines.meta.results import ExportSummary
    from pipelines.report import ReportResult
    from pipelines.rules import Rule
    from pipelines.run import RunResult

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
            "[yellow]note:[/yellow] "
            + escape(
                f"{out_dir} also holds {len(stale)} other stream file(s) "
                f"({', '.join(stale[:3])}{', …' if len(stale) > 3 else ''}); ingest would load them too"
            )
        )


def _human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size} B"


# --- ingest ---


def print_ingest_report(report: IngestReport, console: Console) -> None:
    """An ingest's summary table, one line per failed file, and how to look at rejected rows."""
    # File names relative to their common folder (named in the title) keep the table readable on
    # an 80-column terminal or a cron log.
    parents = [os.path.dirname(os.path.abspath(f.file_name)) for f in report.files]
    base = os.path.commonpath(parents) if parents else ""
    shown = {f.file_name: os.path.relpath(os.path.abspath(f.file_name), base) for f in report.files}
    table = Table(title=escape(f"ingest {base}"), title_justify="left")
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


# --- load-target ---


def print_table_copy(copy: TableCopy, console: Console) -> None:
    """One line per table `convopt load-target` copied, as soon as it is done."""
    console.print(escape(copy.summary()))


def print_load_report(report: LoadReport, console: Console) -> None:
    """The closing line of `convopt load-target`: rows copied and where to."""
    console.print(f"[green]{escape(report.summary())}[/green]")


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
        ("in flight at a kill, resent first (same event_ids)", summary.in_flight_resent),
        ("unknown 47 h or more, not resent (--retry-failed)", summary.unknown_too_old),
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
            + escape(", ".join(summary.not_found))
        )
    if summary.already_delivered:
        console.print("already delivered, not sent again: " + escape(", ".join(summary.already_delivered)))
    if summary.in_flight_recovered:
        console.print(
            Text(
                f"recovered the request a killed run left in flight ({summary.in_flight_batch}, "
                f"{summary.in_flight_recovered} events, logged unknown); resent {summary.in_flight_resent} of "
                "them first with the same event_ids: Meta may have received them, and counts the same "
                "event_name and event_id within 48 hours once"
            )
        )
    if summary.aborted:
        console.print(Text("stopped: ", style="red") + Text(" ".join(summary.aborted.split())))
    for reason, count in summary.failure_reasons.most_common(20):
        console.print(Text(f"{count} x ", style="yellow") + Text(" ".join(reason.split())))
    if summary.failed and not summary.dry_run:
        console.print("failed events are not resent automatically: fix them, then run with --retry-failed")
    for path in summary.dry_run_files:
        console.print(Text(f"wrote {path}"))


# --- run ---


def print_run_summary(result: RunResult, console: Console) -> None:
    """One row per stage of `convopt run` (status, seconds, detail) and the total with its exit code."""
    table = Table(title="convopt run", title_justify="left")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("detail", overflow="fold")
    colors = {"ok": "green", "failed": "red", "skipped": "yellow", "not run": "dim"}
    for stage in result.stages:
        seconds = f"{stage.seconds:.1f}" if stage.status in ("ok", "failed") else ""
        color = colors.get(stage.status, "white")
        table.add_row(stage.name, f"[{color}]{stage.status}[/{color}]", seconds, escape(stage.detail))
    table.add_section()
    status = "ok" if result.exit_code == 0 else "failed"
    table.add_row("total", status, f"{result.seconds:.1f}", f"exit {result.exit_code}")
    console.print(table)


# --- rules ---


def print_rules(rules: list[Rule], console: Console) -> None:
    """The optimization rules as a table, one column per CSV column, values as written."""
    table = Table()
    # limited_data_use only when a rule asks for it: the table stays narrow otherwise.
    shown = COLUMNS + (OPTIONAL_COLUMNS if any(rule.limited_data_use for rule in rules) else ())
    for column in shown:
        table.add_column(column, overflow="fold")
    for rule in rules:
        row = rule.as_row()
        table.add_row(*(escape(row[column]) for column in shown))
    console.print(table)


# --- report ---


def print_report(result: ReportResult, console: Console) -> None:
    """What `convopt report` wrote and where to look, for a person."""
    table = Table(title=escape(f"report {result.folder}"), title_justify="left")
    for name, justify in (("dataset", "left"), ("rows", "right"), ("files", "right"), ("columns", "right")):
        table.add_column(name, justify=justify)
    for d in result.datasets:
        table.add_row(escape(d.name), f"{d.rows:,}", str(len(d.files)), str(len(d.columns)))
    console.print(table)
    build = result.build or {}
    console.print(
        Text(
            f"range {result.range.since} to {result.range.end} ({result.range.period}); "
            f"dbt build {build.get('invocation_id', 'unknown')} finished {build.get('finished_at', '?')}; "
            + ("replaced the earlier report" if result.replaced else "new report")
        )
    )
    for path in result.charts:
        console.print(Text(f"chart {path}"))
    if result.charts:
        console.print(Text(f"open {result.folder / 'index.html'}"))


# --- sql, conversions, summary ---

# The text formats of `convopt sql`, `convopt conversions` and `convopt summary`.
QUERY_FORMATS = ("table", "csv", "json")
# The conversion columns that fit on a terminal; csv and json carry every column of the listing.
CONVERSION_TABLE_COLUMNS = (
    "conversion_time",
    "id",
    "person_id",
    "conversion_type",
    "conversion_source",
    "value_cents",
    "currency",
    "campaign_id",
    "is_optimized",
)


def render_frame(frame: pl.DataFrame, fmt: str, *, max_rows: int = 100) -> str:
    """The result as text: an aligned table (at most ``max_rows`` rows), CSV with a header, or JSON rows."""
    if fmt == "csv":
        return frame.write_csv()
    if fmt == "json":
        return json.dumps(frame.to_dicts(), default=str, indent=2) + "\n"
    table = Table(show_edge=False, header_style="bold")
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in frame.head(max_rows).iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    buffer = io.StringIO()
    Console(file=buffer, width=max(80, min(400, 24 * max(1, frame.width))), force_terminal=False).print(table)
    shown = min(max_rows, frame.height)
    note = f"({frame.height} row{'s' if frame.height != 1 else ''}"
    note += f", first {shown} shown; use --format csv for all)" if shown < frame.height else ")"
    return buffer.getvalue() + note + "\n"


def render_conversions(frame: pl.DataFrame, fmt: str, *, max_rows: int) -> str:
    """Listed conversions: the terminal's columns as a table, every column as CSV or JSON."""
    if fmt == "table":
        frame = frame.select([c for c in CONVERSION_TABLE_COLUMNS if c in frame.columns])
    return render_frame(frame, fmt, max_rows=max_rows)


def render_summary(frame: pl.DataFrame, fmt: str) -> str:
    """A one-row summary: field/value table, one CSV row, or one JSON object."""
    import polars as pl

    if fmt == "json":
        return json.dumps(frame.to_dicts()[0], default=str, indent=2) + "\n"
    if fmt == "csv":
        return render_frame(frame, "csv")
    row = frame.to_dicts()[0]
    pairs = pl.DataFrame(
        {"field": list(row), "value": ["" if v is None else str(v) for v in row.values()]},
        schema={"field": pl.String, "value": pl.String},
    )
    return render_frame(pairs, "table", max_rows=len(row))
