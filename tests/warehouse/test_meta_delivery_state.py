"""The Meta delivery log in dbt: stg_meta_delivery_log and int_meta_delivery_state.

* A build works on a warehouse where `convopt export-meta` never ran and the log table does not exist:
  the on-run-start hook creates it with the loader's columns (and adds the newer columns to an older
  log), so the staging view reads the real table from the first build on.
* The state is a view: rows an export appends after the build are seen without a rebuild.
* int_meta_delivery_state gives, for any log, the state the export computed from the log itself.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipelines.dbt_runner import run_dbt
from pipelines.warehouse import ensure_raw_schema

pytestmark = pytest.mark.dbt

# The first version of the log, before run_id, is_retryable and as_of existed.
FIRST_LOG_DDL = """
create table raw.meta_delivery_log (
    conversion_id varchar not null, event_id varchar not null, pixel_id varchar, batch_id varchar not null,
    attempt integer not null, status varchar not null, events_received integer, fbtrace_id varchar,
    error_type varchar, error_code integer, error_subcode integer, error_message varchar, http_status integer,
    test_event_code varchar, requested_at timestamp with time zone, recorded_at timestamp with time zone not null
)
"""

# The per-conversion state `convopt export-meta` computed from the log itself before
# int_meta_delivery_state existed: the reference the model must agree with.
EXPORT_STATE_SQL = """
select
    conversion_id,
    bool_or(status = 'sent') as is_sent,
    bool_or(status = 'expired') as has_expired_row,
    bool_or(status = 'skipped') as has_skipped_row,
    bool_or(status = 'failed' and not coalesce(is_retryable, false)) as has_final_failure,
    bool_or(status = 'unknown') as had_unknown,
    max(attempt) as last_attempt
from raw.meta_delivery_log
group by conversion_id
"""
STATE_COLUMNS = (
    "conversion_id, is_sent, has_expired_row, has_skipped_row, has_final_failure, had_unknown, last_attempt"
)


def dbt(warehouse: Path, target: Path, *args: str) -> None:
    result = run_dbt(list(args), warehouse=warehouse, target_path=target, capture=True)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def columns(con: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple]:
    return con.execute(
        "select column_name, data_type, is_nullable from information_schema.columns "
        "where table_catalog = ? and table_schema = 'raw' and table_name = 'meta_delivery_log' "
        "order by ordinal_position",
        [catalog],
    ).fetchall()


@pytest.fixture(scope="module")
def built_without_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every raw table but the delivery log (empty), then a whole `dbt build`."""
    root = tmp_path_factory.mktemp("no_delivery_log")
    warehouse = root / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_schema(con)
        con.execute("drop table raw.meta_delivery_log")
    dbt(warehouse, root / "target", "build")
    return warehouse


def test_a_build_creates_the_missing_log_with_the_loaders_columns(built_without_log: Path) -> None:
    with duckdb.connect(":memory:") as con:
        ensure_raw_schema(con)
        con.execute(f"attach '{built_without_log}' as built (read_only)")
        assert columns(con, "built") == columns(con, "memory")


def test_the_delivery_state_sees_rows_appended_after_the_build(built_without_log: Path) -> None:
    with duckdb.connect(str(built_without_log)) as con:
        assert con.execute("select count(*) from intermediate.int_meta_delivery_state").fetchone() == (0,)
        con.execute(
            """insert into raw.meta_delivery_log (conversion_id, event_id, batch_id, attempt, status, fbtrace_id,
                   requested_at, recorded_at, is_retryable)
               values ('c1', 'e1', 'run/1/1', 1, 'unknown', null, '2026-03-01 10:00:00+00', '2026-03-01 10:00:20+00', true),
                      ('c1', 'e1', 'run/1/2', 2, 'sent', 'trace-1', '2026-03-01 11:00:00+00', '2026-03-01 11:00:01+00', null)"""
        )
        state = con.execute(
            "select conversion_id, latest_status, sent_fbtrace_id, last_attempt, is_sent, had_unknown, last_sent_at "
            "from intermediate.int_meta_delivery_state"
        ).fetchall()
    last_sent = dt.datetime(2026, 3, 1, 11, 0, 1, tzinfo=dt.UTC)
    assert [row[:-1] for row in state] == [("c1", "sent", "trace-1", 2, True, True)]
    assert state[0][-1] == last_sent


def test_an_older_log_gets_the_newer_columns(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_schema(con)
        con.execute("drop table raw.meta_delivery_log")
        con.execute(FIRST_LOG_DDL)
        con.execute(
            "insert into raw.meta_delivery_log (conversion_id, event_id, batch_id, attempt, status, recorded_at) "
            "values ('c1', 'e1', 'b1', 1, 'failed', '2026-03-01 10:00:00+00')"
        )
    dbt(warehouse, tmp_path / "target", "run", "--select", "stg_meta_delivery_log", "int_meta_delivery_state")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        added = [name for name, _, _ in columns(con, "warehouse")][-3:]
        state = con.execute(
            "select conversion_id, has_final_failure from intermediate.int_meta_delivery_state"
        ).fetchall()
    assert added == ["run_id", "is_retryable", "as_of"]
    assert state == [("c1", True)]  # a failure logged before is_retryable existed is final


def test_the_state_is_the_exports_for_any_log(built_without_log: Path, tmp_path: Path) -> None:
    """Random logs (every status, retryable true/false/null, repeated attempts) give the state the export
    computed from the log itself, conversion for conversion."""
    warehouse = tmp_path / "copy.duckdb"
    warehouse.write_bytes(built_without_log.read_bytes())
    with duckdb.connect(str(warehouse)) as con:
        con.execute("delete from raw.meta_delivery_log")
        con.execute("select setseed(0.42)")
        con.execute(
            """
            insert into raw.meta_delivery_log (conversion_id, event_id, batch_id, attempt, status, fbtrace_id,
                requested_at, recorded_at, is_retryable)
            select
                'c' || (i % 300),
                'e' || (i % 300),
                'run-' || (i // 300) || '/1/' || (i % 7),
                cast(floor(random() * 4) as integer),
                ['sent', 'failed', 'failed', 'expired', 'skipped', 'unknown'][cast(floor(random() * 6) as integer) + 1],
                'trace-' || i,
                timestamptz '2026-03-01 00:00:00+00' + to_seconds(i),
                timestamptz '2026-03-01 00:00:00+00' + to_seconds(i + 1),
                [true, false, null][cast(floor(random() * 3) as integer) + 1]
            from range(1500) as t(i)
            """
        )
        model = f"select {STATE_COLUMNS} from intermediate.int_meta_delivery_state"
        export = f"select {STATE_COLUMNS} from ({EXPORT_STATE_SQL})"
        only_model = con.execute(f"{model} except all {export}").fetchall()
        only_export = con.execute(f"{export} except all {model}").fetchall()
        (conversions,) = con.execute("select count(*) from intermediate.int_meta_delivery_state").fetchone()
        (final_failures,) = con.execute(
            "select count(*) from intermediate.int_meta_delivery_state where has_final_failure and not is_sent"
        ).fetchone()
    assert only_model == [] and only_export == []
    assert conversions == 300 and final_failures > 0
