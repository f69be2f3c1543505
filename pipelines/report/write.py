"""`convopt report` end to end: check the warehouse, export every dataset, draw, describe, put in place.

Everything is written by DuckDB ``COPY`` from a read-only connection (no row loops in Python) into a
temporary folder beside the target, which replaces the previous report of the same range at once
(pipelines.report.folders). A failure leaves the earlier report untouched and no temporary folder behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipelines.report.build_log import latest_build, table_exists
from pipelines.report.datasets import REPORT_MODELS, datasets, range_sql
from pipelines.report.export import DatasetResult, export_dataset
from pipelines.report.figures import chart_frames, headline
from pipelines.report.folders import point_latest, replace_folder
from pipelines.report.options import (
    DEFAULT_OUT,
    ReportRange,
    ReportUsageError,
    resolve_range,
    validate_options,
)
from pipelines.report.page import build_manifest, render_html
from pipelines.warehouse import connect, warehouse_path


@dataclass
class ReportResult:
    folder: Path
    range: ReportRange
    datasets: list[DatasetResult]
    charts: list[Path]
    build: dict[str, Any] | None
    headline: dict[str, Any]
    replaced: bool

    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"


def _require_models(con: duckdb.DuckDBPyConnection, warehouse: str | os.PathLike[str] | None) -> None:
    """The marts and report models a report reads exist, or a one-line error saying to build them."""
    missing = [t for t in ("marts.conversion_metrics", "marts.conversion_event") if not table_exists(con, t)]
    if missing:
        raise ReportUsageError(
            f"{warehouse_path(warehouse)} has no {', '.join(missing)}: run `dbt build` (or `convopt run`) first"
        )
    missing = [t for t in REPORT_MODELS if not table_exists(con, t)]
    if missing:
        raise ReportUsageError(
            f"{warehouse_path(warehouse)} has no {', '.join(missing)} (the report models, built by dbt "
            "since they exist): run `dbt build` (or `convopt run`) first"
        )


def write_report(
    *,
    warehouse: str | os.PathLike[str] | None = None,
    out: Path = DEFAULT_OUT,
    period: str = "daily",
    fmt: str = "both",
    since: dt.date | None = None,
    until: dt.date | None = None,
    charts: bool = True,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> ReportResult:
    """Export the report for the range into ``out/<period>_<since>_<until>/``, replacing an earlier one."""
    validate_options(period, fmt, since, until)
    out = Path(out)
    with connect(warehouse, read_only=True) as con:
        _require_models(con, warehouse)
        build = latest_build(con)
        tz = (build or {}).get("reporting_timezone") or "UTC"
        rng = resolve_range(con, period, since, until)
        out.mkdir(parents=True, exist_ok=True)
        target = out / rng.folder_name
        tmp = out / f".{rng.folder_name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            results = []
            for spec in datasets(period):
                # Without data the range is null: period datasets come out empty, with their columns.
                results.append(export_dataset(con, spec, range_sql(spec.sql, rng), tmp, fmt))
            figures = headline(con, rng, tz, build)
            frames = chart_frames(con, rng, tz) if charts else {}
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    try:
        chart_paths: list[Path] = []
        if charts:
            from pipelines.report.charts import draw_all

            chart_paths = draw_all(frames, tmp / "charts", currency=figures.get("reporting_currency", "USD"))
        generated_at = now()
        manifest = build_manifest(rng, results, chart_paths, build, figures, tmp, warehouse, generated_at)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if charts:
            (tmp / "index.html").write_text(render_html(manifest, tmp), encoding="utf-8")
        replaced = replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    point_latest(out, target.name)
    return ReportResult(
        target, rng, results, [target / p.relative_to(tmp) for p in chart_paths], build, figures, replaced
    )
