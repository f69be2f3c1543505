"""DuckDB's floor for ingestion: a bare INSERT … SELECT of a Parquet events file into raw.events.

No validation, no conversion: the fastest any validator writing this table can go on this machine.
Usage: .venv/bin/python benchmarks/ingest_floor.py PATH/TO/events.parquet
(make one with `convopt generate --events 1000000 --format parquet --out DIR`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb

from pipelines.warehouse import ensure_raw_schema

LINEAGE = {"_load_id": "'bench'", "_source_file": "'bench'", "_source_row": "1", "_loaded_at": "now()"}


def measure(parquet: Path, settings: str) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as scratch, duckdb.connect(str(Path(scratch) / "floor.duckdb")) as con:
        ensure_raw_schema(con)
        if settings:
            con.execute(settings)
        columns = [
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'raw' and table_name = 'events' order by ordinal_position"
            ).fetchall()
        ]
        select = ", ".join(f"{LINEAGE[c]} as {c}" if c in LINEAGE else c for c in columns)
        started = time.perf_counter()
        con.execute("begin")
        con.execute(f"insert into raw.events select {select} from read_parquet(?)", [str(parquet)])
        con.execute("commit")
        seconds = time.perf_counter() - started
        return con.execute("select count(*) from raw.events").fetchall()[0][0], seconds


def main() -> None:
    parquet = Path(sys.argv[1])
    for settings in ("", "set preserve_insertion_order = false"):
        rows, seconds = measure(parquet, settings)
        print(
            f"{settings or 'default settings':40s} {rows:>10,} rows {seconds:6.2f} s {rows / seconds:>12,.0f} rows/s"
        )


if __name__ == "__main__":
    main()
