"""`convopt load-target --target postgres`: raw tables copied with COPY, each ingest load exactly once.

(The usage errors of `load-target` that need no server are in test_load_target_usage.py.)"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from pg_fixture import postgres_env  # noqa: F401 - the session fixture

from pipelines.engines import postgres
from pipelines.engines.postgres import conninfo_from_env, load_raw
from pipelines.warehouse import ensure_raw_schema

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
# Values CSV must carry through unchanged: quotes, separators, line breaks, non-ASCII, '' vs null.
AWKWARD = ['say "hi", ok', "line one\nline two", "Éloïse 東京", "", None, "\\N", "NULL"]


def _land(warehouse: Path, load_id: str, persons: int, loaded_at: dt.datetime) -> None:
    """One ingest load of `persons` conversions in raw.conversions, with its load_log and a rejected row."""
    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_schema(con)
        for i in range(persons):
            con.execute(
                "insert into raw.conversions (event_id, person_id, conversion_type, conversion_source, value_cents, "
                "conversion_time, utm_term, properties, _load_id, _source_file, _source_row, _loaded_at) "
                "values (?, ?, 'purchase', 'capi', ?, ?, ?, ?, ?, 'conversions.csv', ?, ?)",
                [
                    f"{load_id}-e{i}",
                    f"p{i}",
                    1999 + i,
                    T0 + dt.timedelta(seconds=i),
                    AWKWARD[i % len(AWKWARD)],
                    '{"k": "v, \\"quoted\\""}',
                    load_id,
                    i + 1,
                    loaded_at,
                ],
            )
        con.execute(
            "insert into raw.rejected_rows values (?, 'conversions.csv', 'conversions', 99, 'event_id', "
            "'event_id is required', '{}', ?)",
            [load_id, loaded_at],
        )
        con.execute(
            "insert into raw.load_log values (?, 'conversions.csv', ?, 'conversions', 'csv', ?, ?, 1, ?, ?, "
            "'loaded', null)",
            [load_id, "sha-" + load_id, persons + 1, persons, loaded_at, loaded_at],
        )


def _pg_rows(env: dict[str, str], sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(conninfo_from_env(env)) as pg:
        pg.execute("set time zone 'UTC'")
        return pg.execute(sql).fetchall()


@pytest.fixture
def pg_env(postgres_env: dict[str, str]) -> dict[str, str]:  # noqa: F811
    """The session database with an empty raw schema."""
    import psycopg

    with psycopg.connect(conninfo_from_env(postgres_env), autocommit=True) as pg:
        pg.execute("drop schema if exists raw cascade")
    return postgres_env


def test_values_types_and_nulls_survive_the_copy(tmp_path: Path, pg_env: dict[str, str]) -> None:
    warehouse = tmp_path / "w.duckdb"
    _land(warehouse, "load-1", persons=len(AWKWARD), loaded_at=T0)
    load_raw(warehouse, conninfo_from_env(pg_env))

    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = con.execute(
            "select event_id, value_cents, conversion_time, utm_term, properties, currency, _source_row "
            "from raw.conversions order by event_id"
        ).fetchall()
    copied = _pg_rows(
        pg_env,
        "select event_id, value_cents, conversion_time, utm_term, properties, currency, _source_row "
        "from raw.conversions order by event_id",
    )
    assert copied == expected
    assert {row[3] for row in copied} == set(AWKWARD)  # '' and null both present, and told apart
    types = dict(
        _pg_rows(
            pg_env,
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'conversions'",
        )
    )
    assert types["value_cents"] == "bigint"
    assert types["conversion_time"] == types["_loaded_at"] == "timestamp with time zone"
    assert types["event_id"] == "text"
    not_null = {
        row[0]
        for row in _pg_rows(
            pg_env,
            "select column_name from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'conversions' and is_nullable = 'NO'",
        )
    }
    assert {"event_id", "conversion_time", "_load_id", "_loaded_at"} <= not_null
    assert "person_id" not in not_null  # optional when the row carries an anonymous_id


def test_each_load_is_copied_exactly_once(tmp_path: Path, pg_env: dict[str, str]) -> None:
    warehouse = tmp_path / "w.duckdb"
    _land(warehouse, "load-1", persons=3, loaded_at=T0)
    first = load_raw(warehouse, conninfo_from_env(pg_env))
    again = load_raw(warehouse, conninfo_from_env(pg_env))
    _land(warehouse, "load-2", persons=2, loaded_at=T0 + dt.timedelta(hours=1))
    third = load_raw(warehouse, conninfo_from_env(pg_env))

    def conversions(report) -> tuple[int | None, int]:
        (copy,) = [c for c in report.copies if c.table == "conversions"]
        return copy.loads, copy.rows

    assert conversions(first) == (1, 3)
    assert conversions(again) == (0, 0)
    assert conversions(third) == (1, 2)
    assert _pg_rows(pg_env, "select _load_id, count(*) from raw.conversions group by 1 order by 1") == [
        ("load-1", 3),
        ("load-2", 2),
    ]
    assert _pg_rows(pg_env, "select count(*) from raw.rejected_rows") == [(2,)]
    assert _pg_rows(pg_env, "select count(*) from raw.load_log") == [(2,)]


def test_a_failed_copy_leaves_no_part_of_the_load(
    tmp_path: Path, pg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The load_log copy fails after the rows were copied: the transaction rolls back, a rerun copies it once."""
    warehouse = tmp_path / "w.duckdb"
    _land(warehouse, "load-1", persons=3, loaded_at=T0)
    real_copy = postgres._copy_rows

    def failing_copy(source, pg, table, where=None):
        if table == "load_log":
            raise RuntimeError("connection lost")
        return real_copy(source, pg, table, where)

    monkeypatch.setattr(postgres, "_copy_rows", failing_copy)
    with pytest.raises(RuntimeError, match="connection lost"):
        load_raw(warehouse, conninfo_from_env(pg_env))
    assert _pg_rows(pg_env, "select count(*) from raw.conversions") == [(0,)]
    assert _pg_rows(pg_env, "select count(*) from raw.rejected_rows") == [(0,)]

    monkeypatch.setattr(postgres, "_copy_rows", real_copy)
    load_raw(warehouse, conninfo_from_env(pg_env))
    assert _pg_rows(pg_env, "select count(*) from raw.conversions") == [(3,)]
    assert _pg_rows(pg_env, "select count(*) from raw.load_log") == [(1,)]


def test_ingest_with_target_postgres_also_copies(tmp_path: Path, pg_env: dict[str, str]) -> None:
    from pipelines.generate import GeneratorConfig, generate_dataset

    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    generate_dataset(landing, GeneratorConfig(persons=5, seed=3, start=dt.date(2026, 3, 1), days=3))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "ingest",
            "--no-progress",
            "--target",
            "postgres",
            str(landing),
        ],
        env={**pg_env, "CONVOPT_WAREHOUSE": str(warehouse), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = con.execute("select count(*) from raw.events").fetchone()[0]
    assert expected > 0
    assert _pg_rows(pg_env, "select count(*) from raw.events") == [(expected,)]
