"""Throughput of building Meta Conversions API payloads: normalize + hash + serialize, then a dry-run export.

Stages, each in its own child process (so its peak RSS is its own, from ``wait4``):

1. synthesize (setup, not in the end-to-end figure): N conversions written straight into ``raw.conversions``
   by one DuckDB statement, with varied identity fields (case, padding with tabs and no-break spaces,
   national and international phones, country codes and names, several date formats, values that cannot
   be normalized) and a share of conversions also reported by a second copy (pixel + capi), as the demo
   data has. Conversion times are spread over the last 6 days, so nearly all are inside Meta's window.
2. ``dbt seed`` (setup, not counted).
3. ``dbt run --select +meta_capi_events +int_meta_delivery_state``: the payload-producing models
   (stg_conversions → int_conversion_identities [normalize + hash] → int_conversions_deduplicated →
   int_conversions_valued → meta_capi_events [serialize]), and the delivery state the export reads (two
   views over the empty log); each model's own time comes from dbt's run_results.json.
4. ``convopt export-meta --dry-run``: reads the ready rows, batches them, writes requests.jsonl + events.parquet.

End to end = stage 3 + stage 4 wall time (dbt's start-up and project parsing included), and also
"SQL + export" = the models' execution times + stage 4, which is what grows with N. "Payload building"
is int_conversion_identities (normalize + hash) + meta_capi_events (serialize) + stage 4; the dedup and
int_conversions_valued build the conversions every fact reads and are reported apart.

5. the floor (``benchmarks/meta_floor.py``, unless --no-floor), right after the export on the same
   warehouse: one hand-written DuckDB query for the same payloads and the same dry-run files. It checks
   that its payloads equal the chain's byte for byte, and the chain's rate is printed as a share of the
   floor's (both measured in this run, so a busy machine slows both).

6. the state writes (unless --no-floor): what writing the chain's four tables costs by itself. Each table is
   copied twice in one process, into a persistent table (compressed and checkpointed, as dbt writes it;
   meta_capi_events zstd-compressed, as its pre-hook sets) and into an in-memory temporary table; the
   difference is the write. Then dbt's fixed cost: ``dbt run`` of one staging view (start-up, parsing, the
   project's hooks), wall and CPU seconds. Together they give a lower bound for any chain that keeps these
   four tables and runs under dbt: the floor + the writes + dbt's fixed cost, and so the best share of the
   floor's rate such a chain can reach.

Usage: .venv/bin/python benchmarks/meta_payloads.py [--conversions 1000000] [--keep DIR] [--no-floor]
Prints Markdown tables; scratch data goes to a temp dir removed at the end (unless --keep).
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
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAYLOAD_MODELS = (
    "stg_conversions",
    "int_conversion_identities",
    "int_conversions_deduplicated",
    "int_conversions_valued",
    "meta_capi_events",
)

# One INSERT that synthesizes the conversions: `i` is the conversion number, `copy` 1 (capi) or 2 (a pixel
# copy of every 7th conversion, a few minutes later, without the identity fields a pixel rarely has).
# pick(list, salt) chooses an element by a hash of (i, salt), so fields vary independently.
SYNTHESIZE_SQL = r"""
create or replace macro pick(options, i, salt) as
    list_extract(options, 1 + cast(hash(i, salt) % len(options) as integer));

insert into raw.conversions by name
with numbered as (
    select
        i,
        copy,
        now() - to_seconds(cast(hash(i, 'age') % (6 * 86400) as bigint) + 600) as happened_at
    from range($n) as r(i)
    cross join (select 1 as copy union all select 2) as copies
    where copy = 1 or i % 7 = 0
)
select
    'evt-' || i as event_id,
    'person-' || (i % ($n // 3 + 1)) as person_id,
    pick(['purchase', 'purchase', 'purchase', 'signup', 'signup', 'subscription', 'video_render'], i, 'type')
        as conversion_type,
    case when copy = 1 then 'capi' else 'pixel' end as conversion_source,
    cast(hash(i, 'value') % 20000 as bigint) + 100 as value_cents,
    pick(['USD', 'USD', 'EUR', 'GBP', 'BRL'], i, 'cur') as currency,
    happened_at + case when copy = 2 then interval 3 minute else interval 0 minute end as conversion_time,
    'cmp-' || (i % 40) as campaign_id,
    'adset-' || (i % 160) as ad_set_id,
    'ad-' || (i % 640) as ad_id,
    pick(['facebook', 'instagram', 'google', null], i, 'utm') as utm_source,
    'paid_social' as utm_medium,
    'spring-' || (i % 40) as utm_campaign,
    null as utm_content,
    null as utm_term,
    case when i % 3 = 0 then 'IwAR' || md5(cast(i as varchar)) end as fbclid,
    pick(['desktop', 'mobile', 'tablet'], i, 'dev') as device_type,
    pick(['Chrome', 'Safari', 'Firefox', 'Samsung Internet'], i, 'br') as browser,
    pick(['Windows', 'iOS', 'Android', 'macOS'], i, 'os') as os,
    case when copy = 1 then pick(
        ['US', 'us', 'GB', 'DE', 'FR', 'BR', 'United States', 'Germany', 'U.K.', 'España', 'Narnia', null],
        i, 'country'
    ) end as country,
    case when copy = 1 then pick(
        ['San Francisco', 'New York', 'London', 'Berlin', 'São Paulo', 'St. Louis', ' Paris ', '123', null],
        i, 'city'
    ) end as city,
    '1234567890' as meta_pixel_id,
    'order-' || i as order_id,
    case when copy = 1 then pick(
        [
            'John.Doe' || i || '@Example.com', chr(9) || 'jane' || i || '@mail.co.uk' || chr(10),
            '  Ana.' || i || '@test.org ', chr(160) || 'x' || i || '@y.io', 'no-at-sign-' || i, 'two@@at.com',
            upper(sha256('p' || i)), null
        ], i, 'em'
    ) end as email,
    case when copy = 1 then pick(
        [
            '+1 (202) 555-' || lpad(cast(i % 10000 as varchar), 4, '0'), '0044 7911 ' || (100000 + i % 900000),
            '(202) 555-' || lpad(cast(i % 10000 as varchar), 4, '0'), '07911 ' || (100000 + i % 900000),
            '+44 (0)20 7946 ' || lpad(cast(i % 10000 as varchar), 4, '0'), '555-CALL-NOW', null, null
        ], i, 'ph'
    ) end as phone,
    case when copy = 1 then pick(['John', 'Mary-Ann', 'Éloïse', ' O''Neil ', '李', '!!!', null], i, 'fn') end
        as first_name,
    case when copy = 1 then pick(['Doe', 'Smith-Jones', 'Müller', 'de la Cruz', null, null], i, 'ln') end
        as last_name,
    case when copy = 1 then pick(
        ['1990-02-14', '19851231', '02/14/1990', '14.02.1990', '1990-02-30', 'yesterday', null, null], i, 'db'
    ) end as date_of_birth,
    case when copy = 1 then pick(['f', 'F', 'Female', 'm', 'Male', 'x', null], i, 'ge') end as gender,
    case when copy = 1 then pick(['CA', 'california', 'N.Y.', 'Texas', 'Bavaria', null], i, 'st') end as state,
    case when copy = 1 then pick(['94103', '94103-1234', 'SW1A 1AA', '10115', '00-950', '9410', null], i, 'zp') end
        as zip,
    case when copy = 1 and i % 2 = 0 then 'customer-' || (i % ($n // 3 + 1)) end as external_id,
    'https://shop.example/checkout?o=' || i as event_source_url,
    '10.' || (i % 256) || '.' || (i // 256 % 256) || '.' || (i // 65536 % 256) as client_ip_address,
    case when i % 10 <> 0 then pick(
        [
            'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
            'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 Mobile Safari/604.1'
        ], i, 'ua'
    ) end as client_user_agent,
    'fb.1.1700000000000.' || (i * 7919 % 1000000007) as fbp,
    null as fbc,
    '{"items": ' || (i % 5 + 1) || '}' as properties,
    'bench-load' as _load_id,
    'benchmarks/meta_payloads.py' as _source_file,
    i * 2 + copy as _source_row,
    now() - interval 1 minute as _loaded_at
from numbered
"""

CHILD = r"""
import json, sys, time, duckdb
from pipelines.warehouse import ensure_raw_schema
warehouse, sql, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect(warehouse, config={"preserve_insertion_order": False})
con.execute("set TimeZone = 'UTC'")
ensure_raw_schema(con)
t0 = time.perf_counter()
macro, insert = sql.split(";\n\ninsert", 1)
con.execute(macro)
con.execute("insert" + insert, {"n": n})
rows = con.execute("select count(*) from raw.conversions").fetchone()[0]
con.close()
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - t0}))
"""


# Stage 6: the cost of writing each of the chain's tables, apart from computing it (see the docstring).
STATE_CHILD = r"""
import json, resource, sys, time, duckdb
con = duckdb.connect(sys.argv[1], config={"preserve_insertion_order": False, "threads": 2, "memory_limit": "4GB"})
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
out = {}
for table in sys.argv[2:]:
    zstd = table.endswith("meta_capi_events")
    figures = {}
    for kind in ("persistent", "temporary"):
        if zstd and kind == "persistent":
            con.execute("set force_compression = 'zstd'")
        t0, c0 = time.perf_counter(), cpu()
        if kind == "persistent":
            con.execute(f"create table main.state_write as select * from {table}")
            con.execute("checkpoint")
        else:
            con.execute(f"create temp table state_write as select * from {table}")
        figures[kind] = (time.perf_counter() - t0, cpu() - c0)
        con.execute("reset force_compression")
        con.execute("drop table " + ("main.state_write" if kind == "persistent" else "temp.state_write"))
        con.execute("checkpoint")
    out[table] = {
        "seconds": figures["persistent"][0] - figures["temporary"][0],
        "cpu": figures["persistent"][1] - figures["temporary"][1],
    }
print(json.dumps(out))
"""
STATE_TABLES = (
    "intermediate.int_conversion_identities",
    "intermediate.int_conversions_deduplicated",
    "intermediate.int_conversions_valued",
    "marts.meta_capi_events",
)


@dataclass
class Stage:
    name: str
    seconds: float
    peak_mib: float
    output: str
    cpu_seconds: float = 0.0  # user + system of the child and its children: robust to a shared machine


def run_stage(name: str, command: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> Stage:
    """Run one stage as a child process; wall time and the child's peak RSS (wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=PROJECT_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        sys.exit(f"stage {name} failed (exit {proc.returncode}):\n{output[-4000:]}")
    return Stage(name, seconds, usage.ru_maxrss / 1024, output, usage.ru_utime + usage.ru_stime)


def model_times(target: Path) -> dict[str, float]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results}


def nodes_span(target: Path) -> float:
    """Seconds from the first node's start to the last node's end (the dbt run's wall time minus this is
    dbt's own: start-up, parsing, hooks, and the end)."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    times = [
        dt.datetime.fromisoformat(step[key].replace("Z", "+00:00"))
        for result in results
        for step in result["timing"]
        for key in ("started_at", "completed_at")
    ]
    return (max(times) - min(times)).total_seconds() if times else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="keep the scratch warehouse and files in this folder")
    parser.add_argument("--no-floor", action="store_true", help="do not run benchmarks/meta_floor.py after")
    args = parser.parse_args()
    n = args.conversions

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="convopt-meta-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    warehouse, target, out = scratch / "bench.duckdb", scratch / "target", scratch / "dry_run"
    env = dict(os.environ)
    env.update(
        {
            "CONVOPT_WAREHOUSE": str(warehouse),
            "DBT_PROFILES_DIR": str(PROJECT_DIR),
            "DBT_TARGET_PATH": str(target),
            "DBT_LOG_PATH": str(scratch / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "PYTHONPATH": str(PROJECT_DIR),
        }
    )
    load_before = os.getloadavg()
    try:
        synth = run_stage(
            "synthesize", [sys.executable, "-c", CHILD, str(warehouse), SYNTHESIZE_SQL, str(n)], env
        )
        raw_rows = json.loads(synth.output.strip().splitlines()[-1])["rows"]
        run_stage("dbt seed", [str(BIN / "dbt"), "seed", "--project-dir", str(PROJECT_DIR)], env)
        build = run_stage(
            "dbt run",
            [
                str(BIN / "dbt"),
                "run",
                "--select",
                "+meta_capi_events",
                "+int_meta_delivery_state",
                "--project-dir",
                str(PROJECT_DIR),
            ],
            env,
        )
        per_model = model_times(target)
        export = run_stage(
            "export-meta --dry-run",
            [
                str(BIN / "convopt"),
                "export-meta",
                "--dry-run",
                "--warehouse",
                str(warehouse),
                "--out",
                str(out),
                "--no-progress",
            ],
            env,
        )
        floor = None
        if not args.no_floor:
            # Exit 1: its payloads differ from the chain's (reported below, not a crash).
            floor_stage = run_stage(
                "meta_floor",
                [sys.executable, str(PROJECT_DIR / "benchmarks" / "meta_floor.py"), str(scratch), "--json"],
                env,
                ok=(0, 1),
            )
            floor = json.loads(floor_stage.output.strip().splitlines()[-1])
            floor["peak_mib"] = floor_stage.peak_mib
            state_stage = run_stage(
                "state writes", [sys.executable, "-c", STATE_CHILD, str(warehouse), *STATE_TABLES], env
            )
            writes = json.loads(state_stage.output.strip().splitlines()[-1])
            dbt_fixed = run_stage(
                "dbt fixed cost",
                [
                    str(BIN / "dbt"),
                    "run",
                    "--select",
                    "stg_meta_delivery_log",
                    "--project-dir",
                    str(PROJECT_DIR),
                ],
                env,
            )
        dbt_own_seconds = build.seconds - nodes_span(target)
        load_after = os.getloadavg()
        import duckdb

        with duckdb.connect(str(warehouse), read_only=True) as con:
            events, ready, dropped = con.execute(
                "select count(*), count(*) filter (where status = 'ready'), sum(dropped_user_data_fields) "
                "from marts.meta_capi_events"
            ).fetchone()
            (conversions,) = con.execute(
                "select count(*) from intermediate.int_conversions_valued"
            ).fetchone()
        ((written,),) = duckdb.sql(
            f"select count(*) from read_parquet('{out / 'events.parquet'}')"
        ).fetchall()
        request_bytes = (out / "requests.jsonl").stat().st_size
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    print(
        f"{n:,} conversions synthesized as {raw_rows:,} raw copies in {synth.seconds:.1f} s (setup); "
        f"{conversions:,} conversions, {events:,} meta_capi_events rows ({ready:,} ready, "
        f"{dropped:,} identity fields dropped), {written:,} events written "
        f"({request_bytes / 1e6:,.0f} MB of request bodies)\n"
    )
    print("| stage | rows in | seconds | conversions/s | peak MiB |")
    print("|---|---:|---:|---:|---:|")

    def line(name: str, rows: int, seconds: float, peak: str = "") -> None:
        print(f"| {name} | {rows:,} | {seconds:.2f} | {conversions / seconds:,.0f} | {peak} |")

    for model in PAYLOAD_MODELS:
        line(
            f"  model {model}",
            raw_rows if "identities" in model or "stg" in model else conversions,
            per_model[model],
        )
    sql_seconds = sum(per_model[m] for m in PAYLOAD_MODELS)
    line("dbt run (wall, incl. start-up and parsing)", raw_rows, build.seconds, f"{build.peak_mib:,.0f}")
    line("export-meta --dry-run (wall)", events, export.seconds, f"{export.peak_mib:,.0f}")
    line("**end to end** (dbt run + export, wall)", raw_rows, build.seconds + export.seconds)
    line("SQL of the models + export", raw_rows, sql_seconds + export.seconds)
    # Payload building proper: normalize + hash (int_conversion_identities), serialize
    # (meta_capi_events) and the dry-run files; the dedup and valuing build the conversions.
    payload_seconds = per_model["int_conversion_identities"] + per_model["meta_capi_events"] + export.seconds
    facts_seconds = per_model["int_conversions_deduplicated"] + per_model["int_conversions_valued"]
    line("**payload building** (identities + meta_capi_events + export)", raw_rows, payload_seconds)
    line("conversion building (dedup + int_conversions_valued)", raw_rows, facts_seconds)
    chain_cpu = build.cpu_seconds + export.cpu_seconds
    print(
        f"\nCPU seconds (user + system, all threads; load-independent): dbt run {build.cpu_seconds:.1f}, "
        f"export-meta --dry-run {export.cpu_seconds:.1f}, both {chain_cpu:.1f}"
    )
    if floor is None:
        return
    chain_seconds = build.seconds + export.seconds
    floor_seconds = floor["payloads_seconds"] + floor["files_arrow_seconds"]
    floor_cpu = floor["payloads_cpu"] + floor["files_arrow_cpu"]
    print(
        f"\nFloor (benchmarks/meta_floor.py, same warehouse, right after the export): {floor['events']:,} "
        f"events ({floor['ready']:,} ready); payloads identical to the chain's: {floor['same']:,}, "
        f"different or missing: {floor['differ']:,}\n"
    )
    print("| | seconds | conversions/s | CPU seconds | peak MiB |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| floor: normalize + hash + serialize | {floor['payloads_seconds']:.2f} | "
        f"{conversions / floor['payloads_seconds']:,.0f} | {floor['payloads_cpu']:.1f} | |"
    )
    print(
        f"| floor: dry-run files (Arrow) | {floor['files_arrow_seconds']:.2f} | "
        f"{conversions / floor['files_arrow_seconds']:,.0f} | {floor['files_arrow_cpu']:.1f} | |"
    )
    print(
        f"| **floor** | {floor_seconds:.2f} | {conversions / floor_seconds:,.0f} | {floor_cpu:.1f} | "
        f"{floor['peak_mib']:,.0f} |"
    )
    print(
        f"| **chain** (dbt run + export, wall) | {chain_seconds:.2f} | {conversions / chain_seconds:,.0f} | "
        f"{chain_cpu:.1f} | {max(build.peak_mib, export.peak_mib):,.0f} |"
    )
    print(
        f"\n**chain / floor rate: {floor_seconds / chain_seconds:.0%}** (wall; CPU seconds: "
        f"{floor_cpu / chain_cpu:.0%}); without dbt's start-up and parsing (SQL of the models + export): "
        f"{floor_seconds / (sql_seconds + export.seconds):.0%}"
    )
    write_seconds = sum(w["seconds"] for w in writes.values())
    write_cpu = sum(w["cpu"] for w in writes.values())
    bound_seconds = floor_seconds + write_seconds + dbt_fixed.seconds
    bound_cpu = floor_cpu + write_cpu + dbt_fixed.cpu_seconds
    print(
        "\nWriting the chain's tables (a persistent copy minus an in-memory one, same process, right after):\n"
    )
    print("| table | write seconds | write CPU seconds |")
    print("|---|---:|---:|")
    for table, figures in writes.items():
        print(f"| {table} | {figures['seconds']:.2f} | {figures['cpu']:.1f} |")
    print(f"| **all four** | {write_seconds:.2f} | {write_cpu:.1f} |")
    print(
        f"| dbt's fixed cost (`dbt run` of one view) | {dbt_fixed.seconds:.2f} | {dbt_fixed.cpu_seconds:.1f} |"
    )
    print(
        f"\ndbt's own time in the chain's dbt run (its wall time outside its nodes' span): {dbt_own_seconds:.2f} s."
        f"\nLower bound for a chain that keeps these four tables under dbt: floor {floor_seconds:.2f} + writes "
        f"{write_seconds:.2f} + dbt {dbt_fixed.seconds:.2f} = {bound_seconds:.2f} s ({floor_cpu:.1f} + "
        f"{write_cpu:.1f} + {dbt_fixed.cpu_seconds:.1f} = {bound_cpu:.1f} CPU seconds), so at best "
        f"**{floor_seconds / bound_seconds:.0%}** of the floor's rate (CPU seconds: {floor_cpu / bound_cpu:.0%}); "
        f"the chain is at {bound_seconds / chain_seconds:.0%} of that bound's rate (CPU seconds: "
        f"{bound_cpu / chain_cpu:.0%})."
    )


if __name__ == "__main__":
    main()
