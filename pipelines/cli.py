"""`convopt` command line: parses arguments, calls the job modules, turns user errors into one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console

from pipelines.warehouse import WarehouseLockedError, landing_path, warehouse_path

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="convopt: conversion-analytics warehouse jobs (generate, ingest, dbt build wrapper).",
)
console = Console(stderr=True)

EXIT_OK, EXIT_FILE_FAILED, EXIT_USAGE = 0, 1, 2


def _fail_usage(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(EXIT_USAGE)


@app.command()
def generate(
    out: Path = typer.Option(None, "--out", help="Output folder (default: $CONVOPT_LANDING or data/landing)."),
    persons: int = typer.Option(2_000, "--persons", min=1, help="Number of persons (visitors) to simulate."),
    events: int = typer.Option(
        None, "--events", min=1, help="Approximate number of behavioural events; sets --persons to match."
    ),
    seed: int = typer.Option(42, "--seed", help="Random seed: the same seed and options give identical files."),
    start: dt.date = typer.Option(
        None, "--start", formats=["%Y-%m-%d"], help="First day (default: so that the range ends today, UTC)."
    ),
    days: int = typer.Option(60, "--days", min=1, max=3660, help="Number of days in the range."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, csv or parquet."),
    bad_rows_ratio: float = typer.Option(
        0.0, "--bad-rows-ratio", min=0.0, max=0.5, help="Share of deliberately malformed rows (0 to 0.5)."
    ),
    files_per_stream: int = typer.Option(1, "--files-per-stream", min=1, help="Split each stream into N files."),
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
        None, "--stream", help="Force the stream (events, conversions, ad_spend) instead of the file-name prefix."
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


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
