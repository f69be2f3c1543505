"""The dbt build stage of `make demo`: on a fresh clone's first run and on a rerun with nothing new.

    .venv/bin/python benchmarks/demo_build.py [--runs 3] [--workdir DIR]

The demo's data as `make demo` generates it (3,000 persons over the 60 days ending today, 0.2 % bad rows,
seed 42), ingested once per round into a new warehouse. Each round then times the stage `dbt build` of
`convopt run` twice, as `convopt run` runs it (pipelines.run's stage: `dbt build --selector scheduled` in a
child process, then the snapshot `convopt serve` reads):

* first: a new warehouse and no dbt target folder, as in a fresh clone (dbt parses the whole project);
* rerun: the same again with nothing new landed (dbt reuses its parse; the models find nothing to add).

Per run: the stage's wall seconds, the CPU seconds of the dbt process (user + system, from the
operating system's accounting of the finished child), its peak memory, the number of nodes dbt ran and
their summed node seconds (run_results.json), and the 1-minute load average before and after. On a shared
machine compare CPU seconds: wall seconds grow with what else runs. The result is printed as Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

from pipelines.generate import GeneratorConfig, generate_dataset  # noqa: E402
from pipelines.run import RunOptions, RunResult, _dbt_build, _ingest  # noqa: E402

DEMO_PERSONS, DEMO_DAYS, DEMO_BAD_ROWS = 3000, 60, 0.002  # the Makefile's `make demo`


def load_average() -> float:
    return os.getloadavg()[0]


@contextlib.contextmanager
def output_to(log: Path):
    """dbt's child process writes to this process's stdout: send both to `log` for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    with log.open("a") as handle:
        os.dup2(handle.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def children_cpu() -> tuple[float, int]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def timed_stage(options: RunOptions, console: Console, log: Path) -> dict:
    """One `dbt build` stage of `convopt run`, as it runs there."""
    load_before = load_average()
    cpu_before, _ = children_cpu()
    started = time.monotonic()
    with output_to(log):
        _dbt_build(options, RunResult(), console)
    wall = time.monotonic() - started
    cpu_after, peak_kb = children_cpu()
    results = json.loads((options.target_path / "run_results.json").read_text())["results"]
    return {
        "stage_s": wall,
        "dbt_cpu_s": cpu_after - cpu_before,
        # the largest peak of any finished child so far (ru_maxrss of RUSAGE_CHILDREN, in KiB)
        "peak_mb": peak_kb / 1024,
        "nodes": len(results),
        "node_s": sum(r["execution_time"] for r in results),
        "load": f"{load_before:.2f} → {load_average():.2f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds of (first run, rerun)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the data and warehouses here")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="convopt-demo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    landing, log = work / "landing", work / "dbt.log"
    console = Console(file=(work / "console.log").open("a"), width=200)
    if not landing.exists():
        start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DEMO_DAYS - 1)
        config = GeneratorConfig(
            persons=DEMO_PERSONS, start=start, days=DEMO_DAYS, bad_rows_ratio=DEMO_BAD_ROWS
        )
        generate_dataset(landing, config, console=console)
    rows = []
    for round_number in range(1, args.runs + 1):
        folder = work / f"round-{round_number}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        options = RunOptions(
            warehouse=folder / "warehouse.duckdb", landing=[landing], target_path=folder / "target"
        )
        _ingest(options, RunResult(), console)
        for mode in ("first", "rerun"):
            row = timed_stage(options, console, log)
            rows.append({"round": round_number, "run": mode, **row})
            print(f"round {round_number} {mode}: " + json.dumps(row), file=sys.stderr)
    print("| round | run | dbt build stage (s) | dbt CPU (s) | peak (MB) | nodes | node s | load (1 min) |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['round']} | {r['run']} | {r['stage_s']:.1f} | {r['dbt_cpu_s']:.1f} | {r['peak_mb']:.0f} |"
            f" {r['nodes']} | {r['node_s']:.1f} | {r['load']} |"
        )


if __name__ == "__main__":
    main()
