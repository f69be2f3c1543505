"""The scheduled build (`dbt build --selector scheduled`, what `convopt run` builds), full and incremental.

    .venv/bin/python benchmarks/build.py [--events 1000000] [--part-events 10000000] [--workdir DIR] [--write]

Data, generated once per run (seeded, Parquet):

* history: `--events` events over 60 days from 2026-01-01, 100 files per stream (as benchmarks/engines.py
  lands them: a build reads the newest load of the previous build again, so that load is about 1 %).
  The generator simulates a data set in memory (30M events in one piece took more than 10 GB and was
  killed for lack of memory), so a history of more than `--part-events` (default 10M) is generated as
  parts of equal size over the same 60 days, each from its own seed (its own persons and campaign tree,
  as if several advertisers shared the warehouse), in its own folder and its own process, with the 100
  files per stream shared among them;
* about 1 % more, landed after the full build: 0.9 % for the next day (2026-03-02) and 0.1 % of late
  data for old days (2026-01-20 to 2026-01-29, with their ad spend restated), each from its own seed.

Steps, each a child process: ingest of the history, full `dbt build --selector scheduled`, ingest of the
1 %, incremental `dbt build --selector scheduled`, then the same build again with nothing new landed: what a
scheduled run costs whatever arrived (parsing, one query or more per node, the rows every run recomputes),
the floor under the incremental build. Last, dbt's own floor for as many models, data tests and seeds
(benchmarks/dbt_floor.py: a trivial project of those node counts, built with its parse kept), which no
build of this project under dbt can go below. Each build starts from the parse dbt saved in the previous one
(its partial_parse.msgpack copied into the build's own target folder), as a scheduled run whose target
folder persists does: only the first build parses the whole project. Every build has the same reference
time for Meta's window (var `meta_export_as_of`, the day after the 1 % batch): dbt parses the whole
project again whenever a var changes, which a scheduled run, passing none, never pays. Per build:
wall time, node time by resource type and the five slowest nodes (dbt's run_results.json), peak
memory (benchmarks/engines.py's sampler: the largest sum of proportional set sizes of dbt's process
tree, every 0.2 s), and the incremental/full ratio. DuckDB's floor (benchmarks/engines.py's FLOOR_SQL:
conversion_rollup_daily computed straight from the raw tables in one hand-written query, checked row
for row against the mart) is run after each build. The result is printed as Markdown; `--write` puts
it into BENCHMARKS.md's section "Scheduled build at <N> events" (replacing that section, leaving the
rest of the file as it is).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(ROOT))

import dbt_floor  # noqa: E402  (benchmarks/dbt_floor.py: dbt's own cost for a number of nodes)
import engines as engine_bench  # noqa: E402  (benchmarks/engines.py: the memory sampler, steps, floor)

from pipelines.generate import GeneratorConfig, generate_dataset  # noqa: E402

BIN = Path(sys.executable).parent
HISTORY_START, HISTORY_DAYS = dt.date(2026, 1, 1), 60
LATER_SHARE, LATE_SHARE = 0.009, 0.001
LATE_START, LATE_DAYS = dt.date(2026, 1, 20), 10
# dbt's resource types in unique ids, as the table names them (unit tests: none in `scheduled`).
RESOURCE_TYPES = {
    "model": "models",
    "test": "data tests",
    "unit_test": "unit tests",
    "seed": "seeds",
    "operation": "hooks",
}
SLOWEST = 5
# dbt's saved parse, which a build reuses when nothing it depends on changed (partial parsing).
PARSE_FILE = "partial_parse.msgpack"


# --- what a build's run_results.json says -------------------------------------------------------------


@dataclass
class BuildResult:
    """One dbt build: wall seconds and peak memory (measured around the process), node times (from dbt)."""

    name: str
    wall_seconds: float
    peak_mib: float
    node_seconds: dict[str, float]  # RESOURCE_TYPES value -> summed execution_time
    nodes: dict[str, int]  # RESOURCE_TYPES value -> node count
    slowest: list[tuple[str, str, float]]  # (node name, resource type, seconds), slowest first
    floor: tuple[float, int, int, int] | None = None  # engines.floor after this build


def node_times(run_results: dict, slowest: int = SLOWEST) -> tuple[dict[str, float], dict[str, int], list]:
    """(seconds per resource type, node count per resource type, the `slowest` nodes) of a run_results.json.

    Resource types are named as in RESOURCE_TYPES (every one present, 0 when absent); a node's name is
    the third part of its unique id (`model.convopt.conversion_metrics` → conversion_metrics)."""
    seconds = dict.fromkeys(RESOURCE_TYPES.values(), 0.0)
    counts = dict.fromkeys(RESOURCE_TYPES.values(), 0)
    nodes = []
    for result in run_results["results"]:
        unique_id = result["unique_id"]
        prefix = unique_id.split(".", 1)[0]
        kind = RESOURCE_TYPES.get(prefix, prefix)
        seconds[kind] = seconds.get(kind, 0.0) + result["execution_time"]
        counts[kind] = counts.get(kind, 0) + 1
        name = unique_id.split(".")[2] if unique_id.count(".") >= 2 else unique_id
        nodes.append((name, kind, result["execution_time"]))
    nodes.sort(key=lambda node: (-node[2], node[0]))
    return seconds, counts, nodes[:slowest]


# --- the Markdown ---------------------------------------------------------------------------------------


def _ratio(incremental: float, full: float) -> str:
    return f"{incremental / full:.2f}" if full else ""


def render(
    events: dict[str, int],
    ingest: dict[str, float],
    full: BuildResult,
    incremental: BuildResult,
    unchanged: BuildResult | None = None,
    dbt_cost: dbt_floor.Floor | None = None,
) -> str:
    """The run as Markdown: one table comparing the two builds, then the slowest nodes of each, then the
    build with nothing new (`unchanged`) and dbt's own floor for as many nodes (`dbt_cost`) when given."""
    added = events["later"] + events["late"]
    lines = [
        f"{events['history']:,} events landed first, then {added:,} more ({added / events['history']:.1%}: "
        f"{events['later']:,} for the next day, {events['late']:,} late for old days).",
        "",
        "| | full build | incremental build | incremental / full |",
        "|---|---:|---:|---:|",
        f"| ingest before the build (s) | {ingest['full']:.1f} | {ingest['incremental']:.1f} | |",
        f"| **dbt build, wall (s)** | **{full.wall_seconds:.1f}** | **{incremental.wall_seconds:.1f}** "
        f"| **{_ratio(incremental.wall_seconds, full.wall_seconds)}** |",
    ]
    for kind in RESOURCE_TYPES.values():
        if kind == "unit tests" and not full.nodes.get(kind) and not incremental.nodes.get(kind):
            lines.append("| node time: unit tests (s) | none in `scheduled` | none in `scheduled` | |")
            continue
        a, b = full.node_seconds.get(kind, 0.0), incremental.node_seconds.get(kind, 0.0)
        count = full.nodes.get(kind, 0)
        lines.append(f"| node time: {kind}, {count} nodes (s) | {a:.1f} | {b:.1f} | {_ratio(b, a)} |")
    lines.append(
        f"| peak memory of dbt (MiB) | {full.peak_mib:,.0f} | {incremental.peak_mib:,.0f} "
        f"| {_ratio(incremental.peak_mib, full.peak_mib)} |"
    )
    if full.floor and incremental.floor:
        lines.append(
            f"| DuckDB floor: the daily rollup from raw in one query (s) | {full.floor[0]:.2f} "
            f"| {incremental.floor[0]:.2f} | |"
        )
    lines += ["", "| build | slowest nodes | type | seconds |", "|---|---|---|---:|"]
    for build in (full, incremental):
        for rank, (name, kind, seconds) in enumerate(build.slowest, start=1):
            lines.append(f"| {build.name if rank == 1 else ''} | {rank}. {name} | {kind} | {seconds:.1f} |")
    if unchanged is not None:
        lines += [
            "",
            f"The same build once more with nothing new landed: {unchanged.wall_seconds:.1f} s wall "
            f"({_ratio(unchanged.wall_seconds, full.wall_seconds)} of the full build, "
            f"{_ratio(unchanged.wall_seconds, incremental.wall_seconds)} of the incremental one); node time "
            f"{unchanged.node_seconds.get('models', 0.0):.1f} s in models, "
            f"{unchanged.node_seconds.get('data tests', 0.0):.1f} s in data tests; peak memory "
            f"{unchanged.peak_mib:,.0f} MiB. What the incremental build costs beyond it, "
            f"{incremental.wall_seconds - unchanged.wall_seconds:.1f} s, is the cost of the new data.",
        ]
    if dbt_cost is not None:
        lines += [
            "",
            f"dbt's own floor for as many nodes (benchmarks/dbt_floor.py: {dbt_cost.models} table models that "
            f"select a constant, {dbt_cost.tests} data tests that read one and find nothing, {dbt_cost.seeds} "
            f"one-row seeds, the same adapter and threads): {dbt_cost.rerun_seconds:.1f} s wall with its parse "
            f"kept ({dbt_cost.first_seconds:.1f} s from nothing), "
            f"{_ratio(dbt_cost.rerun_seconds, full.wall_seconds)} of the full build. No build of this many "
            "nodes under dbt costs less, so the incremental / full ratio cannot fall below that share.",
        ]
    if full.floor and incremental.floor:
        checks = []
        for build in (full, incremental):
            seconds, rows, only_floor, only_mart = build.floor
            checks.append(
                f"after the {build.name} build, {seconds:.2f} s for {rows:,} rows ({only_floor} only in the "
                f"query, {only_mart} only in the mart); the build took {build.wall_seconds / seconds:,.0f} "
                "times as long"
            )
        lines += [
            "",
            "DuckDB's floor (benchmarks/engines.py's FLOOR_SQL: conversion_rollup_daily from the raw tables and "
            "seeds, compared with the mart by EXCEPT ALL both ways): " + "; ".join(checks) + ".",
        ]
    return "\n".join(lines)


def replace_section(text: str, heading: str, body: str) -> str:
    """`text` with the section that starts at the line `heading` replaced by `heading` + `body`.

    The section runs to the next heading of the same or a higher level (or the end). Without such a
    section, it is appended after a blank line. Everything outside the section is kept byte for byte."""
    level = len(heading) - len(heading.lstrip("#"))
    section = f"{heading}\n\n{body.strip(chr(10))}\n"
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == heading]
    if not starts:
        if not text:
            return section
        return text + ("" if text.endswith("\n") else "\n") + "\n" + section
    start = starts[0]
    end = len(lines)
    for i in range(start + 1, len(lines)):
        hashes = len(lines[i]) - len(lines[i].lstrip("#"))
        if 0 < hashes <= level and lines[i][hashes : hashes + 1] == " ":
            end = i
            break
    following = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + following if following else "")


def section_heading(events: int) -> str:
    return f"## Scheduled build at {events:,} events"


# --- the run ---------------------------------------------------------------------------------------------


def _count_events(folder: Path) -> int:
    files = sorted(str(p) for p in folder.glob("events*.parquet"))
    with duckdb.connect() as con:
        return con.execute("select count(*) from read_parquet(?)", [files]).fetchone()[0]


HISTORY_FILES = 100
PART_EVENTS = 10_000_000


def history_parts(events: int, part_events: int = PART_EVENTS) -> list[tuple[str, int, int, int]]:
    """The history's parts: (folder, events, seed, files per stream), at most ``part_events`` each.

    One part is the folder `history` with seed 42, as before parts existed; more are `history-01`, … with
    seeds 42, 142, 242, … and sizes that differ by at most one event.
    """
    if part_events < 1:
        raise ValueError(f"part_events: expected a positive number of events, got {part_events}")
    count = -(-events // part_events)
    if count == 1:
        return [("history", events, 42, HISTORY_FILES)]
    files = -(-HISTORY_FILES // count)
    size, extra = divmod(events, count)
    return [
        (f"history-{index + 1:02d}", size + (1 if index < extra else 0), 42 + 100 * index, files)
        for index in range(count)
    ]


def generate(landing: Path, events: int, part_events: int = PART_EVENTS) -> tuple[dict[str, int], list[str]]:
    """The batches (see the module docstring), each in its own folder: events per batch and the history's folders."""
    end = HISTORY_START + dt.timedelta(days=HISTORY_DAYS)
    parts = history_parts(events, part_events)
    configs = {
        folder: GeneratorConfig(
            events=part_size,
            seed=seed,
            start=HISTORY_START,
            days=HISTORY_DAYS,
            fmt="parquet",
            files_per_stream=files,
        )
        for folder, part_size, seed, files in parts
    }
    configs["later"] = GeneratorConfig(
        events=max(1, round(events * LATER_SHARE)), seed=43, start=end, days=1, fmt="parquet"
    )
    configs["late"] = GeneratorConfig(
        events=max(1, round(events * LATE_SHARE)),
        seed=44,
        start=LATE_START,
        days=LATE_DAYS,
        fmt="parquet",
    )
    counts = {}
    # Each batch in a fresh process, so one part's memory is returned before the next is simulated.
    with ProcessPoolExecutor(max_workers=1, max_tasks_per_child=1) as pool:
        for name, config in configs.items():
            pool.submit(generate_dataset, landing / name, config).result()
            counts[name] = _count_events(landing / name)
    history = [folder for folder, *_ in parts]
    counts = {"history": sum(counts.pop(folder) for folder in history), **counts}
    return counts, history


def build(name: str, env: dict[str, str], target: Path, as_of: dt.date, previous: Path | None) -> BuildResult:
    """One `dbt build --selector scheduled` with its artifacts in `target`, starting from the parse
    saved by the build whose target folder is `previous` (none: a full parse)."""
    target.mkdir(parents=True, exist_ok=True)
    if previous is not None and (previous / PARSE_FILE).exists():
        shutil.copy2(previous / PARSE_FILE, target / PARSE_FILE)
    variables = json.dumps({"meta_export_as_of": f"{as_of.isoformat()} 00:00:00+00"})
    command = [str(BIN / "dbt"), "build", "--selector", "scheduled", "--vars", variables]
    step = engine_bench.run_step(
        "duckdb",
        f"dbt build ({name})",
        command,
        {**env, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(target / "logs")},
        [],
    )
    seconds, counts, slowest = node_times(json.loads((target / "run_results.json").read_text()))
    return BuildResult(name, step.seconds, step.peak_mib, seconds, counts, slowest)


def _commit() -> str:
    found = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return found.stdout.strip() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--part-events",
        type=int,
        default=PART_EVENTS,
        help="generate a larger history in parts of at most this many events (default: %(default)s)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir, deleted at the end")
    parser.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    args = parser.parse_args()
    if args.events < 1000:
        parser.error("--events: at least 1000, so the 1 % batches are not empty")
    if args.part_events < 1000:
        parser.error("--part-events: at least 1000 events per part of the history")

    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"--workdir: {args.workdir} is not empty; the benchmark needs a fresh warehouse")
    started, load_at_start = dt.datetime.now(dt.UTC), os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="convopt-bench-build-")) if args.workdir is None else args.workdir
    work.mkdir(parents=True, exist_ok=True)
    landing, warehouse = work / "landing", work / "warehouse.duckdb"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DBT_PROFILES_DIR": str(ROOT),
        "CONVOPT_WAREHOUSE": str(warehouse),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env.pop("CONVOPT_TARGET", None)
    try:
        print(f"generating {args.events:,} events (+1 %) into {landing}", flush=True)
        counts, history = generate(landing, args.events, args.part_events)
        convopt = str(BIN / "convopt")
        ingest, builds = {}, {}
        # The day after the 1 % batch's day, for every build (see the module's docstring).
        as_of = HISTORY_START + dt.timedelta(days=HISTORY_DAYS + 1)
        for name, folders, previous in (
            ("full", history, None),
            ("incremental", ["later", "late"], work / "target-full"),
        ):
            paths = [str(landing / folder) for folder in folders]
            ingest[name] = engine_bench.run_step(
                "duckdb", f"ingest ({name})", [convopt, "ingest", "--no-progress", *paths], env, []
            ).seconds
            builds[name] = build(name, env, work / f"target-{name}", as_of, previous)
            builds[name].floor = engine_bench.floor(warehouse)
        builds["unchanged"] = build(
            "unchanged", env, work / "target-unchanged", as_of, work / "target-incremental"
        )
        nodes = builds["unchanged"].nodes
        print("dbt's floor for as many nodes", flush=True)
        dbt_cost = dbt_floor.measure(nodes["models"], nodes["data tests"], nodes["seeds"])
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    table = render(counts, ingest, builds["full"], builds["incremental"], builds["unchanged"], dbt_cost)
    about = (
        f"Command: `.venv/bin/python benchmarks/build.py --events {args.events}{' --write' if args.write else ''}`, "
        f"commit {_commit()}. "
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}; started {started:%Y-%m-%d %H:%M} UTC, 1-minute load average then "
        f"{load_at_start:.1f}."
    )
    print(f"\n{section_heading(args.events)}\n\n{about}\n\n{table}")
    if args.write:
        path = ROOT / "BENCHMARKS.md"
        path.write_text(
            replace_section(path.read_text(), section_heading(args.events), f"{about}\n\n{table}")
        )
        print(f"\nBENCHMARKS.md: section {section_heading(args.events)!r} written")


if __name__ == "__main__":
    main()
