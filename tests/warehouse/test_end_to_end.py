"""The whole flow a newcomer runs: generate -> ingest -> dbt build, on a small data set in a temp dir."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.dbt_runner import run_dbt
from pipelines.ingest import ingest_paths

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def built(demo_run: dict) -> dict:
    """generate -> ingest -> dbt build, done once per session by `convopt run` (tests/conftest.py)."""
    return demo_run


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_every_generated_row_is_loaded_or_rejected(built: dict) -> None:
    by_file = {Path(f.file_name).name: f for f in built["report"].files}
    for written in built["written"]:
        result = by_file[written.path.name]
        assert result.status == "loaded"
        assert result.rows_read == written.rows
        assert result.rows_loaded + result.rows_rejected == written.rows
        # The generator's deliberately malformed rows are exactly the ones ingestion refuses.
        assert result.rows_rejected == written.bad_rows


def test_load_log_reconciles_with_raw_tables(built: dict) -> None:
    for stream in ("events", "conversions", "ad_spend"):
        ((logged, in_raw),) = query(
            built["warehouse"],
            f"""
            select
                (select sum(rows_loaded) from raw.load_log where stream = '{stream}' and status = 'loaded'),
                (select count(*) from raw.{stream})
            """,
        )
        assert logged == in_raw > 0
    ((rejected, logged_rejected),) = query(
        built["warehouse"],
        "select (select count(*) from raw.rejected_rows), (select sum(rows_rejected) from raw.load_log)",
    )
    assert rejected == logged_rejected > 0


def test_staging_keeps_one_row_per_raw_row(built: dict) -> None:
    ((raw_events, stg_events, raw_conv, stg_conv),) = query(
        built["warehouse"],
        """
        select
            (select count(*) from raw.events), (select count(*) from staging.stg_events),
            (select count(*) from raw.conversions), (select count(*) from staging.stg_conversions)
        """,
    )
    assert (raw_events, raw_conv) == (stg_events, stg_conv)


def test_staging_normalizes_enumerations_and_currency(built: dict) -> None:
    rows = query(
        built["warehouse"],
        """
        select count(*) filter (where conversion_type <> lower(conversion_type)),
               count(*) filter (where currency <> upper(currency)),
               count(*) filter (where conversion_time is null)
        from staging.stg_conversions
        """,
    )
    assert rows == [(0, 0, 0)]


def test_rerun_ingests_nothing_and_rebuild_passes(built: dict) -> None:
    before = query(
        built["warehouse"], "select (select count(*) from raw.events), (select count(*) from raw.load_log)"
    )
    again = ingest_paths([built["landing"]], warehouse=built["warehouse"], progress=False)
    assert {f.status for f in again.files} == {"skipped"}
    after = query(
        built["warehouse"], "select (select count(*) from raw.events), (select count(*) from raw.load_log)"
    )
    assert before == after
    rebuild = run_dbt(
        ["build"], warehouse=built["warehouse"], target_path=built["root"] / "target", capture=True
    )
    assert rebuild.returncode == 0, rebuild.stdout[-4000:]
