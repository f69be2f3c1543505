"""A floor for Meta payload building: the fastest hand-written DuckDB SQL for normalize + hash + serialize.

Takes the warehouse ``benchmarks/meta_payloads.py --keep DIR`` leaves (raw.conversions and the seeds) and, in
one process, with no dbt:

1. ``payloads``: one query from the conversions' capi copies (the copies that carry the identities; the
   benchmark's pixel copies add nothing to a payload) joined to the seeds, normalizing every identity field
   by Meta's rules (the same rules as macros/meta/, written once per field, each distinct value normalized and
   hashed once), hashing with ``sha256`` and serializing each event as one text concatenation (to_json only
   for free text: hashes are hex), members with null values left out, as ``marts.meta_capi_events.payload``
   (DuckDB's json_object would write nulls);
2. ``dry-run files``: the ready events in request bodies of 1000 events (requests.jsonl) and one Parquet
   row per event (events.parquet), as ``convopt export-meta --dry-run`` writes them, twice: with DuckDB
   ``COPY`` (bodies by string_agg) and from Arrow (bodies joined by pyarrow, as export-meta now does).

It checks that its payload text equals ``marts.meta_capi_events.payload`` for every conversion (when that
model was built in the warehouse) and prints the rate of each step and of both together.

Usage: .venv/bin/python benchmarks/meta_floor.py DIR   (DIR = the --keep folder of meta_payloads.py)
``benchmarks/meta_payloads.py`` runs it beside the chain by itself (``--json``: one JSON line instead of the table).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# {seeds} is the schema holding the seeds. Each CTE computes its columns once; lookups are hash joins.
PAYLOADS_SQL = r"""
create or replace temp macro ws_trim(x) as
    case when ascii(x) between 33 and 126 and ascii(right(x, 1)) between 33 and 126 then x
         else trim(x, chr(9) || chr(10) || chr(11) || chr(12) || chr(13) || chr(28) || chr(29) || chr(30)
            || chr(31) || chr(32) || chr(133) || chr(160) || chr(5760) || chr(8192) || chr(8193) || chr(8194)
            || chr(8195) || chr(8196) || chr(8197) || chr(8198) || chr(8199) || chr(8200) || chr(8201)
            || chr(8202) || chr(8232) || chr(8233) || chr(8239) || chr(8287) || chr(12288)) end;
create or replace temp macro letters(x) as regexp_replace(x, '[^\p{L}\p{M}]+', '', 'g');
create or replace temp macro is_hex(x) as length(x) = 64 and regexp_full_match(lower(x), '[0-9a-f]{64}');

create or replace temp table floor_payloads as
with c as (
    select
        nullif(ws_trim(event_id), '') as event_id, lower(nullif(ws_trim(conversion_type), '')) as conversion_type,
        nullif(ws_trim(email), '') as email, nullif(ws_trim(phone), '') as phone,
        nullif(ws_trim(first_name), '') as first_name, nullif(ws_trim(last_name), '') as last_name,
        nullif(ws_trim(date_of_birth), '') as date_of_birth, nullif(ws_trim(gender), '') as gender,
        nullif(ws_trim(city), '') as city, nullif(ws_trim(state), '') as state, nullif(ws_trim(zip), '') as zip,
        nullif(ws_trim(country), '') as country, nullif(ws_trim(external_id), '') as external_id,
        nullif(ws_trim(client_ip_address), '') as client_ip_address,
        nullif(ws_trim(client_user_agent), '') as client_user_agent, nullif(ws_trim(fbp), '') as fbp,
        nullif(ws_trim(fbc), '') as fbc, nullif(ws_trim(fbclid), '') as fbclid,
        nullif(ws_trim(event_source_url), '') as event_source_url, nullif(ws_trim(order_id), '') as order_id,
        upper(nullif(ws_trim(currency), '')) as currency, nullif(ws_trim(meta_pixel_id), '') as meta_pixel_id,
        coalesce(value_cents, 0) as value_cents, conversion_time
    from raw.conversions
    where conversion_source = 'capi'
),
countries as (
    select k, min(v) as alpha2 from (
        select letters(lower(nfc_normalize(s))) as k, lower(alpha2) as v
        from {seeds}.country_codes, unnest([alpha2, alpha3, name, official_name, common_name, alias]) as t(s)
    ) where k <> '' group by k
),
country_values as (
    select c.country, countries.alpha2, cc.calling_code, coalesce(cc.trunk_prefix, '') as trunk_prefix
    from (select distinct country from c where country is not null) as c
    left join countries on countries.k = letters(lower(nfc_normalize(c.country)))
    left join {seeds}.country_codes as cc on lower(cc.alpha2) = countries.alpha2
),
states as (
    select letters(lower(nfc_normalize(state_name))) as k, min(lower(state_code)) as code
    from {seeds}.us_states group by 1
),
-- Fields that do not depend on the country: each distinct value normalized and hashed once.
name_hashes as (
    select v, case when is_hex(v) then lower(v) else sha256(nullif(letters(lower(nfc_normalize(v))), '')) end as h
    from (select first_name as v from c union select last_name from c union select city from c)
    where v is not null
),
state_hashes as (
    select v, case when is_hex(v) then lower(v) else sha256(
        case when length(l) = 2 then l else coalesce(states.code, nullif(l, '')) end) end as h
    from (select v, letters(lower(nfc_normalize(v))) as l from (select distinct state as v from c) where v is not null)
    left join states on states.k = l
),
dob_hashes as (
    select v, case when is_hex(v) then lower(v) else sha256(strftime(case when year(d) between 1900 and 2099 then d end,
        '%Y%m%d')) end as h
    from (
        select v, coalesce(try_strptime(v, '%Y-%m-%d'), try_strptime(v, '%Y%m%d'), try_strptime(v, '%Y/%m/%d'),
            try_strptime(v, '%m/%d/%Y'), try_strptime(v, '%d.%m.%Y')) as d
        from (select distinct date_of_birth as v from c) where v is not null
    )
),
gender_hashes as (
    select v, case when is_hex(v) then lower(v) else sha256(case when l in ('f', 'female', 'woman') then 'f'
        when l in ('m', 'male', 'man') then 'm' end) end as h
    from (select v, letters(lower(nfc_normalize(v))) as l from (select distinct gender as v from c) where v is not null)
),
enriched as (
    select
        c.*,
        cv.alpha2, cv.calling_code, cv.trunk_prefix,
        case when is_hex(c.email) then lower(c.email) else sha256(case
            when regexp_full_match(lower(nfc_normalize(c.email)), '[^@\s]+@[^@\s.][^@\s]*\.[^@\s.][^@\s]*')
                then lower(nfc_normalize(c.email)) end) end as em,
        fn.h as fn, ln.h as ln, ct.h as ct, st.h as st, db.h as db, ge.h as ge,
        case when is_hex(c.country) then lower(c.country) else sha256(cv.alpha2) end as country_h,
        case when is_hex(c.external_id) then lower(c.external_id) else sha256(c.external_id) end as external_id_h,
        regexp_replace(replace(c.phone, '(0)', ''), '[^0-9]+', '', 'g') as ph_digits,
        replace(replace(lower(nfc_normalize(c.zip)), ' ', ''), '-', '') as zp_compact
    from c
    left join country_values as cv on cv.country = c.country
    left join name_hashes as fn on fn.v = c.first_name
    left join name_hashes as ln on ln.v = c.last_name
    left join name_hashes as ct on ct.v = c.city
    left join state_hashes as st on st.v = c.state
    left join dob_hashes as db on db.v = c.date_of_birth
    left join gender_hashes as ge on ge.v = c.gender
),
phoned as (
    select *,
        case
            when replace(phone, '(0)', '') like '+%' then ph_digits
            when ph_digits like '00%' then substring(ph_digits, 3)
            when calling_code is null then ph_digits
            when trunk_prefix <> '' and starts_with(ph_digits, trunk_prefix)
                then calling_code || substring(ph_digits, length(trunk_prefix) + 1)
            when starts_with(ph_digits, calling_code) then ph_digits
            else calling_code || ph_digits
        end as ph_code
    from enriched
),
hashed as (
    select *,
        case when is_hex(phone) then lower(phone) else sha256(case
            when regexp_matches(phone, '\p{L}') then null
            when length(ph_code) between 7 and 15 then ph_code end) end as ph,
        case when is_hex(zip) then lower(zip) else sha256(case
            when coalesce(alpha2 = 'us', false) or (alpha2 is null and length(zip) = 10 and substring(zip, 6, 1) = '-'
                and length(regexp_replace(zip, '[^0-9]+', '', 'g')) = 9)
            then case when regexp_full_match(zp_compact, '[0-9]{5}|[0-9]{9}') then substring(zp_compact, 1, 5) end
            else nullif(zp_compact, '') end) end as zp
    from phoned
)
select
    coalesce(meta_pixel_id, '{default_pixel}') as pixel_id,
    event_id,
    (epoch_us(conversion_time) // 1000000) as event_time,
    case
        when not r.is_sent or coalesce(value_cents, 0) < r.min_value_cents
            or '|' || r.qualifying_sources || '|' not like '%|capi|%' then 'skipped'
        when r.action_source = 'website' and (client_user_agent is null or event_source_url is null) then 'skipped'
        when (epoch_us(conversion_time) // 1000000) > (epoch_us(now()) // 1000000)
            or (epoch_us(conversion_time) // 1000000) < (epoch_us(now()) // 1000000) - 7 * 86400 then 'expired'
        else 'ready'
    end as status,
    '{"event_name":' || to_json(r.meta_event_name) || ',"event_time":' || (epoch_us(conversion_time) // 1000000)
    || ',"event_id":' || to_json(event_id) || ',"action_source":' || to_json(r.action_source)
    || coalesce(',"event_source_url":' || to_json(event_source_url), '')
    || ',"user_data":{' || concat_ws(',',
        '"em":["' || em || '"]', '"ph":["' || ph || '"]', '"fn":["' || fn || '"]', '"ln":["' || ln || '"]',
        '"db":["' || db || '"]', '"ge":["' || ge || '"]', '"ct":["' || ct || '"]', '"st":["' || st || '"]',
        '"zp":["' || zp || '"]', '"country":["' || country_h || '"]', '"external_id":["' || external_id_h || '"]',
        '"client_ip_address":' || to_json(client_ip_address), '"client_user_agent":' || to_json(client_user_agent),
        '"fbc":' || to_json(coalesce(fbc, 'fb.1.' || (epoch_us(conversion_time) // 1000) || '.' || fbclid)),
        '"fbp":' || to_json(fbp))
    || '},"custom_data":{' || concat_ws(',',
        '"value":' || to_json(cast(value_cents * r.value_multiplier / 100 as decimal(18, 2))),
        '"currency":' || to_json(currency), '"order_id":' || to_json(order_id)) || '}}' as payload
from hashed
inner join {seeds}.optimization_rules as r on r.conversion_type = hashed.conversion_type
"""


REQUESTS_SQL = """
copy (
    select '{{"data":[' || string_agg(payload, ',' order by event_time, event_id) || ']}}'
    from numbered
    group by pixel_id, batch
    order by pixel_id, batch
) to '{path}' (format csv, header false, quote '', escape '', delimiter '\x01')
"""

EVENTS_SQL = """
copy (
    select dense_rank() over (order by pixel_id, batch) as batch_no, pixel_id, event_id, payload
    from numbered
    order by pixel_id, batch, event_time, event_id
) to '{path}' (format parquet)
"""


def write_with_arrow(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    """The same files from an Arrow table: bodies of 1000 payloads joined by pyarrow, one Parquet write."""
    out.mkdir()
    rows = con.sql(
        "select pixel_id, event_id, payload, dense_rank() over (order by pixel_id, batch) as request_no "
        "from numbered order by pixel_id, batch, event_time, event_id"
    ).to_arrow_table()
    starts = pc.run_end_encode(rows.column("request_no")).combine_chunks() if rows.num_rows else None
    offsets = [0] + (starts.run_ends.to_pylist() if starts is not None else [])
    payloads = rows.column("payload").combine_chunks().cast(pa.large_string())
    joined = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), payloads),
        pa.scalar(",", pa.large_string()),
    )
    with (out / "requests.jsonl").open("wb") as fh:
        for body in joined:  # each body straight from Arrow's buffer, never copied into Python bytes
            fh.write(b'{"data":[')
            fh.write(body.as_buffer())
            fh.write(b"]}\n")
    pq.write_table(rows.drop_columns(["request_no"]), out / "events.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dir", type=Path, help="the --keep folder of benchmarks/meta_payloads.py")
    parser.add_argument("--seeds-schema", default="reference")
    parser.add_argument("--default-pixel", default="1234567890")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON line of figures instead of the table"
    )
    args = parser.parse_args()
    con = duckdb.connect(str(args.dir / "bench.duckdb"), read_only=True)
    con.execute("set TimeZone = 'UTC'")
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    con.execute(
        PAYLOADS_SQL.replace("{seeds}", args.seeds_schema).replace("{default_pixel}", args.default_pixel)
    )
    t1, c1 = time.perf_counter(), time.process_time()
    con.execute(
        "create or replace temp view numbered as select *, (row_number() over "
        "(partition by pixel_id order by event_time, event_id) - 1) // 1000 as batch "
        "from floor_payloads where status = 'ready'"
    )
    with tempfile.TemporaryDirectory(prefix="meta-floor-") as out:
        con.execute(REQUESTS_SQL.format(path=Path(out) / "requests.jsonl"))
        con.execute(EVENTS_SQL.format(path=Path(out) / "events.parquet"))
        t2, c2 = time.perf_counter(), time.process_time()
        request_bytes = (Path(out) / "requests.jsonl").stat().st_size
        write_with_arrow(con, Path(out) / "arrow")
        t3, c3 = time.perf_counter(), time.process_time()
    load_after = os.getloadavg()[0]
    events, ready = con.execute(
        "select count(*), count(*) filter (status = 'ready') from floor_payloads"
    ).fetchone()
    same = differ = None
    if con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts' "
        "and table_name = 'meta_capi_events'"
    ).fetchone()[0]:
        same, differ = con.execute(
            "select count(*) filter (m.payload = f.payload), count(*) filter (m.payload is distinct from f.payload) "
            "from marts.meta_capi_events as m full join floor_payloads as f using (event_id)"
        ).fetchone()
    if args.json:
        print(
            json.dumps(
                {
                    "events": events,
                    "ready": ready,
                    "request_bytes": request_bytes,
                    "same": same,
                    "differ": differ,
                    "payloads_seconds": t1 - t0,
                    "payloads_cpu": c1 - c0,
                    "files_copy_seconds": t2 - t1,
                    "files_arrow_seconds": t3 - t2,
                    "files_arrow_cpu": c3 - c2,
                    "load_before": load_before,
                    "load_after": load_after,
                }
            )
        )
        sys.exit(1 if differ else 0)
    print(f"load average before {load_before:.2f}, after {load_after:.2f}; {os.cpu_count()} cores")
    print(f"{events:,} events ({ready:,} ready), {request_bytes / 1e6:,.0f} MB of request bodies")
    if same is not None:
        print(f"payload identical to marts.meta_capi_events: {same:,}; different or missing: {differ:,}")
    print("| step | seconds | events/s | CPU seconds (all threads) |")
    print("|---|---:|---:|---:|")
    for name, seconds, cpu in (
        ("normalize + hash + serialize (payloads)", t1 - t0, c1 - c0),
        ("dry-run files, DuckDB COPY (requests.jsonl + events.parquet)", t2 - t1, c2 - c1),
        ("dry-run files, Arrow (as export-meta --dry-run writes them)", t3 - t2, c3 - c2),
        ("**payloads + files (Arrow)**", t1 - t0 + t3 - t2, c1 - c0 + c3 - c2),
    ):
        print(f"| {name} | {seconds:.2f} | {events / seconds:,.0f} | {cpu:.1f} |")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
