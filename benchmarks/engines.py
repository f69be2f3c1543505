"""The same dbt project on DuckDB, PostgreSQL and Spark: load, full build, incremental build, peak memory.

    .venv/bin/python benchmarks/engines.py --events 1000000 [--engines duckdb,postgres,spark] [--write]

One generated data set (Parquet, 100 files per stream) is landed in two parts: 99 files per stream,
then the last one (1 % more events). Steps, each a child process (as a user runs them):

* ingest: `convopt ingest` of the 99 % into DuckDB (the landing zone of every engine);
* load: `convopt load-target --target postgres` (COPY of the raw tables) or `--target spark`
  (Parquet files registered as tables of database `raw`);
* full build: `dbt build` (models, seeds and every data test) on an empty target;
* incremental: ingest (+ load) of the 1 %, then `dbt build` again;
* peak memory: the largest sum of proportional set sizes (PSS, so shared pages count once) of
  the step's process tree plus the server's processes, sampled every 0.2 s: for PostgreSQL the
  postmaster's tree, for Spark the trees of the master, the worker (with its executor JVM) and the
  Thrift server (the driver), all started for the run (pipelines.engines.servers) in the work folder.

DuckDB's floor: one hand-written query (`FLOOR_SQL`) that computes the final daily rollup
(conversion_rollup_daily's dimensions and measures) straight from the raw tables and the seeds,
with the same dedup, currency and channel rules, checked row for row against the mart (EXCEPT
both ways), against the time of the full build.

Every finished step is appended at once to `--results` (JSON lines, default
benchmarks/results/engines-<events>.jsonl), so the engines can be measured in separate runs
(`--engines spark` after `--engines duckdb,postgres`, on the same generated data: the generator is
seeded) and a run that is stopped keeps the steps it finished. `--write` renders the latest record
of every step in that file into the "Engines" section of BENCHMARKS.md, under a subsection per
`--events` value; `--write-only` does that without running anything. A rewrite replaces the
figures and keeps whatever was written by hand below the subsection's `KEPT_MARKER` line (the
reading of the figures). Every run ingests into DuckDB
first, so an engine's pipeline total takes the ingest measured in the same run as its build: a
later `--engines spark` run does not change DuckDB's or PostgreSQL's totals.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.engines.servers import postgres as pg_server  # noqa: E402
from pipelines.engines.servers import spark as spark_cluster  # noqa: E402
from pipelines.generate import GeneratorConfig, generate_dataset  # noqa: E402

BIN = Path(sys.executable).parent
VARS = json.dumps({"meta_export_as_of": "2026-03-01 00:00:00+00"})


# --- peak memory ----------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _tree(root: int, tree: dict[int, list[int]]) -> list[int]:
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(tree.get(pid, []))
    return pids


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """Largest PSS sum of the process trees rooted at `roots` (plus a late-bound child), sampled."""

    def __init__(self, roots: list[int]):
        self.roots = list(roots)
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = _children()
            total = sum(_pss_kib(pid) for root in self.roots for pid in _tree(root, tree))
            self.peak_kib = max(self.peak_kib, total)
            self._stop.wait(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


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


ENGINES = ("duckdb", "postgres", "spark")


def run_step(engine: str, step: str, command: list[str], env: dict[str, str], server_pids: list[int]) -> Step:
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    roots = [process.pid, *server_pids]
    with PeakMemory(roots) as memory:
        try:
            output, _ = process.communicate()
        except BaseException:  # Ctrl-C or SIGTERM (see main): the step's child must not outlive the run
            process.kill()
            process.wait()
            raise
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{engine} {step} failed ({' '.join(command)}):\n{output[-5000:]}")
    print(f"{engine:9s} {step:22s} {seconds:8.1f} s  peak {memory.peak_kib / 1024:8.0f} MiB", flush=True)
    return Step(engine, step, seconds, memory.peak_kib / 1024)


# --- DuckDB's floor ---------------------------------------------------------------------------------

FLOOR_SQL = """
with recursive copies as (
    select
        lower(nullif(trim(conversion_type), '')) as conversion_type,
        nullif(trim(event_id), '') as event_id,
        nullif(trim(person_id), '') as person_id,
        lower(nullif(trim(conversion_source), '')) as conversion_source,
        nullif(trim(campaign_id), '') as campaign_id,
        nullif(trim(ad_set_id), '') as ad_set_id,
        lower(nullif(trim(utm_source), '')) as utm_source,
        lower(nullif(trim(utm_medium), '')) as utm_medium,
        nullif(trim(fbclid), '') as fbclid,
        lower(nullif(trim(device_type), '')) as device_type,
        case when length(trim(country)) = 2 then upper(trim(country)) else nullif(trim(country), '') end as country,
        coalesce(value_cents, 0) as value_cents,
        upper(nullif(trim(currency), '')) as currency,
        conversion_time,
        row_number() over (
            partition by lower(nullif(trim(conversion_type), '')), nullif(trim(event_id), '')
            order by conversion_time, _loaded_at, lower(nullif(trim(conversion_source), '')), _load_id,
                _source_file, _source_row
        ) as copy_number
    from raw.conversions
),
spans as (
    select conversion_type, event_id
    from copies
    group by 1, 2
    having max(conversion_time) > min(conversion_time) + interval 48 hour
),
spanning as (
    select copies.conversion_type, copies.event_id, copies.copy_number, copies.conversion_time
    from copies semi join spans using (conversion_type, event_id)
),
anchors as (
    select conversion_type, event_id, copy_number, conversion_time as anchor_time
    from spanning where copy_number = 1
    union all
    select n.conversion_type, n.event_id, n.copy_number,
        case when n.conversion_time > a.anchor_time + interval 48 hour then n.conversion_time else a.anchor_time end
    from anchors as a
    inner join spanning as n
        on a.conversion_type = n.conversion_type and a.event_id = n.event_id and n.copy_number = a.copy_number + 1
),
conversions as (
    select
        c.conversion_type,
        arg_min(c.person_id, c.copy_number) filter (where c.person_id is not null) as person_id,
        arg_min(c.campaign_id, c.copy_number) filter (where c.campaign_id is not null) as campaign_id,
        arg_min(c.ad_set_id, c.copy_number) filter (where c.ad_set_id is not null) as ad_set_id,
        arg_min(c.utm_source, c.copy_number) filter (where c.utm_source is not null) as utm_source,
        arg_min(c.utm_medium, c.copy_number) filter (where c.utm_medium is not null) as utm_medium,
        arg_min(c.fbclid, c.copy_number) filter (where c.fbclid is not null) as fbclid,
        arg_min(c.device_type, c.copy_number) filter (where c.device_type is not null) as device_type,
        arg_min(c.country, c.copy_number) filter (where c.country is not null) as country,
        coalesce(arg_min(c.value_cents, c.copy_number) filter (where c.value_cents > 0), 0) as value_cents,
        coalesce(
            arg_min(c.currency, c.copy_number) filter (where c.currency is not null and c.value_cents > 0),
            case when max(c.value_cents) = 0
                then arg_min(c.currency, c.copy_number) filter (where c.currency is not null) end
        ) as currency,
        min(c.conversion_time) as conversion_time
    from copies as c
    left join anchors as a using (conversion_type, event_id, copy_number)
    group by c.conversion_type, c.event_id, coalesce(a.anchor_time, timestamptz '1970-01-01 00:00:00+00')
),
valued as (
    select
        conversions.*,
        case when conversions.value_cents = 0 then 0 else cast(
            (2 * cast(conversions.value_cents as hugeint) * cast(rr.units_per_usd * 1000000 as hugeint)
                + cast(cr.units_per_usd * 1000000 as hugeint)) // (2 * cast(cr.units_per_usd * 1000000 as hugeint))
            as bigint) end as value_cents_reporting,
        row_number() over () as conversion_number
    from conversions
    left join reference.exchange_rates as cr
        on conversions.currency = cr.currency and cast(timezone('UTC', conversions.conversion_time) as date) = cr.rate_date
    left join reference.exchange_rates as rr
        on rr.currency = 'USD' and cast(timezone('UTC', conversions.conversion_time) as date) = rr.rate_date
),
channels as (
    select v.conversion_number, arg_min(m.channel, m.match_order) as channel
    from valued as v
    inner join reference.channel_mapping as m
        on coalesce(lower(v.utm_source), '(none)') like m.utm_source_pattern
        and coalesce(lower(v.utm_medium), '(none)') like m.utm_medium_pattern
        and (m.has_click_id is null or m.has_click_id = (v.fbclid is not null))
    group by 1
),
facts as (
    select
        cast(timezone('UTC', v.conversion_time) as date) as period_date,
        v.conversion_type, coalesce(v.campaign_id, '(unattributed)') as campaign_id, v.ad_set_id,
        coalesce(ch.channel, 'other') as channel, v.utm_source, v.device_type, v.country, v.person_id,
        v.value_cents_reporting,
        cast(timezone('UTC', min(v.conversion_time) over (partition by v.person_id, v.conversion_type)) as date)
            as first_period_date
    from valued as v
    left join channels as ch using (conversion_number)
)
select
    period_date, conversion_type, campaign_id, ad_set_id, channel, utm_source, device_type, country,
    count(*) as conversions,
    sum(value_cents_reporting) as revenue_cents,
    count(distinct person_id) as persons_converting,
    count(distinct case when first_period_date = period_date then person_id end) as new_customers,
    count(distinct case when first_period_date < period_date then person_id end) as repeat_customers
from facts
group by all
"""

MART_COLUMNS = (
    "period_date, conversion_type, campaign_id, ad_set_id, channel, utm_source, device_type, country, "
    "conversions, revenue_cents, persons_converting, new_customers, repeat_customers"
)


def floor(warehouse: Path) -> tuple[float, int, int, int]:
    """(seconds, rows, rows only in the floor query, rows only in the mart)."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute("set TimeZone = 'UTC'")
        started = time.perf_counter()
        con.execute(f"create or replace temp table floor_rollup as {FLOOR_SQL}")
        seconds = time.perf_counter() - started
        rows = con.execute("select count(*) from floor_rollup").fetchone()[0]
        mart = f"select {MART_COLUMNS} from marts.conversion_rollup_daily"
        mine = f"select {MART_COLUMNS} from floor_rollup"
        only_floor = con.execute(f"select count(*) from ({mine} except all {mart})").fetchone()[0]
        only_mart = con.execute(f"select count(*) from ({mart} except all {mine})").fetchone()[0]
    return seconds, rows, only_floor, only_mart


# --- the run ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--engines", default="duckdb,postgres")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir, deleted at the end")
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    parser.add_argument(
        "--results", type=Path, default=None, help="default: benchmarks/results/engines-<events>.jsonl"
    )
    parser.add_argument(
        "--write-only",
        action="store_true",
        help="render the recorded results into BENCHMARKS.md, run nothing",
    )
    args = parser.parse_args()
    engines = args.engines.split(",")
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(
            f"--engines: unknown {', '.join(unknown)}; expected a comma-separated subset of {ENGINES}"
        )
    results = Results(args.results or ROOT / "benchmarks" / "results" / f"engines-{args.events}.jsonl")
    if args.write_only:
        write_results(results, args.events)
        return
    started, load_at_start = dt.datetime.now(dt.UTC), os.getloadavg()[0]
    # `kill <pid>` stops the run like Ctrl-C: the `finally` below stops the servers it started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    if args.workdir is None:
        work = Path(tempfile.mkdtemp(prefix="convopt-bench-engines-"))
        # mkdtemp makes the dir 0700; run as root, the server helper starts PostgreSQL as the `postgres` user,
        # who must be able to enter it to reach its own cluster dir inside.
        work.chmod(0o755)
    else:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    landing, warehouse = work / "landing", work / "warehouse.duckdb"
    base_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DBT_PROFILES_DIR": str(ROOT),
        "CONVOPT_WAREHOUSE": str(warehouse),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    config = GeneratorConfig(
        events=args.events, seed=42, start=dt.date(2026, 1, 1), days=60, fmt="parquet", files_per_stream=100
    )
    print(f"generating {args.events:,} events into {landing}", flush=True)
    generate_dataset(landing, config)
    last = sorted(landing.glob("*-0100.*"))
    first = sorted(set(landing.glob("*.parquet")) - set(last))
    with duckdb.connect() as con:
        counts = {
            name: con.execute(f"select count(*) from read_parquet({[str(p) for p in files]})").fetchone()[0]
            for name, files in (
                ("first", [p for p in first if p.name.startswith("events")]),
                ("last", [p for p in last if p.name.startswith("events")]),
            )
        }
    print(
        f"events: {counts['first']:,} first, {counts['last']:,} added ({counts['last'] / counts['first']:.1%})"
    )
    results.run(started, load_at_start, engines, counts)

    server = None
    spark_dir = work / "spark"
    steps: list[Step] = []
    try:
        pg_env: dict[str, str] = {}
        if "postgres" in engines:
            server = pg_server.start(base_dir=work)
            pg_env = {**base_env, **server.env}
        server_pids = [pg_server.postmaster_pid(server.data_dir)] if server else []
        spark_env: dict[str, str] = {}
        cluster_pids: list[int] = []
        if "spark" in engines:
            started_cluster = time.perf_counter()
            spark_env = {
                **base_env,
                **spark_cluster.start(spark_dir),
                "CONVOPT_SPARK_PARQUET_DIR": str(work / "spark_raw"),
                "DBT_TARGET_PATH": str(work / "target-spark"),
                "DBT_LOG_PATH": str(work / "logs-s"),
            }
            cluster_pids = spark_cluster.pids(spark_dir)
            print(f"spark cluster started in {time.perf_counter() - started_cluster:.1f} s", flush=True)
        convopt, dbt = str(BIN / "convopt"), str(BIN / "dbt")
        duck_env = {
            **base_env,
            "DBT_TARGET_PATH": str(work / "target-duckdb"),
            "DBT_LOG_PATH": str(work / "logs-d"),
        }
        pg_dbt_env = {
            **pg_env,
            "DBT_TARGET_PATH": str(work / "target-postgres"),
            "DBT_LOG_PATH": str(work / "logs-p"),
        }

        def measure(engine: str, step: str, command: list[str], env: dict[str, str], pids: list[int]) -> Step:
            return results.step(run_step(engine, step, command, env, pids))

        for part, files in (("full", first), ("incremental", last)):
            ingest = measure(
                "duckdb",
                f"ingest ({part})",
                [convopt, "ingest", "--no-progress", *map(str, files)],
                duck_env,
                [],
            )
            steps.append(ingest)
            if "duckdb" in engines:
                steps.append(
                    measure("duckdb", f"dbt build ({part})", [dbt, "build", "--vars", VARS], duck_env, [])
                )
            if "postgres" in engines:
                load = [convopt, "load-target", "--target", "postgres"]
                steps.append(measure("postgres", f"load ({part})", load, pg_env, server_pids))
                build = [dbt, "build", "--target", "postgres", "--vars", VARS]
                steps.append(measure("postgres", f"dbt build ({part})", build, pg_dbt_env, server_pids))
            if "spark" in engines:
                load = [convopt, "load-target", "--target", "spark"]
                steps.append(measure("spark", f"load ({part})", load, spark_env, cluster_pids))
                build = [dbt, "build", "--target", "spark", "--vars", VARS]
                steps.append(measure("spark", f"dbt build ({part})", build, spark_env, cluster_pids))
            if part == "full" and "duckdb" in engines:
                seconds, rows, only_floor, only_mart = floor(warehouse)
                print(
                    f"floor: {seconds:.2f} s, {rows:,} rows, {only_floor} only in floor, {only_mart} only in mart"
                )
                floor_result = (seconds, rows, only_floor, only_mart)
                results.floor(floor_result)
    finally:
        if server is not None:
            pg_server.stop(server.data_dir, remove=False)
        if (spark_dir / "run").is_dir():
            spark_cluster.stop(spark_dir)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print(render(args.events, counts, steps, floor_result if "duckdb" in engines else None))
    print(f"recorded in {results.path}")
    if args.write:
        write_results(results, args.events)


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


ENGINES_HEADER = "## Engines (issue: one set of models, three engines)"
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


if __name__ == "__main__":
    main()
