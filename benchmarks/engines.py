"""The same dbt project on DuckDB, PostgreSQL and Spark: load, full build, incremental build, peak memory.

    .venv/bin/python benchmarks/engines.py --events 1000000 [--engines duckdb,postgres,spark] [--write]
        [--selector scheduled]

One generated data set (Parquet, 100 files per stream) is landed in two parts: 99 files per stream,
then the last one (1 % more events). Steps, each a child process (as a user runs them):

* ingest: `convopt ingest` of the 99 % into DuckDB (the landing zone of every engine);
* load: `convopt load-target --target postgres` (COPY of the raw tables) or `--target spark`
  (Parquet files registered as tables of database `raw`);
* full build: `dbt build` (models, seeds and every data test) on an empty target; with `--selector`,
  `dbt build --selector <name>` (`scheduled`: what `convopt run` builds, without the unit tests);
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
reading of the figures); benchmarks/engines_results.py keeps the records and renders them. Every
run ingests into DuckDB first, so an engine's pipeline total takes the ingest measured in the same
run as its build: a later `--engines spark` run does not change DuckDB's or PostgreSQL's totals.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The results file and BENCHMARKS.md (beside this script, so on sys.path when it runs).
from engines_results import ENGINES, Results, Step, render, write_results  # noqa: E402

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
        "--selector",
        default=None,
        help="build only this dbt selector (e.g. scheduled, what `convopt run` builds); default: everything",
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

        selection = ["--selector", args.selector] if args.selector else []

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
                    measure(
                        "duckdb",
                        f"dbt build ({part})",
                        [dbt, "build", *selection, "--vars", VARS],
                        duck_env,
                        [],
                    )
                )
            if "postgres" in engines:
                load = [convopt, "load-target", "--target", "postgres"]
                steps.append(measure("postgres", f"load ({part})", load, pg_env, server_pids))
                build = [dbt, "build", *selection, "--target", "postgres", "--vars", VARS]
                steps.append(measure("postgres", f"dbt build ({part})", build, pg_dbt_env, server_pids))
            if "spark" in engines:
                load = [convopt, "load-target", "--target", "spark"]
                steps.append(measure("spark", f"load ({part})", load, spark_env, cluster_pids))
                build = [dbt, "build", *selection, "--target", "spark", "--vars", VARS]
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


if __name__ == "__main__":
    main()
