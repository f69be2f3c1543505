"""`convopt report`: files match the warehouse, readable with the right types, manifest true, atomic reruns,
charts, bad arguments. Reads the session's demo_run warehouse (tests/conftest.py); never writes to it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines import report as report_module
from pipelines.cli import app
from pipelines.report import PII_COLUMNS, ReportUsageError, write_report
from pipelines.report import write as report_write

pytestmark = pytest.mark.dbt
runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def query(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def dataset(manifest: dict, name: str) -> dict:
    return next(d for d in manifest["datasets"] if d["name"] == name)


@pytest.fixture(scope="module")
def daily(demo_run: dict) -> Path:
    """The report `convopt run` wrote: daily, whole data range, csv + parquet, charts."""
    return demo_run["run"].report.folder


def test_run_wrote_a_dated_report_folder_and_latest_link(demo_run: dict, daily: Path) -> None:
    ((first, last),) = query(
        demo_run["warehouse"],
        "select min(period_date), max(period_date) from marts.conversion_metrics where period_type = 'daily'",
    )
    assert daily.name == f"daily_{first}_{last}"
    assert (demo_run["out"] / "latest").resolve() == daily.resolve()
    assert sorted(p.name for p in daily.iterdir()) == [
        "charts",
        "csv",
        "index.html",
        "manifest.json",
        "parquet",
    ]
    assert not [p for p in demo_run["out"].iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def _expected_counts(
    warehouse: Path, since: dt.date, until: dt.date, period: str = "daily"
) -> dict[str, int]:
    """Row counts computed independently from the marts (not through pipelines.report)."""
    unit = {"daily": "day", "weekly": "week", "monthly": "month"}[period]
    counts = {}
    for name, sql in {
        "conversion_metrics": "select count(*) from marts.conversion_metrics where period_type = ? "
        "and period_date between ? and ?",
        f"conversion_rollup_{period}": f"select count(*) from marts.conversion_rollup_{period} "
        "where ? is not null and period_date between ? and ?",
        "funnel_stats": "select count(*) from marts.funnel_stats where period_type = ? and period_date between ? and ?",
        "attribution_by_campaign": f"""select count(*) from (select distinct date_trunc('{unit}', conversion_time),
            attribution_model, campaign_id, channel, conversion_type from marts.conversion_attribution
            where ? is not null and cast(date_trunc('{unit}', conversion_time) as date) between ? and ?)""",
    }.items():
        counts[name] = query(warehouse, sql, [period, since, until])[0][0]
    for name in ("person_conversion_summary", "attribution_path_summary"):  # all time, not by range
        counts[name] = query(warehouse, f"select count(*) from marts.{name}")[0][0]
    return counts


def test_row_counts_match_the_warehouse(demo_run: dict, daily: Path) -> None:
    manifest = manifest_of(daily)
    since = dt.date.fromisoformat(manifest["report"]["since"])
    until = dt.date.fromisoformat(manifest["report"]["until"])
    expected = _expected_counts(demo_run["warehouse"], since, until)
    for name, count in expected.items():
        assert dataset(manifest, name)["rows"] == count > 0, name
    # Every conversion of the range is in the Meta status file exactly once (if it has a rule).
    ((capi,),) = query(
        demo_run["warehouse"],
        "select count(*) from marts.meta_capi_events where cast(conversion_time as date) between ? and ?",
        [since, until],
    )
    status = pl.read_parquet(daily / "parquet" / "meta_delivery_status.parquet")
    assert status["conversions"].sum() == capi > 0
    # Credits of a conversion sum to 1 in every model: the attribution file reconciles with the conversions.
    ((conversions,),) = query(
        demo_run["warehouse"],
        "select count(*) from marts.conversion_event where cast(conversion_time as date) between ? and ?",
        [since, until],
    )
    attribution = pl.read_parquet(daily / "parquet" / "attribution_by_campaign", hive_partitioning=True)
    per_model = attribution.group_by("attribution_model").agg(pl.col("attributed_conversions").sum())
    assert per_model.height == 7  # the six rule-based models and markov
    assert {float(v) for v in per_model["attributed_conversions"]} == {float(conversions)}
    assert manifest["headline"]["conversions"] == conversions


POLARS_TYPES = {
    "VARCHAR": pl.String,
    "BIGINT": pl.Int64,
    "INTEGER": pl.Int32,
    "BOOLEAN": pl.Boolean,
    "DATE": pl.Date,
    "DOUBLE": pl.Float64,
    "TIMESTAMP WITH TIME ZONE": pl.Datetime("us", "UTC"),
}


def polars_type(duckdb_type: str) -> pl.DataType:
    if duckdb_type.startswith("DECIMAL"):
        precision, scale = map(int, re.findall(r"\d+", duckdb_type))
        return pl.Decimal(precision, scale)
    return POLARS_TYPES[duckdb_type]


def read_dataset(folder: Path, entry: dict, fmt: str) -> pl.DataFrame:
    if fmt == "parquet":
        path = folder / "parquet" / (entry["name"] if entry["partitioned_by"] else f"{entry['name']}.parquet")
        return pl.read_parquet(path, hive_partitioning=bool(entry["partitioned_by"]))
    # CSV has no types: read it with the manifest's (decimals as floats, which CSV can only express).
    schema = {c["name"]: polars_type(c["type"]) for c in entry["columns"]}
    schema = {n: (pl.Float64 if isinstance(t, pl.Decimal) else t) for n, t in schema.items()}
    return pl.read_csv(folder / "csv" / f"{entry['name']}.csv", schema=schema)


def test_parquet_and_csv_are_readable_by_polars_with_the_right_types(daily: Path) -> None:
    manifest = manifest_of(daily)
    assert len(manifest["datasets"]) == 9
    for entry in manifest["datasets"]:
        names = [c["name"] for c in entry["columns"]]
        parquet = read_dataset(daily, entry, "parquet").select(names)
        assert parquet.height == entry["rows"], entry["name"]
        for column in entry["columns"]:
            assert parquet.schema[column["name"]] == polars_type(column["type"]), (entry["name"], column)
        csv = read_dataset(daily, entry, "csv")
        assert csv.columns == names  # header in the manifest's (the mart's) stable order
        floats = [pl.col(n).cast(pl.Float64) for n, t in parquet.schema.items() if isinstance(t, pl.Decimal)]
        # CSV rows are in the report's order; DuckDB's partitioned Parquet writer does not keep row order
        # within a partition, so compare as sorted sets of rows.
        assert csv.sort(names).equals(parquet.with_columns(floats).sort(names)), entry["name"]


def test_manifest_lists_every_file_truthfully(demo_run: dict, daily: Path) -> None:
    manifest = manifest_of(daily)
    listed = set()
    for entry in manifest["datasets"]:
        by_format: dict[str, int] = {}
        for file in entry["files"]:
            path = daily / file["path"]
            listed.add(path)
            assert path.stat().st_size == file["bytes"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == file["sha256"]
            frame = (
                pl.read_csv(path, infer_schema=False) if file["format"] == "csv" else pl.read_parquet(path)
            )
            assert frame.height == file["rows"], file["path"]
            expected = [c["name"] for c in entry["columns"] if c["name"] != entry["partitioned_by"]]
            assert [c for c in frame.columns if c != "period_date" or not entry["partitioned_by"]] == expected
            by_format[file["format"]] = by_format.get(file["format"], 0) + file["rows"]
        assert by_format == {"csv": entry["rows"], "parquet": entry["rows"]}, entry["name"]
    on_disk = {p for p in (daily / "csv").rglob("*") if p.is_file()} | {
        p for p in (daily / "parquet").rglob("*") if p.is_file()
    }
    assert on_disk == listed
    assert manifest["charts"] == sorted(manifest["charts"], key=manifest["charts"].index)
    assert all((daily / c).exists() for c in manifest["charts"])
    # The build named is a real, successful `dbt build` recorded in the warehouse.
    build = manifest["warehouse"]["build"]
    rows = query(
        demo_run["warehouse"],
        "select command, failed_nodes from audit.dbt_build_log where invocation_id = ?",
        [build["invocation_id"]],
    )
    assert rows == [("build", 0)]
    assert build["reporting_timezone"] == "UTC" and build["reporting_currency"] == "USD"


def test_parquet_is_hive_partitioned_by_period(daily: Path) -> None:
    manifest = manifest_of(daily)
    since, until = manifest["report"]["since"], manifest["report"]["until"]
    entry = dataset(manifest, "conversion_metrics")
    parquet_files = [f for f in entry["files"] if f["format"] == "parquet"]
    days = set()
    for file in parquet_files:
        match = re.fullmatch(
            r"parquet/conversion_metrics/period_date=(\d{4}-\d{2}-\d{2})/[^/]+\.parquet", file["path"]
        )
        assert match, file["path"]
        day = match.group(1)
        assert since <= day <= until
        rows = pl.read_parquet(daily / file["path"], hive_partitioning=True)
        assert rows["period_date"].unique().to_list() == [dt.date.fromisoformat(day)]
        days.add(day)
    assert len(days) == len(parquet_files) > 1


def test_charts_are_pngs_and_the_html_page_embeds_them(daily: Path) -> None:
    manifest = manifest_of(daily)
    assert [Path(c).name for c in manifest["charts"]] == [
        "conversions_revenue_daily.png",
        "funnel_dropoff.png",
        "revenue_by_campaign_model.png",
        "meta_delivery_status.png",
        "meta_match_quality.png",
    ]
    page = (daily / "index.html").read_text()
    embedded = [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
    pngs = [(daily / c).read_bytes() for c in manifest["charts"]]
    assert embedded == pngs
    assert all(png.startswith(PNG_SIGNATURE) and len(png) > 5000 for png in pngs)
    assert f"{manifest['headline']['conversions']:,}" in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_no_identity_field_leaves_in_clear(daily: Path, demo_run: dict, tmp_path: Path, monkeypatch) -> None:
    for entry in manifest_of(daily)["datasets"]:
        assert not PII_COLUMNS & {c["name"] for c in entry["columns"]}, entry["name"]
    original = report_module.datasets

    def with_email(*args, **kwargs):
        specs = original(*args, **kwargs)
        leak = report_module.Dataset("leak", "raw", "select 'a@b.c' as email", False, "")
        return [*specs, leak]

    monkeypatch.setattr(report_write, "datasets", with_email)
    with pytest.raises(ReportUsageError, match="dataset leak would export identity fields in clear: email"):
        write_report(warehouse=demo_run["warehouse"], out=tmp_path, charts=False)
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing half-written


def test_rerun_of_the_same_range_replaces_the_folder_atomically(
    demo_run: dict, tmp_path: Path, monkeypatch
) -> None:
    args = dict(warehouse=demo_run["warehouse"], out=tmp_path, period="weekly", fmt="parquet", charts=False)
    first = write_report(**args, since=dt.date(2026, 3, 4), until=dt.date(2026, 3, 15))
    # The range starts on the Monday of --since's week; the weeks are exported whole.
    assert first.folder.name == "weekly_2026-03-02_2026-03-15"
    assert not first.replaced
    assert not (first.folder / "csv").exists()
    (first.folder / "stale.txt").write_text("from an earlier run")
    inode = first.folder.stat().st_ino

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    # A failing rerun leaves the earlier report untouched and no temporary folder behind.
    monkeypatch.setattr(report_write, "build_manifest", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(**args, since=dt.date(2026, 3, 2), until=dt.date(2026, 3, 15))
    assert (first.folder / "stale.txt").exists()
    monkeypatch.undo()

    second = write_report(**args, since=dt.date(2026, 3, 2), until=dt.date(2026, 3, 15))
    assert second.folder == first.folder and second.replaced
    assert second.folder.stat().st_ino != inode
    assert not (second.folder / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "weekly_2026-03-02_2026-03-15"]
    manifest = manifest_of(second.folder)
    expected = _expected_counts(demo_run["warehouse"], dt.date(2026, 3, 2), dt.date(2026, 3, 15), "weekly")
    for name, count in expected.items():
        assert dataset(manifest, name)["rows"] == count, name
    assert {f["format"] for d in manifest["datasets"] for f in d["files"]} == {"parquet"}


def test_monthly_csv_only(demo_run: dict, tmp_path: Path) -> None:
    result = write_report(
        warehouse=demo_run["warehouse"], out=tmp_path, period="monthly", fmt="csv", charts=False
    )
    assert result.folder.name.startswith("monthly_2026-03-01_")
    assert not (result.folder / "parquet").exists() and not (result.folder / "index.html").exists()
    rollup = pl.read_csv(result.folder / "csv" / "conversion_rollup_monthly.csv", try_parse_dates=True)
    ((conversions,),) = query(demo_run["warehouse"], "select count(*) from marts.conversion_event")
    assert rollup["conversions"].sum() == conversions
    assert rollup["period_date"].unique().to_list() == [dt.date(2026, 3, 1)]


def test_a_range_without_data_draws_no_data_panels(demo_run: dict, tmp_path: Path) -> None:
    result = write_report(
        warehouse=demo_run["warehouse"], out=tmp_path, since=dt.date(2020, 1, 1), until=dt.date(2020, 1, 31)
    )
    rows = {d.name: d.rows for d in result.datasets}
    assert rows.pop("person_conversion_summary") > 0  # all time, not by range
    assert rows.pop("attribution_path_summary") > 0
    assert set(rows.values()) == {0}
    assert len(result.charts) == 5
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in result.charts)
    header = (result.folder / "csv" / "conversion_metrics.csv").read_text().splitlines()
    assert len(header) == 1 and header[0].startswith("id,person_id,campaign_id")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2026-02-30"], "--since must be a date as YYYY-MM-DD"),
        (["--until", "yesterday"], "--until must be a date as YYYY-MM-DD"),
        (
            ["--since", "2026-03-10", "--until", "2026-03-01"],
            "--since 2026-03-10 is after --until 2026-03-01",
        ),
        (["--format", "xlsx"], "--format must be one of csv, parquet, both, not 'xlsx'"),
        (["--period", "hourly"], "--period must be one of daily, weekly, monthly, not 'hourly'"),
    ],
)
def test_bad_arguments_get_one_clear_line(
    demo_run: dict, tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(
        app, ["report", *args, "--warehouse", str(demo_run["warehouse"]), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_cli_prints_the_files_and_where_to_look(demo_run: dict, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "report",
            "--warehouse",
            str(demo_run["warehouse"]),
            "--out",
            str(tmp_path),
            "--since",
            "2026-03-05",
            "--until",
            "2026-03-06",
            "--no-charts",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "conversion_metrics" in result.output and "daily_2026-03-05_2026-03-06" in result.output


def test_empty_or_locked_warehouse_gets_a_clear_message(tmp_path: Path, warehouse_held_open) -> None:
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    result = runner.invoke(app, ["report", "--warehouse", str(empty), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "has no marts.conversion_metrics, marts.conversion_event: run `dbt build`" in result.output
    with warehouse_held_open(empty):
        result = runner.invoke(app, ["report", "--warehouse", str(empty), "--out", str(tmp_path / "r")])
        assert result.exit_code == 2
        assert "is locked by another process" in result.output


def test_every_report_source_has_an_exposure(demo_run: dict) -> None:
    """dbt docs shows where each mart goes: every mart a report file reads is in an exposure's depends_on."""
    manifest = json.loads((demo_run["target"] / "manifest.json").read_text())
    exposed = {node for e in manifest["exposures"].values() for node in e["depends_on"]["nodes"]}
    for period in report_module.PERIODS:
        for spec in report_module.datasets(period):
            for source in spec.source.split(", "):
                schema, name = source.split(".")
                assert schema in ("marts", "reports"), (spec.name, source)
                node = f"model.convopt.{name}"
                assert node in exposed, (spec.name, node)
    assert (
        "model.convopt.meta_capi_events"
        in manifest["exposures"]["exposure.convopt.meta_conversions_api"]["depends_on"]["nodes"]
    )


def test_a_warehouse_without_any_conversion_still_gets_a_report(demo_run: dict, tmp_path: Path) -> None:
    """Marts and report models built on no data: every dataset empty but typed, charts say so, nothing crashes."""
    empty = tmp_path / "empty.duckdb"
    with duckdb.connect(str(empty)) as con:
        con.execute(f"attach '{demo_run['warehouse']}' as demo (read_only)")
        for schema in ("marts", "reports"):
            con.execute(f"create schema {schema}")
            tables = con.execute(
                "select table_name from information_schema.tables where table_catalog = 'demo' "
                "and table_schema = ?",
                [schema],
            ).fetchall()
            for (table,) in tables:
                con.execute(
                    f"create table {schema}.{table} as select * from demo.{schema}.{table} where false"
                )
    result = write_report(warehouse=empty, out=tmp_path / "r", period="weekly")
    assert result.folder.name == "weekly_no-data"
    assert {d.name: d.rows for d in result.datasets} == {
        "conversion_metrics": 0,
        "conversion_rollup_weekly": 0,
        "funnel_stats": 0,
        "attribution_by_campaign": 0,
        "attribution_path_summary": 0,
        "person_conversion_summary": 0,
        "meta_delivery_status": 0,
        "meta_match_quality": 0,
        "identity_conflicts": 0,
    }
    manifest = manifest_of(result.folder)
    assert manifest["warehouse"]["build"] is None  # no audit.dbt_build_log in this warehouse
    assert dataset(manifest, "conversion_metrics")["columns"][0] == {"name": "id", "type": "VARCHAR"}
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in result.charts)
    assert "unknown build" in (result.folder / "index.html").read_text()


def test_the_paths_file_ranks_the_paths_of_the_warehouse(demo_run: dict, daily: Path) -> None:
    paths = pl.read_csv(daily / "csv" / "attribution_path_summary.csv")
    rows = query(
        demo_run["warehouse"],
        "select path_type, path, conversions_count, conversions_rank from marts.attribution_path_summary "
        "order by path_type, conversions_rank, path",
    )
    assert paths.select("path_type", "path", "conversions_count", "conversions_rank").rows() == rows
    channel = paths.filter(pl.col("path_type") == "channel")
    assert channel["conversions_count"].to_list() == sorted(channel["conversions_count"], reverse=True)
    assert channel["conversions_count"].sum() == query(
        demo_run["warehouse"], "select count(*) from marts.attribution_paths"
    )[0][0]
