"""`convopt` command line: parses arguments, calls the job modules, turns user errors into one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.warehouse import WarehouseLockedError, landing_path, warehouse_path

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="convopt: conversion-analytics warehouse jobs (generate, ingest, dbt build wrapper).",
)
# soft_wrap: an error stays one line however narrow the terminal (users grep logs for it).
console = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_FILE_FAILED, EXIT_USAGE = 0, 1, 2


def _fail_usage(message: str) -> None:
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(EXIT_USAGE)


@app.command()
def generate(
    out: Path = typer.Option(
        None, "--out", help="Output folder (default: $CONVOPT_LANDING or data/landing)."
    ),
    persons: int = typer.Option(2_000, "--persons", min=1, help="Number of persons (visitors) to simulate."),
    events: int = typer.Option(
        None, "--events", min=1, help="Approximate number of behavioural events; sets --persons to match."
    ),
    seed: int = typer.Option(
        42, "--seed", help="Random seed: the same seed and options give identical files."
    ),
    start: dt.date = typer.Option(
        None, "--start", formats=["%Y-%m-%d"], help="First day (default: so that the range ends today, UTC)."
    ),
    days: int = typer.Option(60, "--days", min=1, max=3660, help="Number of days in the range."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, csv or parquet."),
    bad_rows_ratio: float = typer.Option(
        0.0, "--bad-rows-ratio", min=0.0, max=0.5, help="Share of deliberately malformed rows (0 to 0.5)."
    ),
    files_per_stream: int = typer.Option(
        1, "--files-per-stream", min=1, help="Split each stream into N files."
    ),
) -> None:
    """Write a deterministic synthetic data set (events, conversions, ad_spend) in the raw contract."""
    from pipelines.generate import GeneratorConfig, generate_dataset

    if fmt not in ("jsonl", "csv", "parquet"):
        _fail_usage(f"--format must be jsonl, csv or parquet, not {fmt!r}")
    if start is None:
        start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days - 1)
    config = GeneratorConfig(
        persons=persons,
        events=events,
        seed=seed,
        start=start,
        days=days,
        fmt=fmt,
        bad_rows_ratio=bad_rows_ratio,
        files_per_stream=files_per_stream,
    )
    generate_dataset(landing_path(out), config, console=console)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(
        None, help="Files or folders to load (default: the landing folder, $CONVOPT_LANDING or data/landing)."
    ),
    warehouse: Path = typer.Option(None, "--warehouse", help="DuckDB file (default: $CONVOPT_WAREHOUSE)."),
    stream: str = typer.Option(
        None,
        "--stream",
        help="Force the stream (events, conversions, ad_spend) instead of the file-name prefix.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Validate landing files and append them to raw.*; bad rows go to raw.rejected_rows."""
    from pipelines.ingest import IngestUsageError, ingest_paths

    try:
        report = ingest_paths(
            list(paths or [landing_path()]),
            warehouse=warehouse_path(warehouse),
            stream=stream,
            progress=progress,
            console=console,
        )
    except (IngestUsageError, WarehouseLockedError) as exc:
        _fail_usage(str(exc))
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FILE_FAILED)


@app.command()
def sql(
    query: str = typer.Argument(
        None, help='The SQL to run, e.g. "select count(*) from marts.conversion_event".'
    ),
    file: Path = typer.Option(None, "--file", "-f", help="Read the SQL from this file instead."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    max_rows: int = typer.Option(100, "--max-rows", min=1, help="Rows shown in table format."),
    warehouse: Path = typer.Option(None, "--warehouse", help="DuckDB file (default: $CONVOPT_WAREHOUSE)."),
) -> None:
    """Answer an ad-hoc question on a read-only connection (never modifies the warehouse)."""
    from pipelines.adhoc import FORMATS, QueryError, read_sql_argument, render, run_query

    if fmt not in FORMATS:
        _fail_usage(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        frame = run_query(read_sql_argument(query, file), warehouse=warehouse_path(warehouse))
    except (ValueError, FileNotFoundError, WarehouseLockedError) as exc:
        _fail_usage(str(exc))
    except QueryError as exc:  # pragma: no cover - QueryError is a ValueError; kept for clarity
        _fail_usage(str(exc))
    typer.echo(render(frame, fmt, max_rows=max_rows), nl=False)


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
