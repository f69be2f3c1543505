"""`convopt report`: marts and report models as CSV and Parquet files, charts and one HTML page, in a dated folder.

Layout of one report (``<out>/<period>_<since>_<until>/``)::

    manifest.json                    every file, its rows, columns (+ DuckDB types) and the dbt build read
    index.html                       self-contained page: headline numbers and the charts (base64 PNGs)
    csv/<dataset>.csv                header, stable column order (the mart's), deterministic row order
                                     (Parquet rows are not ordered within a partition: DuckDB's partitioned
                                     writer does not keep it)
    parquet/<dataset>/period_date=YYYY-MM-DD/data_0.parquet   hive-partitioned by period (DuckDB COPY)
    parquet/<dataset>.parquet        datasets without a period (person summary, Meta delivery status)
    charts/*.png

Everything is written by DuckDB ``COPY`` from a read-only connection (no row loops in Python) into a
temporary folder beside the target, which then replaces the previous report of the same range in one
``renameat2(RENAME_EXCHANGE)`` (two renames where the kernel lacks it). ``<out>/latest`` points at the
newest report.

Range: ``since`` is moved back to the first day of its period (the Monday of its ISO week, the first of
its month), and every period whose first day is in [since, until] is exported, whole. Without
``since``/``until`` the range is the data's (first and last day of ``conversion_metrics``' daily rows).
Days are days in the reporting time zone the marts were built with (recorded in ``audit.dbt_build_log``).
"""

from __future__ import annotations

import base64
import ctypes
import datetime as dt
import hashlib
import html
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipelines.contract import PII_FIELDS
from pipelines.warehouse import connect, warehouse_path

PERIODS = ("daily", "weekly", "monthly")
FORMATS = ("csv", "parquet", "both")
DEFAULT_OUT = Path("reports")
BUILD_LOG = "audit.dbt_build_log"
# The report models (models/reports/) the datasets read besides the marts.
REPORT_MODELS = ("reports.rpt_attribution_by_campaign", "reports.rpt_meta_delivery_status")

# A report never carries personal data in clear (see pipelines.contract.PII_FIELDS).
PII_COLUMNS = PII_FIELDS


class ReportUsageError(ValueError):
    """A problem the user fixes (bad range, unknown format, missing marts)."""


@dataclass(frozen=True)
class ReportRange:
    period: str
    since: dt.date | None  # first day of the first period (None: no data and no --since)
    until: dt.date | None  # last day asked for (the last period is exported whole)
    end: dt.date | None  # last day of the period containing `until`

    @property
    def folder_name(self) -> str:
        if self.since is None or self.until is None:
            return f"{self.period}_no-data"
        return f"{self.period}_{self.since.isoformat()}_{self.until.isoformat()}"


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str  # the model it reads (marts.<mart> or reports.<report model>), for the manifest and exposures
    sql: str  # a select; {since}, {until}, {end} are date literals, {period} the period type
    partitioned: bool  # hive-partitioned by period_date in Parquet
    description: str


@dataclass
class FileEntry:
    path: str  # relative to the report folder
    format: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class DatasetResult:
    name: str
    source: str
    description: str
    rows: int
    columns: list[dict[str, str]]
    partitioned_by: str | None
    files: list[FileEntry] = field(default_factory=list)


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


def _period_start(period: str, day: dt.date) -> dt.date:
    if period == "weekly":
        return day - dt.timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    return day


def _period_end(period: str, day: dt.date) -> dt.date:
    start = _period_start(period, day)
    if period == "weekly":
        return start + dt.timedelta(days=6)
    if period == "monthly":
        following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - dt.timedelta(days=1)
    return start


def parse_date(value: str | dt.date | None, option: str) -> dt.date | None:
    """A YYYY-MM-DD date, or a one-line error naming the option and what was expected."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ReportUsageError(
            f"{option} must be a date as YYYY-MM-DD (e.g. 2026-11-01), not {value!r}"
        ) from None


def validate_options(period: str, fmt: str, since: dt.date | None, until: dt.date | None) -> None:
    if period not in PERIODS:
        raise ReportUsageError(f"--period must be one of {', '.join(PERIODS)}, not {period!r}")
    if fmt not in FORMATS:
        raise ReportUsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if since is not None and until is not None and since > until:
        raise ReportUsageError(f"--since {since} is after --until {until}: nothing to report")


def _local_day(tz: str, column: str) -> str:
    return f"cast(timezone('{tz}', {column}) as date)"


def datasets(period: str) -> list[Dataset]:
    """What a report exports. Row orders are total (by key columns), so reruns give identical files.

    Each dataset reads one dbt model: a mart, or a report model (schema ``reports``) where the dataset
    is more than the mart's rows. Python only picks the rows of the range (and, for the Meta delivery
    status, adds up the days of the range).
    """
    in_range = "period_date between {since} and {until}"
    specs = [
        Dataset(
            "conversion_metrics",
            "marts.conversion_metrics",
            f"""select * from marts.conversion_metrics
                where period_type = '{{period}}' and {in_range}
                order by period_date, attribution_model, campaign_id""",
            True,
            "The feature document's conversion_metrics: period x attribution model x campaign, with spend, CPA, ROAS.",
        ),
        Dataset(
            f"conversion_rollup_{period}",
            f"marts.conversion_rollup_{period}",
            f"""select * from marts.conversion_rollup_{period}
                where {in_range}
                order by period_date, id""",
            True,
            "Conversions and revenue per period x type x campaign x ad set x channel x source x device x country.",
        ),
        Dataset(
            "funnel_stats",
            "marts.funnel_stats",
            f"""select * from marts.funnel_stats
                where period_type = '{{period}}' and {in_range}
                order by period_date, funnel_name, campaign_scope, campaign_id nulls first, step_number""",
            True,
            "Persons per funnel step, drop-off and conversion rates, times between steps, per period.",
        ),
        Dataset(
            "attribution_by_campaign",
            "reports.rpt_attribution_by_campaign",
            f"""select * exclude (period_type) from reports.rpt_attribution_by_campaign
                where period_type = '{{period}}' and {in_range}
                order by period_date, attribution_model, campaign_id, channel, conversion_type""",
            True,
            "Credited conversions and revenue per period x attribution model x campaign x channel x type.",
        ),
        Dataset(
            "person_conversion_summary",
            "marts.person_conversion_summary",
            """select * from marts.person_conversion_summary order by person_id""",
            False,
            "The feature document's getConversionSummary per person (all time; no identity fields, clear or hashed).",
        ),
        Dataset(
            "meta_delivery_status",
            "reports.rpt_meta_delivery_status",
            """select
                    conversion_type,
                    event_name,
                    delivery_state,
                    cast(sum(conversions) as bigint) as conversions
                from reports.rpt_meta_delivery_status
                where conversion_date between {since} and {end}
                group by conversion_type, event_name, delivery_state
                order by conversion_type, event_name, delivery_state""",
            False,
            "Conversions of the range by Meta delivery state: sent, pending (ready), failed, unknown, "
            "expired or skipped.",
        ),
    ]
    return specs


def _date_literal(day: dt.date | None) -> str:
    return "null" if day is None else f"date '{day.isoformat()}'"


def _render(sql: str, rng: ReportRange) -> str:
    return sql.format(
        since=_date_literal(rng.since),
        until=_date_literal(rng.until),
        end=_date_literal(rng.end),
        period=rng.period,
    )


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def latest_build(con: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The latest dbt build/run recorded by the on-run-end hook (macros/record_build.sql), if any."""
    if not _table_exists(con, BUILD_LOG):
        return None
    cursor = con.execute(
        f"select * from {BUILD_LOG} where command in ('build', 'run') order by finished_at desc limit 1"
    )
    names = [d[0] for d in cursor.description]
    row = cursor.fetchall()[0]
    if row is None:
        return None
    # The hook writes UTC wall-clock times (timestamp without zone).
    return {
        name: (value.isoformat() + "Z" if isinstance(value, dt.datetime) else value)
        for name, value in zip(names, row, strict=True)
    }


def resolve_range(
    con: duckdb.DuckDBPyConnection, period: str, since: dt.date | None, until: dt.date | None
) -> ReportRange:
    if since is None or until is None:
        first, last = con.execute(
            "select min(period_date), max(period_date) from marts.conversion_metrics where period_type = 'daily'"
        ).fetchall()[0]
        since = since if since is not None else first
        until = until if until is not None else last
        if since is not None and until is not None and since > until:
            raise ReportUsageError(
                f"the range is empty: the data runs from {first} to {last}, the range asked is {since} to {until}"
            )
    if since is None or until is None:
        return ReportRange(period, None, None, None)
    return ReportRange(period, _period_start(period, since), until, _period_end(period, until))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _export(
    con: duckdb.DuckDBPyConnection, spec: Dataset, query: str, folder: Path, fmt: str
) -> DatasetResult:
    relation = con.sql(query)
    columns = [{"name": n, "type": str(t)} for n, t in zip(relation.columns, relation.types, strict=True)]
    clear_pii = sorted(PII_COLUMNS & set(relation.columns))
    if clear_pii:
        raise ReportUsageError(
            f"dataset {spec.name} would export identity fields in clear: {', '.join(clear_pii)}"
        )
    result = DatasetResult(
        spec.name,
        spec.source,
        spec.description,
        0,
        columns,
        "period_date" if spec.partitioned else None,
    )
    rows: int | None = None
    if fmt in ("csv", "both"):
        target = folder / "csv" / f"{spec.name}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        (rows,) = con.execute(
            f"copy ({query}) to '{_sql_path(target)}' "
            "(format csv, header true, timestampformat '%Y-%m-%dT%H:%M:%S.%fZ', dateformat '%Y-%m-%d')"
        ).fetchall()[0]
        result.files.append(
            FileEntry(
                target.relative_to(folder).as_posix(), "csv", rows, target.stat().st_size, _sha256(target)
            )
        )
    if fmt in ("parquet", "both"):
        base = folder / "parquet"
        base.mkdir(parents=True, exist_ok=True)
        if spec.partitioned:
            target = base / spec.name
            (copied,) = con.execute(
                f"copy ({query}) to '{_sql_path(target)}' "
                "(format parquet, compression zstd, partition_by (period_date))"
            ).fetchall()[0]
            files = sorted(target.rglob("*.parquet"))
            counts: dict[str, int] = {}
            if files:
                listing = ", ".join(f"'{_sql_path(f)}'" for f in files)
                counts = dict(
                    con.execute(
                        f"select file_name, num_rows from parquet_file_metadata([{listing}])"
                    ).fetchall()
                )
            for path in files:
                result.files.append(
                    FileEntry(
                        path.relative_to(folder).as_posix(),
                        "parquet",
                        int(counts[str(path)]),
                        path.stat().st_size,
                        _sha256(path),
                    )
                )
        else:
            target = base / f"{spec.name}.parquet"
            (copied,) = con.execute(
                f"copy ({query}) to '{_sql_path(target)}' (format parquet, compression zstd)"
            ).fetchall()[0]
            result.files.append(
                FileEntry(
                    target.relative_to(folder).as_posix(),
                    "parquet",
                    copied,
                    target.stat().st_size,
                    _sha256(target),
                )
            )
        rows = copied if rows is None else rows
    result.rows = int(rows or 0)
    return result


def _headline(
    con: duckdb.DuckDBPyConnection, rng: ReportRange, tz: str, build: dict | None
) -> dict[str, Any]:
    if rng.since is None:
        return {"conversions": 0, "revenue_cents": 0, "persons_converting": 0, "spend_cents": 0, "roas": None}
    day = _local_day(tz.replace("'", "''"), "conversion_time")
    conversions, revenue, persons = con.execute(
        f"""select count(*), coalesce(sum(value_cents_reporting), 0), count(distinct person_id)
            from marts.conversion_event where {day} between ? and ?""",
        [rng.since, rng.end],
    ).fetchall()[0]
    (spend,) = con.execute(
        """select coalesce(sum(spend_cents), 0) from marts.conversion_metrics
           where period_type = 'daily' and attribution_model = 'reported' and period_date between ? and ?""",
        [rng.since, rng.end],
    ).fetchall()[0]
    return {
        "conversions": int(conversions),
        "revenue_cents": int(revenue),
        "persons_converting": int(persons),
        "spend_cents": int(spend),
        "roas": round(revenue / spend, 2) if spend else None,
        "reporting_currency": (build or {}).get("reporting_currency", "USD"),
    }


def _chart_frames(con: duckdb.DuckDBPyConnection, rng: ReportRange, tz: str) -> dict[str, pl.DataFrame]:
    """The small aggregates the charts draw (daily grain for the time series, whatever --period is)."""
    if rng.since is None:
        empty = pl.DataFrame()
        return {"daily": empty, "funnels": empty, "attribution": empty, "meta": empty}
    params = [rng.since, rng.end]
    daily = con.sql(
        """select period_date, cast(sum(conversions) as bigint) as conversions,
                  cast(sum(revenue_cents) as bigint) as revenue_cents
           from marts.conversion_rollup_daily where period_date between ? and ? group by 1 order by 1""",
        params=params,
    ).pl()
    # conversion_funnel has one row per person x funnel, counted in the period of its start, so the daily
    # rows of funnel_stats add up exactly over a range.
    funnels = con.sql(
        """select funnel_name, step_number, any_value(step_name) as step_name,
                  cast(sum(persons_reached) as bigint) as persons_reached
           from marts.funnel_stats
           where period_type = 'daily' and campaign_scope = 'all' and period_date between ? and ?
           group by 1, 2 order by 1, 2""",
        params=params,
    ).pl()
    day = _local_day(tz.replace("'", "''"), "conversion_time")
    attribution = con.sql(
        # Campaign ids are opaque (Meta's are 15+ digits): label each with its most common utm_campaign.
        f"""with credited as (
                select attribution_model, campaign_id, utm_campaign, credited_value_cents
                from marts.conversion_attribution where {day} between ? and ?
            ),
            names as (
                select campaign_id, mode(utm_campaign) as campaign_name
                from credited where utm_campaign is not null and campaign_id <> '(unattributed)' group by 1
            )
            select attribution_model, campaign_id,
                   coalesce(names.campaign_name || chr(10) || campaign_id, campaign_id) as campaign_label,
                   cast(sum(credited_value_cents) as bigint) as credited_value_cents
            from credited left join names using (campaign_id) group by 1, 2, 3""",
        params=params,
    ).pl()
    meta_spec = next(s for s in datasets(rng.period) if s.name == "meta_delivery_status")
    meta = con.sql(_render(meta_spec.sql, rng)).pl()
    return {"daily": daily, "funnels": funnels, "attribution": attribution, "meta": meta}


def _exchange_directories(first: Path, second: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0


def _replace_folder(tmp: Path, target: Path) -> bool:
    """Put ``tmp`` at ``target``; True if an earlier report was replaced."""
    if not target.exists():
        os.rename(tmp, target)
        return False
    if _exchange_directories(tmp, target):
        shutil.rmtree(tmp)  # now holds the previous report
        return True
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old)
    return True


def _point_latest(out: Path, name: str) -> None:
    link, tmp = out / "latest", out / f".latest.tmp-{os.getpid()}"
    if link.exists() and not link.is_symlink():
        return  # a real folder named `latest`: leave it alone
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(name)
    os.replace(tmp, link)


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
        missing = [
            t for t in ("marts.conversion_metrics", "marts.conversion_event") if not _table_exists(con, t)
        ]
        if missing:
            raise ReportUsageError(
                f"{warehouse_path(warehouse)} has no {', '.join(missing)}: run `dbt build` (or `convopt run`) first"
            )
        missing = [t for t in REPORT_MODELS if not _table_exists(con, t)]
        if missing:
            raise ReportUsageError(
                f"{warehouse_path(warehouse)} has no {', '.join(missing)} (the report models, built by dbt "
                "since they exist): run `dbt build` (or `convopt run`) first"
            )
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
                results.append(_export(con, spec, _render(spec.sql, rng), tmp, fmt))
            headline = _headline(con, rng, tz, build)
            frames = _chart_frames(con, rng, tz) if charts else {}
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    try:
        chart_paths: list[Path] = []
        if charts:
            from pipelines.charts import draw_all

            chart_paths = draw_all(frames, tmp / "charts", currency=headline.get("reporting_currency", "USD"))
        generated_at = now()
        manifest = _manifest(rng, results, chart_paths, build, headline, tmp, warehouse, generated_at)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if charts:
            (tmp / "index.html").write_text(_html(manifest, tmp), encoding="utf-8")
        replaced = _replace_folder(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_latest(out, target.name)
    return ReportResult(
        target, rng, results, [target / p.relative_to(tmp) for p in chart_paths], build, headline, replaced
    )


def _manifest(
    rng: ReportRange,
    results: list[DatasetResult],
    chart_paths: list[Path],
    build: dict | None,
    headline: dict,
    folder: Path,
    warehouse: str | os.PathLike[str] | None,
    generated_at: dt.datetime,
) -> dict[str, Any]:
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


def _html(manifest: dict[str, Any], folder: Path) -> str:
    head = manifest["headline"]
    currency = head.get("reporting_currency", "USD")
    rep = manifest["report"]
    build = manifest["warehouse"]["build"] or {}
    cards = [
        ("Conversions", f"{head['conversions']:,}"),
        ("Revenue", _money(head["revenue_cents"], currency)),
        ("Persons converting", f"{head['persons_converting']:,}"),
        ("Ad spend", _money(head["spend_cents"], currency)),
        ("ROAS (reported)", "-" if head["roas"] is None else f"{head['roas']:.2f}"),
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
