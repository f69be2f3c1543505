"""The benchmark's records and how they are shown: the results file, and its tables in BENCHMARKS.md.

`Results` appends every measured step to a JSON-lines file (one per `--events` value) as soon as it is
measured, and reads back the latest record of every step, so engines measured in separate runs end up
in one table. `render` turns those steps into Markdown; `write_section` puts it into BENCHMARKS.md's
"Engines" section, under a subsection per `--events` value, keeping the hand-written reading below
the subsection's `KEPT_MARKER` line. benchmarks/engines.py runs the steps.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("duckdb", "postgres", "spark")


# --- the results file -------------------------------------------------------------------------------


@dataclass
class Step:
    engine: str
    step: str
    seconds: float
    peak_mib: float
    run: str = ""  # the run that measured it (set by Results.step)


class Results:
    """The JSON-lines file of one `--events` value: a `run` record per run, then its `step` and
    `floor` records, each appended (and flushed) as soon as it is measured."""

    def __init__(self, path: Path):
        self.path = path
        self.run_id = ""

    def _append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(json.dumps(record) + "\n")

    def run(self, started: dt.datetime, load: float, engines: list[str], counts: dict[str, int]) -> None:
        self.run_id = started.isoformat(timespec="seconds")
        self._append(
            {
                "type": "run",
                "run": self.run_id,
                "load_at_start": round(load, 2),
                "engines": engines,
                "counts": counts,
            }
        )

    def step(self, step: Step) -> Step:
        step = replace(step, run=self.run_id)
        self._append({"type": "step", **step.__dict__})
        return step

    def floor(self, result: tuple[float, int, int, int]) -> None:
        self._append({"type": "floor", "run": self.run_id, "result": list(result)})

    def latest(self) -> tuple[list[dict], dict[str, int], list[Step], tuple | None]:
        """(runs that contributed a kept record, counts, steps, the latest floor).

        Steps: the latest record of every load and build step; the ingest records of the runs those
        came from (each engine's total uses its own run's ingest), or, for a part no run has got
        past the ingest of, the latest ingest.
        """
        if not self.path.exists():
            raise SystemExit(f"{self.path}: no results yet; run the benchmark first")
        runs: dict[str, dict] = {}
        steps: dict[tuple[str, str], dict] = {}
        floor_record = None
        ingests: dict[tuple[str, str], dict] = {}
        for number, line in enumerate(self.path.read_text().splitlines(), start=1):
            try:
                record = json.loads(line)
                kind = record["type"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise SystemExit(f"{self.path}:{number}: not a results record ({error})") from error
            if kind == "run":
                runs[record["run"]] = record
            elif kind == "step" and record["step"].startswith("ingest ("):
                ingests[(record["run"], record["step"])] = record
            elif kind == "step":
                steps[(record["engine"], record["step"])] = record
            elif kind == "floor":
                floor_record = record
        if not steps and not ingests:
            raise SystemExit(f"{self.path}: no step recorded yet")
        building = {record["run"] for record in steps.values()}
        for step in {step for _, step in ingests}:
            recorded = [(run, record) for (run, same), record in ingests.items() if same == step]
            for run, record in [item for item in recorded if item[0] in building] or recorded[-1:]:
                steps[(run, step)] = record
        used = {record["run"] for record in steps.values()} | (
            {floor_record["run"]} if floor_record else set()
        )
        kept = [runs[run] for run in sorted(used) if run in runs]
        counts = kept[-1]["counts"]
        if any(run["counts"] != counts for run in kept):
            raise SystemExit(f"{self.path}: runs with different generated data; delete the file and rerun")
        fields = ("engine", "step", "seconds", "peak_mib", "run")
        ordered = [Step(**{k: record[k] for k in fields}) for record in steps.values()]
        ordered.sort(key=_step_order)
        return kept, counts, ordered, tuple(floor_record["result"]) if floor_record else None


def _step_order(step: Step) -> tuple[int, int, int]:
    name, _, part = step.step.partition(" (")
    return (
        ["full)", "incremental)"].index(part),
        ENGINES.index(step.engine),
        ["ingest", "load", "dbt build"].index(name),
    )


# --- BENCHMARKS.md -----------------------------------------------------------------------------


def write_results(results: Results, events: int) -> None:
    """Render the latest record of every step into BENCHMARKS.md."""
    runs, counts, steps, floor_result = results.latest()
    table = render(events, counts, steps, floor_result)
    write_section(table, runs, events)
    print(f"BENCHMARKS.md: {events:,} events written from {len(runs)} run(s) in {results.path}")


def render(events: int, counts: dict[str, int], steps: list[Step], floor_result) -> str:
    """Markdown: every step, then the pipeline totals per engine with their ratio to DuckDB.

    PostgreSQL's and Spark's raw data come through DuckDB (ingest, then load-target / the Parquet
    load), so their totals include the DuckDB ingest of the same files, the one measured in the same
    run as their build. When runs differ, each ingest row says whose totals it is part of.
    """
    by = {(s.engine, s.step): s for s in steps if not s.step.startswith("ingest (")}
    ingests = {(s.run, s.step): s for s in steps if s.step.startswith("ingest (")}
    totals: dict[tuple[str, str], tuple[float, float, str]] = {}
    users: dict[tuple[str, str], list[str]] = {}
    for part in ("full", "incremental"):
        for engine, names in (
            ("duckdb", ["dbt build"]),
            ("postgres", ["load", "dbt build"]),
            ("spark", ["load", "dbt build"]),
        ):
            parts = [by.get((engine, f"{name} ({part})")) for name in names]
            if None in parts:
                continue
            key = (parts[-1].run, f"ingest ({part})")
            if key not in ingests:
                continue
            ingest = ingests[key]
            users.setdefault(key, []).append(engine)
            seconds = ingest.seconds + sum(p.seconds for p in parts)
            peak = max([ingest.peak_mib] + [p.peak_mib for p in parts])
            totals[(engine, part)] = (seconds, peak, parts[-1].run)
    several = {step for step, runs in Counter(step for _, step in ingests).items() if runs > 1}

    def label(s: Step) -> str:
        if s.step in several and (s.run, s.step) in users:
            return f"{s.step} for {', '.join(users[(s.run, s.step)])}"
        return s.step

    lines = [
        f"{counts['first']:,} events landed first, then {counts['last']:,} more "
        f"({counts['last'] / counts['first']:.1%}); `--events {events}`.",
        "",
        "| engine | step | seconds | peak MiB |",
        "|---|---|---:|---:|",
    ]
    lines += [f"| {s.engine} | {label(s)} | {s.seconds:.1f} | {s.peak_mib:,.0f} |" for s in steps]
    lines += ["", "| engine | pipeline | seconds | ratio to DuckDB | peak MiB |", "|---|---|---:|---:|---:|"]
    other_runs = False
    for (engine, part), (seconds, peak, run) in totals.items():
        reference = totals.get(("duckdb", part))
        ratio = f"{seconds / reference[0]:.1f}" if reference else ""
        if reference and reference[2] != run:
            ratio += " ¹"
            other_runs = True
        what = {
            "duckdb": "ingest + dbt build",
            "postgres": "ingest + load-target + dbt build",
            "spark": "ingest + Parquet load + dbt build",
        }[engine]
        lines.append(f"| {engine} | {part}: {what} | {seconds:.1f} | {ratio} | {peak:,.0f} |")
    if other_runs:
        lines += [
            "",
            "¹ against a DuckDB build from another run, which may have been on another machine or under "
            "another load: measure DuckDB in the same run (`--engines duckdb,…`) for a ratio that compares "
            "like with like.",
        ]
    text = "\n".join(lines)
    if floor_result:
        seconds, rows, only_floor, only_mart = floor_result
        full = by[("duckdb", "dbt build (full)")]
        text += (
            f"\n\nDuckDB's floor: one hand-written query computing conversion_rollup_daily from the raw tables "
            f"({rows:,} rows; {only_floor} rows only in the query, {only_mart} only in the mart) took "
            f"**{seconds:.2f} s**, against {full.seconds:.1f} s for the full `dbt build` "
            f"({full.seconds / seconds:.0f} times as long)."
        )
    return text


ENGINES_HEADER = "## Engines: one set of models on DuckDB, PostgreSQL and Spark"
KEPT_MARKER = "<!-- engines.py --write replaces the figures above and keeps the text below -->"


def write_section(table: str, runs: list[dict], events: int, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Put the run's table into BENCHMARKS.md's "Engines" section, under a subsection per `--events`
    value: a 10M run replaces the previous 10M figures and leaves the 1M ones alone. Whatever follows
    the subsection's KEPT_MARKER line (the hand-written reading) stays after the new figures."""
    text = path.read_text()
    machine = (
        f"Command: `.venv/bin/python benchmarks/engines.py --events {events} --write`. Machine: {os.cpu_count()} "
        f"cores, {platform.machine()}, Python {platform.python_version()}, duckdb {duckdb.__version__}, PostgreSQL "
        f"15 (Debian binaries; server started by `python -m pipelines.engines.servers postgres start`: fsync off, "
        f"jit off), Spark 4.3 (pyspark's standalone cluster from `python -m pipelines.engines.servers spark start`: "
        f"one worker with 2 cores and 3 GiB, "
        f"the Thrift server with a 2 GiB driver; dbt-spark). "
        + "; ".join(
            f"`--engines {','.join(run['engines'])}` started {run['run'][:16].replace('T', ' ')} UTC, "
            f"1-minute load average then {run['load_at_start']:.1f}"
            for run in runs
        )
        + "."
    )
    subsection = f"### {events:,} events"
    block = f"{subsection}\n\n{machine}\n\n{table}\n\n{KEPT_MARKER}\n"
    if ENGINES_HEADER not in text:
        path.write_text(text.rstrip("\n") + f"\n\n{ENGINES_HEADER}\n\n{block}")
        return
    start = text.index(ENGINES_HEADER)
    end = text.find("\n## ", start + len(ENGINES_HEADER))
    end = len(text) if end == -1 else end + 1
    section = text[start:end]
    if subsection + "\n" in section:
        sub_start = section.index(subsection + "\n")
        sub_end = section.find("\n### ", sub_start + len(subsection))
        sub_end = len(section) if sub_end == -1 else sub_end + 1
        kept = section[sub_start:sub_end].partition(KEPT_MARKER + "\n")[2].strip("\n")  # "" without a marker
        if kept:
            block += f"\n{kept}\n"
        section = section[:sub_start] + block + ("\n" if sub_end < len(section) else "") + section[sub_end:]
    else:
        section = section.rstrip("\n") + f"\n\n{block}"
    if not section.endswith("\n\n") and end < len(text):
        section = section.rstrip("\n") + "\n\n"
    path.write_text(text[:start] + section + text[end:])
