"""Repeated kill -9 trials of ``convopt export-meta``: what a killed delivery loses and duplicates.

Each trial builds a warehouse with ``--events`` ready events (the hand-made ``marts.meta_capi_events`` of
the tests), starts ``convopt export-meta`` in a child process against a local fake Graph API that answers
each request after ``--answer-delay`` seconds (Meta processes the events when the request arrives, so a
kill while the answer is awaited leaves a batch Meta has), kills it with SIGKILL at a random moment while
it is sending, then reruns the export to completion. The fake counts every event it accepted.

Per trial it records: where the kill landed (in a request Meta had processed, or between requests),
events lost (never accepted), and duplicates (accepted twice), split into those inside the documented rule
(events of the in-flight batch, resent first with the same event_id within 48 hours, which Meta counts
once) and any outside it. Prints one JSON line per trial and a total.

Usage: .venv/bin/python benchmarks/meta_kill_trials.py [--trials 20] [--events 300] [--batch-size 50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))  # the tests' fake Graph API and warehouse helpers

from fake_graph_api import FakeGraphAPI, slow  # noqa: E402
from meta_export_helpers import TOKEN, event_row, make_warehouse, run_export  # noqa: E402

from pipelines.meta.delivery_log import inflight_journal_path  # noqa: E402


def trial(n: int, args: argparse.Namespace, rng: random.Random, work: Path) -> dict:
    fake = FakeGraphAPI().start()
    try:
        warehouse = make_warehouse(work / f"trial{n}.duckdb", [event_row(i) for i in range(args.events)])
        requests = -(-args.events // args.batch_size)
        fake.script(*[slow(args.answer_delay) for _ in range(requests)])  # processed, then answered late
        env = {**os.environ, "META_ACCESS_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "pipelines.cli", "export-meta", "--warehouse", str(warehouse)]
        command += ["--graph-base-url", fake.base_url, "--batch-size", str(args.batch_size), "--no-progress"]
        process = subprocess.Popen(
            command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while not fake.requests and time.monotonic() < deadline:  # wait until it is sending
            time.sleep(0.01)
        time.sleep(rng.uniform(0, args.answer_delay * max(1, requests - 1)))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        journal = inflight_journal_path(warehouse)
        in_flight = journal.exists()
        journaled = {r["event_id"] for r in json.loads(journal.read_text())["rows"]} if in_flight else set()
        before = Counter(fake.accepted)
        summary = run_export(warehouse, fake, batch_size=args.batch_size)
        accepted = fake.accepted
        expected = {f"evt-{i:05d}" for i in range(args.events)}
        duplicates = {e for e, count in accepted.items() if count > 1}
        inside_rule = duplicates & journaled  # the in-flight batch, resent with the same event_ids
        return {
            "trial": n,
            "killed": "in a request" if in_flight else "between requests",
            "accepted_before_kill": sum(before.values()),
            "in_flight_resent": summary.in_flight_resent,
            "lost": len(expected - set(accepted)),
            "duplicates": len(duplicates),
            "duplicates_inside_rule": len(inside_rule),
            "duplicates_outside_rule": len(duplicates - inside_rule),
            "max_copies": max(accepted.values(), default=0),
        }
    finally:
        fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--answer-delay", type=float, default=0.3, help="seconds before each answer")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    totals: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="meta_kill_") as tmp:
        for n in range(1, args.trials + 1):
            row = trial(n, args, rng, Path(tmp))
            print(json.dumps(row), flush=True)
            totals["trials"] += 1
            totals["killed in a request"] += row["killed"] == "in a request"
            for key in ("lost", "duplicates", "duplicates_inside_rule", "duplicates_outside_rule"):
                totals[key] += row[key]
    print(json.dumps({"total": dict(totals), **vars(args)}))


if __name__ == "__main__":
    main()
