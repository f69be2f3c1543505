"""`convopt run`: ingest → dbt build → export-meta → report, for cron: one lock, one exit code.

* A run holds an exclusive ``flock`` on ``<warehouse>.run.lock`` (beside the DuckDB file, the real one
  when the path is a symlink) for its whole duration; a second run exits at once (exit 2) naming the holder's pid. The lock is released by the kernel
  when the holder dies, so a killed run never blocks the next one. The file itself is never deleted.
* Stages run in order, and a failure costs only what depends on it; the exit code is 1 when any stage
  failed, 0 only when every stage that was asked for succeeded. Landing files that fail to load leave
  nothing behind, so the build still runs on the rest. A dbt build that ran but failed some models (an
  error, a failing test, or skipped after one) leaves the others built: export-meta still runs unless
  ``meta_capi_events`` is among them, and the report unless a model it reads is; a stage that does not
  run says which failed model it reads. A stage that could not work at all (dbt could not start, the
  warehouse is locked, an unexpected error) stops the run: later stages are reported as not run.
* export-meta is a dry run unless ``$META_ACCESS_TOKEN`` is set, exactly like ``convopt export-meta``. Its
  request bodies hold client IPs and user agents, so they go to a folder of their own outside the reports
  (``--dry-run-out``, ``$CONVOPT_META_DRY_RUN``, else ``meta_dry_run/`` beside the warehouse).
* After a passing ``dbt build`` the marts are published as the read-only snapshot ``convopt serve``
  answers from (:mod:`pipelines.api.snapshot`); a failed build leaves the previous snapshot.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from pipelines.warehouse import WarehouseUnavailableError, connect, warehouse_path

EXIT_OK, EXIT_STAGE_FAILED, EXIT_USAGE = 0, 1, 2
STAGES = ("ingest", "dbt build", "export-meta", "report")


class RunLockedError(RuntimeError):
    """Another `convopt run` on the same warehouse holds the lock."""


def lock_path(warehouse: str | os.PathLike[str]) -> Path:
    """The run lock of a warehouse: beside the real file (symlinks and relative spellings resolved),
    so every way of naming one warehouse meets the same lock."""
    path = Path(warehouse).resolve()
    return path.with_name(path.name + ".run.lock")


@contextmanager
def run_lock(warehouse: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the run lock of ``warehouse`` (non-blocking); RunLockedError names the holder."""
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "pid unknown"
            raise RunLockedError(
                f"another `convopt run` is running on {warehouse} ({holder}; lock file {path}); "
                "not starting a second one — wait for it or let cron try again"
            ) from None
        os.ftruncate(fd, 0)
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.pwrite(fd, f"pid {os.getpid()}, started {started}\n".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@dataclass
class RunOptions:
    warehouse: Path
    landing: list[Path]
    out: Path = Path("reports")
    period: str = "daily"
    fmt: str = "both"
    since: dt.date | None = None
    until: dt.date | None = None
    charts: bool = True
    full_refresh: bool = False
    full_tests: bool = False  # data tests check every row, not only those loaded since the last tested build
    skip_ingest: bool = False
    skip_export: bool = False
    skip_report: bool = False
    target_path: Path | None = None  # dbt artifacts (default: $DBT_TARGET_PATH or target/)
    dry_run_out: Path | None = None  # export-meta dry run (default: pipelines.meta.dry_run.dry_run_dir)


@dataclass
class StageResult:
    name: str
    status: str  # ok | failed | skipped | not run
    seconds: float = 0.0
    detail: str = ""


@dataclass
class RunResult:
    stages: list[StageResult] = field(default_factory=list)
    ingest_report: object | None = None
    export_summary: object | None = None
    report: object | None = None
    seconds: float = 0.0
    # Models a failed dbt build did not leave sound (errored, skipped, or with a failing test).
    failed_models: set[str] = field(default_factory=set)

    @property
    def exit_code(self) -> int:
        return EXIT_STAGE_FAILED if any(s.status == "failed" for s in self.stages) else EXIT_OK


class StageFailed(Exception):
    """A stage finished but did not succeed; the message is the summary's detail.

    ``carry_on``: what the stage left behind is still consistent, so later stages run where they
    can (a landing file that failed loaded nothing; a dbt build that ran but failed some models
    leaves the others built). Otherwise later stages do not run.
    """

    def __init__(self, message: str, *, carry_on: bool = False) -> None:
        super().__init__(message)
        self.carry_on = carry_on


# The model each later stage reads: it runs after a failed build only when none of these failed,
# was skipped or has a failing test in that build.
EXPORT_MODELS = ("meta_capi_events",)


def _ingest(options: RunOptions, result: RunResult, console: Console) -> str:
    from pipelines.ingest import ingest_paths

    report = ingest_paths(options.landing, warehouse=options.warehouse, progress=False, console=console)
    result.ingest_report = report
    counts = {
        status: sum(f.status == status for f in report.files) for status in ("loaded", "skipped", "failed")
    }
    detail = (
        f"{counts['loaded']} file(s) loaded, {counts['skipped']} skipped, "
        f"{sum(f.rows_loaded for f in report.files):,} rows, {sum(f.rows_rejected for f in report.files):,} rejected"
    )
    if not report.ok:
        # The failed files loaded nothing (each file is one transaction): the build goes on with the rest.
        raise StageFailed(f"{counts['failed']} file(s) could not be read; {detail}", carry_on=True)
    return detail


def _latest_build_detail(warehouse: Path, since: dt.datetime) -> str:
    """Node counts of the build just run, from its audit.dbt_build_log row ("" if it left none)."""
    from pipelines.report import latest_build

    try:
        with connect(warehouse, read_only=True) as con:
            build = latest_build(con)
    except (WarehouseUnavailableError, FileNotFoundError):
        return ""
    # An older row (this invocation crashed before its on-run-end hook) says nothing about this build.
    if not build or build["finished_at"] < since.strftime("%Y-%m-%dT%H:%M:%S"):
        return ""
    return (
        f"{build['ok_nodes']} ok, {build['warned_nodes']} warn, {build['failed_nodes']} failed, "
        f"{build['skipped_nodes']} skipped (invocation {build['invocation_id']})"
    )


def _dbt_build(options: RunOptions, result: RunResult, console: Console) -> str:
    from pipelines.dbt_runner import run_dbt

    # selectors.yml `scheduled`: every seed, model and data test, no unit tests (they prove the SQL,
    # not the data, and run in development and `make test`).
    args = ["build", "--selector", "scheduled"] + (["--full-refresh"] if options.full_refresh else [])
    # Var full_tests: every data test checks every row (macros/test_scope.sql), for a nightly or weekly run.
    args += ["--vars", "{full_tests: true}"] if options.full_tests else []
    # Colour codes only on a terminal: cron logs stay plain text.
    colors = {} if sys.stdout.isatty() else {"DBT_USE_COLORS": "false"}
    started = dt.datetime.now(dt.UTC).replace(microsecond=0)
    completed = run_dbt(args, warehouse=options.warehouse, target_path=options.target_path, extra_env=colors)
    detail = _latest_build_detail(options.warehouse, started) if completed.returncode in (0, 1) else ""
    if completed.returncode != 0:
        failed = build_failures(_target_path(options), started) if completed.returncode == 1 else None
        message = f"dbt build exited with {completed.returncode}" + (f": {detail}" if detail else "")
        if failed is None:  # dbt did not get to build (or left no results): nothing later is safe
            raise StageFailed(message)
        result.failed_models = failed
        names = ", ".join(sorted(failed)[:8]) + (", …" if len(failed) > 8 else "")
        raise StageFailed(f"{message}; failed or skipped: {names}", carry_on=True)
    # Only a passing build is published to `convopt serve`: a failed one leaves the last good snapshot.
    from pipelines.api.snapshot import publish_snapshot

    published = publish_snapshot(options.warehouse)
    return (detail or "dbt build passed") + f"; snapshot of build {published.build_id} published"


def _target_path(options: RunOptions) -> Path:
    from pipelines.warehouse import PROJECT_DIR

    return Path(options.target_path or os.environ.get("DBT_TARGET_PATH") or PROJECT_DIR / "target")


def build_failures(target: Path, since: dt.datetime) -> set[str] | None:
    """The models the dbt build just run did not leave sound: errored, skipped, or with a failing
    test (``error`` or ``fail``). None when the build left no results newer than ``since``."""
    import json

    try:
        results = json.loads((target / "run_results.json").read_text())
        manifest = json.loads((target / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    generated = results.get("metadata", {}).get("generated_at", "")
    if generated[:19] < since.strftime("%Y-%m-%dT%H:%M:%S"):
        return None
    nodes = manifest.get("nodes", {})
    failed: set[str] = set()
    for item in results.get("results", []):
        uid, status = item.get("unique_id", ""), item.get("status")
        if status not in ("error", "fail", "skipped", "runtime error"):
            continue
        node = nodes.get(uid, {})
        if node.get("resource_type") == "model":
            failed.add(node["name"])
        elif node.get("resource_type") == "test" and status != "skipped":
            attached = node.get("attached_node") or ""
            parents = [attached] if attached else node.get("depends_on", {}).get("nodes", [])
            failed.update(
                nodes[p]["name"] for p in parents if nodes.get(p, {}).get("resource_type") == "model"
            )
    return failed


def _blocked_by(result: RunResult, models: tuple[str, ...] | list[str]) -> list[str]:
    """The models among ``models`` the last build did not leave sound."""
    return sorted(set(models) & result.failed_models)


def _report_models() -> list[str]:
    from pipelines.report.datasets import REPORT_MODELS, datasets

    names = {d.source.split(".", 1)[1] for period in ("daily", "weekly", "monthly") for d in datasets(period)}
    return sorted(names | {m.split(".", 1)[1] for m in REPORT_MODELS})


def _export_meta(options: RunOptions, result: RunResult, console: Console) -> str:
    from pipelines.cli_output import print_export_summary
    from pipelines.meta.export import TOKEN_ENV, export_meta
    from pipelines.meta.graph_client import DEFAULT_API_VERSION, DEFAULT_GRAPH_BASE_URL

    token = os.environ.get(TOKEN_ENV) or None
    summary = export_meta(
        options.warehouse,
        dry_run=token is None,
        access_token=token,
        test_event_code=os.environ.get("META_TEST_EVENT_CODE") or None,
        out=options.dry_run_out,
        graph_base_url=os.environ.get("META_GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL,
        api_version=os.environ.get("META_API_VERSION") or DEFAULT_API_VERSION,
        progress=False,
        console=console,
    )
    result.export_summary = summary
    print_export_summary(summary, console)
    if summary.dry_run:
        detail = (
            f"dry run ({TOKEN_ENV} not set): would send {summary.sent:,} in {summary.requests} request(s)"
        )
    else:
        detail = f"sent {summary.sent:,} in {summary.requests} request(s)"
    detail += f", {summary.failed + summary.failed_retryable + summary.unknown:,} failed/unknown"
    detail += f", {summary.expired:,} expired, {summary.skipped:,} skipped"
    if summary.in_flight_recovered:
        detail += (
            f"; resent {summary.in_flight_resent:,} event(s) a killed run left in flight "
            "(same event_ids, inside Meta's 48-hour dedup window)"
        )
    if summary.unknown_too_old:
        detail += f"; {summary.unknown_too_old:,} unknown for 47 h or more not resent (--retry-failed)"
    if summary.exit_code != 0:
        raise StageFailed(detail)
    return detail


def _report(options: RunOptions, result: RunResult, console: Console) -> str:
    from pipelines.cli_output import print_report
    from pipelines.report import write_report

    report = write_report(
        warehouse=options.warehouse,
        out=options.out,
        period=options.period,
        fmt=options.fmt,
        since=options.since,
        until=options.until,
        charts=options.charts,
    )
    result.report = report
    print_report(report, console)
    files = sum(len(d.files) for d in report.datasets) + len(report.charts)
    return f"{report.folder} ({files} files, {sum(d.rows for d in report.datasets):,} rows)"


_KNOWN_ERRORS: tuple[type[BaseException], ...] = (
    StageFailed,
    WarehouseUnavailableError,
    FileNotFoundError,
    ValueError,
)


def run_pipeline(
    options: RunOptions,
    *,
    console: Console | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Run the stages under the run lock (RunLockedError if another run holds it); never raises on a stage."""
    console = console or Console(stderr=True, soft_wrap=True)
    options.warehouse = warehouse_path(options.warehouse)
    steps: list[tuple[str, Callable[[RunOptions, RunResult, Console], str], bool]] = [
        ("ingest", _ingest, options.skip_ingest),
        ("dbt build", _dbt_build, False),
        ("export-meta", _export_meta, options.skip_export),
        ("report", _report, options.skip_report),
    ]
    result = RunResult()
    started = clock()
    needs = {"export-meta": list(EXPORT_MODELS), "report": _report_models()}
    with run_lock(options.warehouse):
        failed = False
        for name, stage, skip in steps:
            if failed:
                result.stages.append(StageResult(name, "not run", detail="an earlier stage failed"))
                continue
            if skip:
                result.stages.append(StageResult(name, "skipped", detail="skipped by option"))
                continue
            blocked = _blocked_by(result, needs.get(name, []))
            if blocked:
                detail = f"not run: the dbt build failed {', '.join(blocked)}, which it reads"
                result.stages.append(StageResult(name, "not run", detail=detail))
                console.print(Text(f"{name}: {detail}"))
                continue
            console.rule(f"[bold]{name}")
            t0 = clock()
            try:
                detail = stage(options, result, console)
                result.stages.append(StageResult(name, "ok", clock() - t0, detail))
            except StageFailed as exc:
                failed = not exc.carry_on
                result.stages.append(StageResult(name, "failed", clock() - t0, str(exc).splitlines()[0]))
            except _KNOWN_ERRORS as exc:
                failed = True
                result.stages.append(StageResult(name, "failed", clock() - t0, str(exc).splitlines()[0]))
            except Exception as exc:  # an unexpected bug: keep the traceback for the log
                failed = True
                console.print(escape(traceback.format_exc()))
                result.stages.append(
                    StageResult(name, "failed", clock() - t0, f"{type(exc).__name__}: {exc}")
                )
    result.seconds = clock() - started
    return result
