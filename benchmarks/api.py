"""The conversions API under load: `convopt serve` as a real process, driven over loopback HTTP.

    .venv/bin/python benchmarks/api.py [--seconds 10] [--connections 256] [--batch-connections 8] [--workdir DIR] [--write]

Steps:

1. A small warehouse is built by `convopt run` (200 persons over 7 days; skipped when `--workdir`
   already holds one) and `convopt serve` is started on it on a free loopback port.
2. **Single rows**: `--connections` keep-alive connections each POST one conversion at a time (a new
   `event_id` each) for `--seconds`: accepted conversions per second and latency percentiles.
3. **Batches of 1,000**: `--batch-connections` connections POST JSON arrays of 1,000 conversions: rows
   per second and request latency.
   For both: the server's CPU time (all threads, from /proc) per accepted row, which a loaded machine
   moves much less than the wall-clock rates, and the rows per second one server CPU second buys.
4. **kill -9 under load**: single-row load again, the server is killed with SIGKILL halfway; every
   conversion answered 201 before that is *acknowledged*. The server is restarted (a replay of one
   acknowledged key must answer the same id), stopped, and `convopt run` ingests the landing folder and
   builds: every acknowledged conversion must be in `marts.conversion_event` exactly once, under the id
   the API answered.

The client is asyncio on raw sockets (a prepared request per row, HTTP/1.1 keep-alive), so it costs
little beside the server, but it runs on the same 2 cores: the figures are what one machine does as
both client and server. The result is printed as Markdown; `--write` puts it into BENCHMARKS.md's
section "Conversions API" (replacing that section, leaving the rest of the file as it is).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(ROOT))

from build import replace_section  # noqa: E402  (benchmarks/build.py: one section of BENCHMARKS.md)

from pipelines.generate import GeneratorConfig, generate_dataset  # noqa: E402

BIN = Path(sys.executable).parent
HEADING = "## Conversions API"
TARGET_REQUESTS, TARGET_ROWS = 2_000, 100_000


def conversion(event_id: str, now: str) -> dict:
    return {
        "event_id": event_id,
        "person_id": "bench-person",
        "conversion_type": "purchase",
        "conversion_source": "capi",
        "value_cents": 2999,
        "currency": "USD",
        "campaign_id": "campaign_123",
        "utm_campaign": "summer_sale",
        "conversion_time": now,
    }


def request_bytes(body: bytes, path: str = "/api/conversions") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Load:
    """What one load phase saw: per request its latency, and the acknowledged event_id → id."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    rows_acknowledged: int = 0
    errors: int = 0
    acknowledged: dict[str, str] = field(default_factory=dict)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def _connection(
    port: int, rows_per_request: int, until: float, load: Load, prefix: str, keep: bool
) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        load.errors += 1
        return
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    n = 0
    try:
        while time.monotonic() < until:
            ids = [f"{prefix}-{n + i}" for i in range(rows_per_request)]
            n += rows_per_request
            rows = [conversion(e, now) for e in ids]
            body = json.dumps(rows[0] if rows_per_request == 1 else rows).encode()
            started = time.monotonic()
            writer.write(request_bytes(body))
            await writer.drain()
            status, answer = await _read_response(reader)
            load.latencies.append(time.monotonic() - started)
            if status == 201:
                load.rows_acknowledged += rows_per_request
                if keep:
                    parsed = json.loads(answer)
                    for row in [parsed] if rows_per_request == 1 else parsed["rows"]:
                        load.acknowledged[row["event_id"]] = row["id"]
            else:
                load.errors += 1
    except (OSError, asyncio.IncompleteReadError, ConnectionError):
        load.errors += 1  # the server went away: the request in flight was never acknowledged
    finally:
        writer.close()


async def _drive(port: int, connections: int, rows_per_request: int, seconds: float, keep: bool) -> Load:
    load = Load()
    run = uuid.uuid4().hex[:8]
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(
        *(_connection(port, rows_per_request, until, load, f"b{run}-{c}", keep) for c in range(connections))
    )
    load.seconds = time.monotonic() - started
    return load


def drive(port: int, connections: int, rows_per_request: int, seconds: float, keep: bool = False) -> Load:
    return asyncio.run(_drive(port, connections, rows_per_request, seconds, keep))


def start_server(warehouse: Path, landing: Path, port: int, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVOPT_API_", "META_"))}
    process = subprocess.Popen(
        [
            *(str(BIN / "convopt"), "serve", "--port", str(port)),
            *("--warehouse", str(warehouse), "--landing", str(landing)),
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"convopt serve did not start:\n{log.read_text()[-3000:]}")


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) the process has used so far; None where /proc is missing.

    Per accepted row it is the figure least moved by what else runs on the machine: a loaded machine
    stretches the wall time, not the work."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_row(before: float | None, after: float | None, rows: int) -> float | None:
    """Microseconds of server CPU per accepted row."""
    if before is None or after is None or not rows:
        return None
    return (after - before) / rows * 1e6


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def convopt_run(workdir: Path, landing: Path) -> None:
    env = {**os.environ, "DBT_PROFILES_DIR": str(ROOT), "DBT_TARGET_PATH": str(workdir / "target")}
    env = {k: v for k, v in env.items() if not k.startswith("META_")}
    subprocess.run(
        [
            *(
                str(BIN / "convopt"),
                "run",
                "--landing",
                str(landing),
                "--warehouse",
                str(workdir / "wh.duckdb"),
            ),
            *("--out", str(workdir / "reports"), "--skip-report", "--skip-export"),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per load phase")
    parser.add_argument("--connections", type=int, default=256, help="connections posting single rows")
    parser.add_argument("--batch-connections", type=int, default=8, help="connections posting batches")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the warehouse here (reused)")
    parser.add_argument("--write", action="store_true", help="put the result into BENCHMARKS.md")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="convopt-api-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "wh.duckdb"
    if not warehouse.exists():
        seed_landing = workdir / "seed-landing"
        generate_dataset(
            seed_landing,
            GeneratorConfig(persons=200, seed=11, start=dt.date.today() - dt.timedelta(days=6), days=7),
        )
        convopt_run(workdir, seed_landing)
    landing = workdir / f"landing-{uuid.uuid4().hex[:6]}"
    log = workdir / "serve.log"
    load_before = os.getloadavg()[0]
    started_at = dt.datetime.now(dt.UTC)

    port = free_port()
    server = start_server(warehouse, landing, port, log)
    try:
        drive(port, 8, 1, 1.0)  # warm-up
        cpu_start = cpu_seconds(server.pid)
        single = drive(port, args.connections, 1, args.seconds)
        cpu_single = cpu_seconds(server.pid)
        batches = drive(port, args.batch_connections, 1000, args.seconds)
        cpu_batches = cpu_seconds(server.pid)
    finally:
        server.terminate()
        server.wait()

    # kill -9 under load, restart, replay, convopt run: nothing acknowledged may be lost or doubled.
    kill_landing = workdir / f"landing-kill-{uuid.uuid4().hex[:6]}"
    port = free_port()
    server = start_server(warehouse, kill_landing, port, log)

    async def load_and_kill() -> Load:
        async def killer() -> None:
            await asyncio.sleep(args.seconds / 2)
            server.send_signal(signal.SIGKILL)

        load, _ = await asyncio.gather(_drive(port, args.connections, 1, args.seconds, True), killer())
        return load

    killed = asyncio.run(load_and_kill())
    server.wait()
    port = free_port()
    server = start_server(warehouse, kill_landing, port, log)
    try:
        event_id, cid = next(iter(killed.acknowledged.items()))
        replay = httpx.post(
            f"http://127.0.0.1:{port}/api/conversions",
            json=conversion(event_id, dt.datetime.now(dt.UTC).isoformat()),
        )
        replay_ok = replay.status_code == 200 and replay.json()["id"] == cid
    finally:
        server.terminate()
        server.wait()
    run_started = time.monotonic()
    convopt_run(workdir, kill_landing)
    run_seconds = time.monotonic() - run_started
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("create temp table acked (event_id varchar, id varchar)")
        con.executemany("insert into acked values (?, ?)", list(killed.acknowledged.items()))
        lost, doubled, other_id = con.execute(
            """
            with found as (
                select event_id, count(*) as copies, any_value(id) as id
                from marts.conversion_event where event_id in (select event_id from acked) group by event_id
            )
            select
                count(*) filter (where found.event_id is null),
                count(*) filter (where found.copies > 1),
                count(*) filter (where found.id <> acked.id)
            from acked left join found on acked.event_id = found.event_id
            """
        ).fetchone()
    load_after = os.getloadavg()[0]

    requests_per_second = len(single.latencies) / single.seconds
    rows_per_second = batches.rows_acknowledged / batches.seconds
    cpu = {
        "single": cpu_per_row(cpu_start, cpu_single, single.rows_acknowledged),
        "batches": cpu_per_row(cpu_single, cpu_batches, batches.rows_acknowledged),
    }

    def cpu_cells(phase: str) -> str:
        us = cpu[phase]
        return "n/a | n/a" if us is None else f"{us:,.1f} | {1e6 / us:,.0f}"

    table = "\n".join(
        [
            "| load | requests | rows accepted | seconds | requests/s | rows/s | p50 ms | p99 ms | errors "
            "| server CPU µs/row | rows/s per server CPU second |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| single rows, {args.connections} connections | {len(single.latencies):,} | {single.rows_acknowledged:,} | "
            f"{single.seconds:.1f} | {requests_per_second:,.0f} | {single.rows_acknowledged / single.seconds:,.0f} | "
            f"{single.percentile(50):.1f} | {single.percentile(99):.1f} | {single.errors} | {cpu_cells('single')} |",
            f"| batches of 1,000, {args.batch_connections} connections | {len(batches.latencies):,} | "
            f"{batches.rows_acknowledged:,} | {batches.seconds:.1f} | {len(batches.latencies) / batches.seconds:,.1f} | "
            f"{rows_per_second:,.0f} | {batches.percentile(50):.1f} | {batches.percentile(99):.1f} | {batches.errors} "
            f"| {cpu_cells('batches')} |",
        ]
    )
    verdict = "\n".join(
        [
            "| target | measured | status |",
            "|---|---|---|",
            f"| ≥ {TARGET_REQUESTS:,} single-row requests/s | {requests_per_second:,.0f} | "
            + ("met" if requests_per_second >= TARGET_REQUESTS else "**not met**")
            + " |",
            f"| ≥ {TARGET_ROWS:,} rows/s in batches | {rows_per_second:,.0f} | "
            + ("met" if rows_per_second >= TARGET_ROWS else "**not met**")
            + " |",
            f"| 0 acknowledged rows lost on kill -9 | {len(killed.acknowledged):,} acknowledged, {lost} lost, "
            f"{doubled} doubled, {other_id} under another id; replay after restart "
            f"{'answered the same id' if replay_ok else 'DIFFERED'} | "
            + ("met" if lost == doubled == other_id == 0 and replay_ok else "**not met**")
            + " |",
        ]
    )
    about = (
        f"Command: `.venv/bin/python benchmarks/api.py --seconds {args.seconds:g} --connections {args.connections} "
        f"--batch-connections {args.batch_connections}"
        f"{' --write' if args.write else ''}`. Machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, duckdb {duckdb.__version__}; started {started_at:%Y-%m-%d %H:%M} UTC, "
        f"1-minute load average {load_before:.1f} at the start and {load_after:.1f} at the end. The client "
        f"(asyncio, raw HTTP/1.1 keep-alive) runs on the same cores as the server. kill -9 phase: "
        f"{len(killed.latencies):,} requests, server killed after {args.seconds / 2:g} s; `convopt run` of its "
        f"landing folder took {run_seconds:.1f} s."
    )
    section = f"{about}\n\n{table}\n\n{verdict}\n"
    print(f"{HEADING}\n\n{section}")
    if args.write:
        path = ROOT / "BENCHMARKS.md"
        path.write_text(replace_section(path.read_text(), HEADING, section))


if __name__ == "__main__":
    main()
