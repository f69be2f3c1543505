"""meta_capi_events built incrementally equals a full refresh at the same reference time, row for row.

One warehouse goes through a sequence of builds on a copy of the dbt project (so a step can edit the
optimization rules). After each incremental run the warehouse is copied and the copy rebuilt with
`--full-refresh` at the same reference time (var `meta_export_as_of`); the two marts must be equal
(EXCEPT ALL both ways). Before each incremental run every row of the mart is marked (its
hashed_user_data_fields raised by MARK); a row the run recomputed comes back unmarked, so each step
also checks exactly which conversions the run recomputed, and fails if the model is turned back into
a table. The marks are removed before the comparison. A build reads only the loads after the newest
one the previous build read (`>`, as in every incremental model): each batch ends with a load of one
conversion, which the next runs must not recompute.

Steps (reference times R1-R5):
1. first build at R1 = 2025-03-06 (a full build);
2. a second load at R2 = 2025-03-08: a late copy that fills a skipped conversion's user agent and
   email, a copy that fills a value, a copy more than 48 h earlier that re-anchors a key (its ids
   change), a new conversion for an old day and a new recent one; moving to R2 expires a ready row
   and makes a future one ready;
3. the reference time set back to R3 = 2025-03-01 (no new data): rows become ready or future again;
4. the rules edited and the default pixel changed at R2: every row is recomputed, the rows of the
   removed rule disappear;
5. R5 = 2025-04-01: the `website` rows expire, the `physical_store` ones (62 days) stay ready;
6. the recorded state deleted (as in a warehouse built before the model was incremental): every row is
   recomputed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipelines.contract import column_names
from pipelines.warehouse import connect, ensure_raw_schema

pytestmark = pytest.mark.dbt

PROJECT_DIR = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"
MART = "marts.meta_capi_events"
MARK = 100  # more than the 11 hashed fields a payload can carry
WEBSITE = {"event_source_url": "https://shop.test/checkout", "client_user_agent": "Mozilla/5.0"}

R1, R2, R3, R5 = (
    "2025-03-06 00:00:00+00",
    "2025-03-08 00:00:00+00",
    "2025-03-01 00:00:00+00",
    "2025-04-01 00:00:00+00",
)


def conversion(event_id: str, conversion_type: str, source: str, time: str, **fields: object) -> dict:
    return {
        "event_id": event_id,
        "person_id": f"person-{event_id}",
        "conversion_type": conversion_type,
        "conversion_source": source,
        "conversion_time": time,
        "currency": "USD",
        **fields,
    }


BATCH_1 = [
    conversion("old-plain", "purchase", "capi", "2025-02-20 10:00:00+00", value_cents=4000, **WEBSITE),
    conversion("expiring", "purchase", "capi", "2025-02-28 12:00:00+00", value_cents=4000, **WEBSITE),
    conversion("stays-ready", "purchase", "capi", "2025-03-05 10:00:00+00", value_cents=1500, **WEBSITE),
    conversion("future", "signup", "pixel", "2025-03-07 12:00:00+00", value_cents=0, **WEBSITE),
    # Skipped: no user agent, which a website event needs.
    conversion(
        "late-copy",
        "purchase",
        "pixel",
        "2025-03-04 09:00:00+00",
        value_cents=3000,
        event_source_url=WEBSITE["event_source_url"],
    ),
    conversion("reanchor", "purchase", "pixel", "2025-03-03 10:00:00+00", value_cents=5000, **WEBSITE),
    conversion("reanchor", "purchase", "capi", "2025-03-03 11:00:00+00", value_cents=5000, **WEBSITE),
    # Skipped for good: the subscription rule wants capi or webhook.
    conversion("wrong-source", "subscription", "pixel", "2025-03-05 08:00:00+00", value_cents=900, **WEBSITE),
    # Skipped: a purchase worth 0 is below the rule's 1-cent minimum.
    conversion("value-fill", "purchase", "pixel", "2025-03-05 12:00:00+00", value_cents=0, **WEBSITE),
    # Skipped for good: the video_render rule is not sent.
    conversion("video", "video_render", "capi", "2025-03-05 08:00:00+00", value_cents=0),
]
BATCH_2 = [
    conversion(
        "late-copy",
        "purchase",
        "capi",
        "2025-03-04 10:00:00+00",
        value_cents=3000,
        email="Late.Copy@Example.com",
        **WEBSITE,
    ),
    conversion("value-fill", "purchase", "capi", "2025-03-05 12:30:00+00", value_cents=2500, **WEBSITE),
    # More than 48 h before the key's known copies: the key now has two conversions, with new ids.
    conversion("reanchor", "purchase", "capi", "2025-02-28 09:00:00+00", value_cents=5000, **WEBSITE),
    conversion("late-old", "purchase", "capi", "2025-02-10 10:00:00+00", value_cents=700, **WEBSITE),
    conversion("new-recent", "signup", "capi", "2025-03-07 08:00:00+00", value_cents=0, **WEBSITE),
]
# Step 4: signups become physical_store events (a 62-day window), the purchase minimum rises to
# 2000 cents, the subscription rule is removed.
EDITED_RULES = """conversion_type,meta_event_name,is_sent,min_value_cents,value_multiplier,action_source,qualifying_sources
purchase,Purchase,true,2000,1.0,website,pixel|capi|webhook
signup,CompleteRegistration,true,0,1.0,physical_store,pixel|capi
video_render,VideoRender,false,0,0.0,app,capi
"""


def load(warehouse: Path, load_id: str, loaded_at: str, rows: list[dict]) -> None:
    """Append rows to raw.conversions as the loader would (with its lineage columns)."""
    names = column_names("conversions")
    lineage = ["_load_id", "_source_file", "_source_row", "_loaded_at"]
    placeholders = ", ".join("?" * (len(names) + len(lineage)))
    con = connect(warehouse)
    try:
        ensure_raw_schema(con)
        for number, row in enumerate(rows, start=1):
            values = [row.get(name) for name in names] + [load_id, f"{load_id}.jsonl", number, loaded_at]
            con.execute(
                f"insert into raw.conversions ({', '.join(names + lineage)}) values ({placeholders})", values
            )
    finally:
        con.close()


class Project:
    """A copy of the dbt project (its seeds can be edited) and the commands the steps run on it."""

    def __init__(self, root: Path):
        self.root = root
        for name in ("dbt_project.yml", "profiles.yml"):
            shutil.copy2(PROJECT_DIR / name, root / name)
        for folder in ("models", "macros", "seeds", "data-tests"):
            shutil.copytree(PROJECT_DIR / folder, root / folder)

    def dbt(self, warehouse: Path, *args: str, as_of: str, pixel: str | None = None) -> None:
        variables = {"meta_export_as_of": as_of, **({"meta_default_pixel_id": pixel} if pixel else {})}
        env = {
            **os.environ,
            "DBT_PROFILES_DIR": str(self.root),
            "CONVOPT_WAREHOUSE": str(warehouse),
            "DBT_TARGET_PATH": str(warehouse.parent / f"target-{warehouse.stem}"),
            "DBT_LOG_PATH": str(warehouse.parent / f"logs-{warehouse.stem}"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        env.pop("CONVOPT_TARGET", None)
        command = [str(DBT), *args, "--vars", json.dumps(variables), "--project-dir", str(self.root)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]

    def run(
        self, warehouse: Path, *, as_of: str, pixel: str | None = None, full_refresh: bool = False
    ) -> None:
        extra = ["--full-refresh"] if full_refresh else []
        self.dbt(warehouse, "run", "--select", "+meta_capi_events", *extra, as_of=as_of, pixel=pixel)


def execute(warehouse: Path, *statements: str) -> None:
    with duckdb.connect(str(warehouse)) as con:
        for statement in statements:
            con.execute(statement)


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def incremental_step(project: Project, warehouse: Path, *, as_of: str, pixel: str | None = None) -> dict:
    """Mark every row, run incrementally, then compare with a full refresh of a copy at the same time.

    Returns the conversions the run recomputed (sorted event_id per row, repeated for a key with
    several conversions), the rows only in the incremental build and only in the full refresh."""
    execute(warehouse, f"update {MART} set hashed_user_data_fields = hashed_user_data_fields + {MARK}")
    project.run(warehouse, as_of=as_of, pixel=pixel)
    recomputed = [
        event_id
        for (event_id,) in query(
            warehouse, f"select event_id from {MART} where hashed_user_data_fields < {MARK} order by 1"
        )
    ]
    execute(
        warehouse,
        f"update {MART} set hashed_user_data_fields = hashed_user_data_fields - {MARK} "
        f"where hashed_user_data_fields >= {MARK}",
    )
    full = warehouse.with_name(f"{warehouse.stem}-full.duckdb")
    full.unlink(missing_ok=True)
    shutil.copy(warehouse, full)
    project.run(full, as_of=as_of, pixel=pixel, full_refresh=True)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute(f"attach '{full}' as full_refresh (read_only)")
        only_incremental = con.execute(
            f"select * from {MART} except all select * from full_refresh.{MART}"
        ).fetchall()
        only_full = con.execute(
            f"select * from full_refresh.{MART} except all select * from {MART}"
        ).fetchall()
    return {"recomputed": recomputed, "only_incremental": only_incremental, "only_full": only_full}


def statuses(warehouse: Path) -> dict[tuple[str, str], str]:
    """(event_id, conversion day) → status of every row."""
    rows = query(warehouse, f"select event_id, cast(conversion_time as date), status from {MART}")
    return {(event_id, str(day)): status for event_id, day, status in rows}


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("meta_capi_incremental")
    (root / "project").mkdir()
    project = Project(root / "project")
    warehouse = root / "warehouse.duckdb"
    found: dict = {}

    # The newest load of each batch is one conversion: the next build must not read it again (`>`).
    load(warehouse, "load-1", "2025-03-05 23:00:00+00", BATCH_1[:-1])
    load(warehouse, "load-1b", "2025-03-06 00:00:00+00", BATCH_1[-1:])
    project.dbt(warehouse, "seed", as_of=R1)
    project.run(warehouse, as_of=R1)
    found["first build"] = statuses(warehouse)

    load(warehouse, "load-2", "2025-03-06 23:00:00+00", BATCH_2[:-1])
    load(warehouse, "load-2b", "2025-03-07 00:00:00+00", BATCH_2[-1:])
    found["second load"] = incremental_step(project, warehouse, as_of=R2)
    found["second load statuses"] = statuses(warehouse)

    found["reference set back"] = incremental_step(project, warehouse, as_of=R3)
    found["reference set back statuses"] = statuses(warehouse)

    (project.root / "seeds" / "optimization_rules.csv").write_text(EDITED_RULES)
    project.dbt(warehouse, "seed", as_of=R2)
    found["rules edited"] = incremental_step(project, warehouse, as_of=R2, pixel="222")
    found["rules edited statuses"] = statuses(warehouse)

    found["a month later"] = incremental_step(project, warehouse, as_of=R5, pixel="222")
    found["a month later statuses"] = statuses(warehouse)

    execute(warehouse, "delete from audit.incremental_state where model_name = 'meta_capi_events'")
    found["state lost"] = incremental_step(project, warehouse, as_of=R5, pixel="222")
    found["warehouse"] = warehouse
    return found


def test_first_build(steps: dict) -> None:
    assert steps["first build"] == {
        ("old-plain", "2025-02-20"): "expired",
        ("expiring", "2025-02-28"): "ready",
        ("stays-ready", "2025-03-05"): "ready",
        ("future", "2025-03-07"): "expired",
        ("late-copy", "2025-03-04"): "skipped",
        ("reanchor", "2025-03-03"): "ready",
        ("wrong-source", "2025-03-05"): "skipped",
        ("video", "2025-03-05"): "skipped",
        ("value-fill", "2025-03-05"): "skipped",
    }


@pytest.mark.parametrize(
    ("step", "recomputed"),
    [
        # Loaded: late-copy, value-fill, reanchor (both its conversions), late-old, new-recent; moved by
        # the reference time: expiring (too old now) and future (current now). Not: video (the first
        # build's newest load), old-plain, stays-ready, wrong-source.
        (
            "second load",
            [
                "expiring",
                "future",
                "late-copy",
                "late-old",
                "new-recent",
                "reanchor",
                "reanchor",
                "value-fill",
            ],
        ),
        # Back to March 1st: later rows are in the future, expiring and the re-anchored key's first
        # conversion are within 7 days again; old-plain, late-old and the skipped rows stay as they are.
        (
            "reference set back",
            [
                "expiring",
                "future",
                "late-copy",
                "new-recent",
                "reanchor",
                "reanchor",
                "stays-ready",
                "value-fill",
            ],
        ),
        # Settings changed: everything (wrong-source is gone with its rule).
        (
            "rules edited",
            [
                "expiring",
                "future",
                "late-copy",
                "late-old",
                "new-recent",
                "old-plain",
                "reanchor",
                "reanchor",
                "stays-ready",
                "value-fill",
                "video",
            ],
        ),
        # The ready website purchases expire; the physical_store signups stay ready (62 days); new-recent,
        # the newest load, is not read again.
        ("a month later", ["late-copy", "reanchor", "reanchor", "value-fill"]),
        (
            "state lost",
            [
                "expiring",
                "future",
                "late-copy",
                "late-old",
                "new-recent",
                "old-plain",
                "reanchor",
                "reanchor",
                "stays-ready",
                "value-fill",
                "video",
            ],
        ),
    ],
)
def test_incremental_run_recomputes_only_what_changed_and_equals_a_full_refresh(
    steps: dict, step: str, recomputed: list[str]
) -> None:
    assert steps[step]["only_incremental"] == []
    assert steps[step]["only_full"] == []
    assert steps[step]["recomputed"] == recomputed


def test_second_load_statuses(steps: dict) -> None:
    assert steps["second load statuses"] == {
        ("old-plain", "2025-02-20"): "expired",
        ("expiring", "2025-02-28"): "expired",
        ("stays-ready", "2025-03-05"): "ready",
        ("future", "2025-03-07"): "ready",
        ("late-copy", "2025-03-04"): "ready",
        ("reanchor", "2025-02-28"): "expired",
        ("reanchor", "2025-03-03"): "ready",
        ("wrong-source", "2025-03-05"): "skipped",
        ("video", "2025-03-05"): "skipped",
        ("value-fill", "2025-03-05"): "ready",
        ("late-old", "2025-02-10"): "expired",
        ("new-recent", "2025-03-07"): "ready",
    }


def test_late_copy_fills_the_payload(steps: dict) -> None:
    ((payload,),) = query(steps["warehouse"], f"select payload from {MART} where event_id = 'late-copy'")
    user_data = json.loads(payload)["user_data"]
    assert user_data["client_user_agent"] == WEBSITE["client_user_agent"]
    assert len(user_data["em"][0]) == 64


def test_reference_time_set_back(steps: dict) -> None:
    found = steps["reference set back statuses"]
    assert found[("expiring", "2025-02-28")] == "ready"
    assert found[("reanchor", "2025-02-28")] == "ready"
    assert found[("stays-ready", "2025-03-05")] == "expired"  # in the future of March 1st
    assert found[("old-plain", "2025-02-20")] == "expired"


def test_rule_edits_and_removed_rule(steps: dict) -> None:
    found = steps["rules edited statuses"]
    assert not [key for key in found if key[0] == "wrong-source"]
    assert found[("stays-ready", "2025-03-05")] == "skipped"  # 1500 cents, now below 2000
    rows = query(
        steps["warehouse"],
        f"select distinct action_source, pixel_id from {MART} where event_name = 'CompleteRegistration'",
    )
    assert rows == [("physical_store", "222")]


def test_physical_store_rows_keep_their_62_day_window(steps: dict) -> None:
    found = steps["a month later statuses"]
    assert found[("future", "2025-03-07")] == "ready"
    assert found[("new-recent", "2025-03-07")] == "ready"
    assert found[("late-copy", "2025-03-04")] == "expired"
