"""A held-out suite: expectations of PostHog's own funnel tests, as the peers' rules record them, checked on
the marts built from raw events (not on the matching model with hand-made inputs, as the unit tests do).

Each person is one case. Funnels use separate event names so that a person takes part in one funnel only;
the definitions write the step names in capitals while the events arrive in lower case (the two must
match). Times are UTC on 2024-01-01.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.warehouse import ensure_raw_schema

pytestmark = pytest.mark.dbt

PROJECT_DIR = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"
LOADED_AT = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)

FUNNELS = """funnel_name,step_number,step_name,event_name,conversion_window_hours,conversion_window_interval,conversion_window_unit,order_type
ordered,1,A,A,,1,hour,ordered
ordered,2,B,B,,1,hour,ordered
ordered,3,C,C,,1,hour,ordered
strict,1,A,SA,,60,minute,strict
strict,2,B,SB,,60,minute,strict
strict,3,C,SC,,60,minute,strict
any_order,1,A,UA,,3600,second,unordered
any_order,2,B,UB,,3600,second,unordered
any_order,3,C,UC,,3600,second,unordered
re_entry,1,A,RA,1,,,
re_entry,2,B,RB,1,,,
all_excluded,1,A,EA,1,,,
all_excluded,2,B,EB,1,,,
all_excluded,3,C,EC,1,,,
timed,1,A,TA,3,,,
timed,2,B,TB,3,,,
"""
EXCLUSIONS = """funnel_name,event_name,from_step,to_step
re_entry,X,1,2
all_excluded,X,1,3
"""

# (person, event name, time "HH:MM:SS")
EVENTS = [
    # Every step-1 event starts an attempt: converts from the 13:30 start (900 s, 1,800 s).
    ("p_restart", "a", "13:00:00"),
    ("p_restart", "a", "13:30:00"),
    ("p_restart", "b", "13:45:00"),
    ("p_restart", "c", "14:15:00"),
    # A 13:01, A 13:35, B 13:41: time to B 360 s, from the later A.
    ("p_later_a", "a", "13:01:00"),
    ("p_later_a", "a", "13:35:00"),
    ("p_later_a", "b", "13:41:00"),
    # A, B, A, B, C: both attempts complete with the same C; the later start is used (600 s, 600 s).
    ("p_two_tries", "a", "10:00:00"),
    ("p_two_tries", "b", "10:10:00"),
    ("p_two_tries", "a", "10:20:00"),
    ("p_two_tries", "b", "10:30:00"),
    ("p_two_tries", "c", "10:40:00"),
    # Inclusive window: B exactly 1 h after A counts; one second more does not.
    ("p_at_limit", "a", "10:00:00"),
    ("p_at_limit", "b", "11:00:00"),
    ("p_past_limit", "a", "10:00:00"),
    ("p_past_limit", "b", "11:00:01"),
    # Strict: A, B, B, C converts, times from the first B (300 s, 900 s); A, X, B stops at A.
    ("p_strict_repeat", "sa", "10:00:00"),
    ("p_strict_repeat", "sb", "10:05:00"),
    ("p_strict_repeat", "sb", "10:10:00"),
    ("p_strict_repeat", "sc", "10:20:00"),
    ("p_strict_broken", "sa", "10:00:00"),
    ("p_strict_broken", "page_view", "10:01:00"),
    ("p_strict_broken", "sb", "10:02:00"),
    # Unordered: C, A, B inside the window: 3 steps, numbered in time order.
    ("p_any", "uc", "10:00:00"),
    ("p_any", "ua", "10:20:00"),
    ("p_any", "ub", "10:40:00"),
    # Exclusion, then a clean re-entry that reaches the same step: kept.
    ("p_re_entry", "ra", "10:00:00"),
    ("p_re_entry", "x", "10:10:00"),
    ("p_re_entry", "ra", "10:20:00"),
    ("p_re_entry", "rb", "10:30:00"),
    # Exclusion inside the window with no further step: dropped.
    ("p_dropped", "ra", "10:00:00"),
    ("p_dropped", "x", "10:30:00"),
    # Tainted after step 2; a later clean attempt reaches only step 1: does not rescue. The only person of
    # the funnel, so funnel_stats has no rows for it.
    ("p_not_rescued", "ea", "10:00:00"),
    ("p_not_rescued", "eb", "10:05:00"),
    ("p_not_rescued", "x", "10:10:00"),
    ("p_not_rescued", "ea", "10:20:00"),
    # Step times 3,600 s and 7,200 s: average and interpolated median 5,400 s; a 0 s step is left out.
    ("p_hour", "ta", "10:00:00"),
    ("p_hour", "tb", "11:00:00"),
    ("p_two_hours", "ta", "10:00:00"),
    ("p_two_hours", "tb", "12:00:00"),
    ("p_same_instant", "ta", "10:00:00"),
    ("p_same_instant", "tb", "10:00:00"),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("posthog_cases")
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(PROJECT_DIR / name, root / name)
    for folder in ("models", "macros", "seeds", "data-tests"):
        shutil.copytree(PROJECT_DIR / folder, root / folder)
    (root / "seeds" / "funnel_definitions.csv").write_text(FUNNELS)
    (root / "seeds" / "funnel_exclusions.csv").write_text(EXCLUSIONS)
    path = root / "warehouse.duckdb"
    rows = [
        {
            "event_id": f"ev_{index:04d}",
            "person_id": person,
            "event_name": name,
            "event_time": dt.datetime.combine(dt.date(2024, 1, 1), dt.time.fromisoformat(at), dt.UTC),
            "source": "pixel",
            "_load_id": "load_1",
            "_source_file": "events.jsonl",
            "_source_row": index + 1,
            "_loaded_at": LOADED_AT,
        }
        for index, (person, name, at) in enumerate(EVENTS)
    ]
    con = duckdb.connect(str(path))
    try:
        ensure_raw_schema(con)
        con.register("landing_file", pa.Table.from_pylist(rows))
        con.execute(f"insert into raw.events ({', '.join(rows[0])}) select * from landing_file")
    finally:
        con.close()
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(root),
        "CONVOPT_WAREHOUSE": str(path),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
    }
    env.pop("CONVOPT_TARGET", None)
    marts = ["+funnel_stats", "+funnel_time_to_convert", "+person_conversion_summary"]
    for command in (["seed"], ["build", "--select", *marts, "--exclude-resource-type", "unit_test"]):
        result = subprocess.run(
            [str(DBT), *command, "--project-dir", str(root)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-4000:]
    return path


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def person(warehouse: Path, person_id: str) -> tuple:
    """(completed_steps, is_converted, is_excluded, started_at as HH:MM:SS, step gaps in seconds)."""
    funnel = query(
        warehouse,
        "select completed_steps, is_converted, is_excluded, strftime(started_at, '%H:%M:%S')"
        f" from marts.conversion_funnel where person_id = '{person_id}'",
    )
    gaps = query(
        warehouse,
        "select seconds_from_previous_step from marts.conversion_funnel_step"
        f" where person_id = '{person_id}' and step_number > 1 order by step_number",
    )
    assert len(funnel) == 1, (person_id, funnel)
    return (*funnel[0], [int(gap) for (gap,) in gaps])


@pytest.mark.parametrize(
    ("person_id", "expected"),
    [
        ("p_restart", (3, True, False, "13:30:00", [900, 1800])),
        ("p_later_a", (2, False, False, "13:35:00", [360])),
        ("p_two_tries", (3, True, False, "10:20:00", [600, 600])),
        ("p_at_limit", (2, False, False, "10:00:00", [3600])),
        ("p_past_limit", (1, False, False, "10:00:00", [])),
        ("p_strict_repeat", (3, True, False, "10:00:00", [300, 900])),
        ("p_strict_broken", (1, False, False, "10:00:00", [])),
        ("p_any", (3, True, False, "10:00:00", [1200, 1200])),
        ("p_re_entry", (2, True, False, "10:20:00", [600])),
        ("p_dropped", (1, False, True, "10:00:00", [])),
        ("p_not_rescued", (2, False, True, "10:00:00", [300])),
    ],
)
def test_a_person_as_posthog_counts_them(warehouse: Path, person_id: str, expected: tuple) -> None:
    assert person(warehouse, person_id) == expected


def test_step_counts_are_cumulative_and_excluded_persons_are_not_counted(warehouse: Path) -> None:
    counts = query(
        warehouse,
        "select funnel_name, step_name, persons_reached from marts.funnel_stats"
        " where period_type = 'all_time' and campaign_scope = 'all' order by funnel_name, step_number",
    )
    assert [row for row in counts if row[0] == "ordered"] == [
        ("ordered", "A", 5),
        ("ordered", "B", 4),
        ("ordered", "C", 2),
    ]
    assert [row for row in counts if row[0] == "re_entry"] == [("re_entry", "A", 1), ("re_entry", "B", 1)]
    assert [row for row in counts if row[0] == "any_order"] == [
        ("any_order", "Completed 1 step", 1),
        ("any_order", "Completed 2 steps", 1),
        ("any_order", "Completed 3 steps", 1),
    ]
    # Everyone in it is excluded: no rows at all (not zeros).
    assert not [row for row in counts if row[0] == "all_excluded"]


def test_step_times_leave_out_zero_gaps_and_use_an_interpolated_median(warehouse: Path) -> None:
    assert query(
        warehouse,
        "select persons, average_seconds, p50_seconds from marts.funnel_time_to_convert"
        " where funnel_name = 'timed' and period_type = 'all_time' and time_span = 'step'",
    ) == [(2, 5400, 5400)]
