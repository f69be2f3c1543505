"""A report's manifest.json (every file, its rows, columns and checksum, the dbt build read) and index.html.

index.html is self-contained: the headline numbers, the charts as base64 PNGs and the list of files.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
from pathlib import Path
from typing import Any

from pipelines.report.export import DatasetResult
from pipelines.report.options import ReportRange
from pipelines.warehouse import warehouse_path


def build_manifest(
    rng: ReportRange,
    results: list[DatasetResult],
    chart_paths: list[Path],
    build: dict | None,
    headline: dict,
    folder: Path,
    warehouse: str | os.PathLike[str] | None,
    generated_at: dt.datetime,
) -> dict[str, Any]:
    """The manifest as a JSON-ready dict; paths are relative to the report ``folder``."""
    return {
        "report": {
            "period": rng.period,
            "since": rng.since.isoformat() if rng.since else None,
            "until": rng.until.isoformat() if rng.until else None,
            "last_day": rng.end.isoformat() if rng.end else None,
            "generated_at": generated_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        },
        "warehouse": {
            "path": str(Path(warehouse_path(warehouse)).resolve()),
            # The latest `dbt build`/`dbt run` recorded in audit.dbt_build_log by the on-run-end hook:
            # the marts read here are that invocation's (null: built before the hook existed).
            "build": build,
        },
        "headline": headline,
        "datasets": [
            {
                "name": r.name,
                "source": r.source,
                "description": r.description,
                "rows": r.rows,
                "partitioned_by": r.partitioned_by,
                "columns": r.columns,
                "files": [vars(f) for f in r.files],
            }
            for r in results
        ],
        "charts": [p.relative_to(folder).as_posix() for p in chart_paths],
        "html": "index.html" if chart_paths else None,
    }


def _money(cents: int | None, currency: str) -> str:
    return "-" if cents is None else f"{cents / 100:,.2f} {currency}"


def render_html(manifest: dict[str, Any], folder: Path) -> str:
    """The index.html page of the report in ``folder``, from its manifest (charts read from the folder)."""
    head = manifest["headline"]
    currency = head.get("reporting_currency", "USD")
    rep = manifest["report"]
    build = manifest["warehouse"]["build"] or {}
    cards = [
        ("Conversions", f"{head['conversions']:,}"),
        ("Revenue", _money(head["revenue_cents"], currency)),
        ("Net of refunds", _money(head["net_revenue_cents"], currency)),
        ("Refunded conversions", f"{head['refunded_conversions']:,}"),
        ("Persons converting", f"{head['persons_converting']:,}"),
        ("Ad spend", _money(head["spend_cents"], currency)),
        ("ROAS (reported)", "-" if head["roas"] is None else f"{head['roas']:.2f}"),
        ("Net ROAS", "-" if head["net_roas"] is None else f"{head['net_roas']:.2f}"),
    ]
    images = []
    for rel in manifest["charts"]:
        data = base64.b64encode((folder / rel).read_bytes()).decode("ascii")
        images.append(f'<figure><img alt="{html.escape(rel)}" src="data:image/png;base64,{data}"></figure>')
    rows = "".join(
        f"<tr><td>{html.escape(d['name'])}</td><td>{html.escape(d['source'])}</td>"
        f"<td class=n>{d['rows']:,}</td><td>{len(d['files'])}</td><td>{html.escape(d['description'])}</td></tr>"
        for d in manifest["datasets"]
    )
    card_html = "".join(
        f"<div class=card><div class=v>{html.escape(v)}</div>{html.escape(k)}</div>" for k, v in cards
    )
    title = f"convopt report — {rep['period']} {rep['since']} to {rep['last_day']}"
    built = (
        f"dbt {html.escape(str(build.get('command')))} {html.escape(str(build.get('invocation_id')))} "
        f"finished {html.escape(str(build.get('finished_at')))}"
        if build
        else "unknown build (audit.dbt_build_log missing)"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
.cards {{ display: flex; gap: 1em; flex-wrap: wrap; }}
.card {{ border: 1px solid #ddd; border-radius: 6px; padding: .8em 1.2em; min-width: 10em; }}
.card .v {{ font-size: 1.6em; font-weight: 600; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #eee; padding: .3em .8em; text-align: left; }}
td.n {{ text-align: right; }} .muted {{ color: #777; font-size: .9em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class=muted>Generated {html.escape(rep["generated_at"])} from {built}. Days in {html.escape(str(build.get("reporting_timezone", "UTC")))}; money in {html.escape(currency)}.</p>
<div class=cards>{card_html}</div>
{"".join(images)}
<h2>Files</h2>
<table><tr><th>dataset</th><th>source</th><th>rows</th><th>files</th><th>what</th></tr>{rows}</table>
<p class=muted>Every file with its rows, columns and checksum: manifest.json.</p>
</body></html>
"""
