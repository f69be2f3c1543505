"""Throughput of `convopt generate` and `convopt ingest` at 1M and 10M events.

Each step runs in a fresh Python process, so the peak memory printed is that step's own.
Usage: .venv/bin/python benchmarks/generate_ingest.py [--events 1000000 10000000] [--formats parquet jsonl]
Writes scratch data under a temp dir (removed at the end) and prints a Markdown table.

With --landing DIR the generated files are kept in DIR/<events>-<format>/ and reused by later runs
(generated only when missing), so ingest alone can be measured again (--steps ingest). With
--code CHECKOUT the steps import the ``pipelines`` package of another checkout (say a git worktree
of an older commit): before and after measured on the same files, back to back.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STEP = r"""
import json, resource, sys, time, datetime as dt
from pathlib import Path
step, out, fmt, events, warehouse = sys.argv[1:6]
t0 = time.perf_counter()
if step == "generate":
    from pipelines.generate import GeneratorConfig, generate_dataset
    files = generate_dataset(Path(out), GeneratorConfig(events=int(events), seed=1, fmt=fmt,
                             start=dt.date(2026, 1, 1), days=90))
    rows = sum(f.rows for f in files if f.stream == "events")
    total = sum(f.rows for f in files)
else:
    from pipelines.ingest import ingest_paths
    report = ingest_paths([Path(out)], warehouse=Path(warehouse), progress=False)
    assert report.ok, [f.message for f in report.files if f.status == "failed"]
    rows = sum(f.rows_read for f in report.files if f.stream == "events")
    total = sum(f.rows_read for f in report.files)
seconds = time.perf_counter() - t0
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "event_rows": rows, "total_rows": total, "peak_mib": peak_mib}))
"""


def run_step(step: str, out: Path, fmt: str, events: int, warehouse: Path, code: Path | None) -> dict:
    # `python -c` puts the working directory first on sys.path: run in `code` to import its pipelines.
    proc = subprocess.run(
        [sys.executable, "-c", STEP, step, str(out.resolve()), fmt, str(events), str(warehouse.resolve())],
        capture_output=True,
        text=True,
        check=True,
        cwd=code,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--formats", nargs="+", default=["parquet", "jsonl", "csv"])
    parser.add_argument("--steps", nargs="+", default=["generate", "ingest"], choices=["generate", "ingest"])
    parser.add_argument("--landing", type=Path, help="keep generated files here and reuse them")
    parser.add_argument("--code", type=Path, help="checkout whose pipelines package runs the steps")
    args = parser.parse_args()

    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}, "
        f"{__import__('os').cpu_count()} cores"
    )
    print("| events | format | step | rows (all streams) | seconds | rows/s | peak MiB |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for events in args.events:
        for fmt in args.formats:
            scratch = Path(tempfile.mkdtemp(prefix="convopt-bench-"))
            try:
                landing = args.landing / f"{events}-{fmt}" if args.landing else scratch / "landing"
                warehouse = scratch / "wh.duckdb"
                done = landing / ".generated"  # hidden: ingest ignores it
                for step in args.steps:
                    if step == "generate" and args.landing and done.exists():
                        continue  # reuse the files of an earlier run
                    if step == "ingest" and not done.exists():
                        run_step("generate", landing, fmt, events, warehouse, args.code)
                        done.touch()
                    r = run_step(step, landing, fmt, events, warehouse, args.code)
                    if step == "generate":
                        done.touch()
                    print(
                        f"| {r['event_rows']:,} | {fmt} | {step} | {r['total_rows']:,} | {r['seconds']:.1f} | "
                        f"{r['total_rows'] / r['seconds']:,.0f} | {r['peak_mib']:,.0f} |",
                        flush=True,
                    )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
