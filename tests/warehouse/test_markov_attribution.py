"""Attribution model markov against a reference: the removal effects solved exactly with numpy
((I - Q)^-1 R of the absorbing chain) from the paths of the demo warehouse, and the credits derived from them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
LOOKBACK_MICROSECONDS = 7 * 86_400_000_000


def paths_of(
    con: duckdb.DuckDBPyConnection, state: str
) -> tuple[dict[str, list[tuple[str, str]]], list[list[str]]]:
    """Converting paths by conversion id ([(touchpoint_event_id, state)] in order) and the non-converting
    paths (states in order), read independently of the models' SQL."""
    converting: dict[str, list[tuple[str, str]]] = {}
    rows = con.execute(
        f"""
        select c.id, t.touchpoint_event_id, {state}
        from intermediate.int_conversions_valued as c
        join intermediate.int_touchpoints as t
          on t.person_id = c.person_id
         and epoch_us(c.conversion_time) - {LOOKBACK_MICROSECONDS} < epoch_us(t.touchpoint_time)
         and t.touchpoint_time <= c.conversion_time
        order by c.id, t.touchpoint_time, t.touchpoint_event_id
        """
    ).fetchall()
    for conversion_id, event_id, s in rows:
        converting.setdefault(conversion_id, []).append((event_id, s))
    non_converting: dict[str, list[str]] = {}
    rows = con.execute(
        f"""
        select t.person_id, {state}
        from intermediate.int_touchpoints as t
        where t.person_id not in (select person_id from intermediate.int_conversions_valued)
        order by t.person_id, t.touchpoint_time, t.touchpoint_event_id
        """
    ).fetchall()
    for person_id, s in rows:
        non_converting.setdefault(person_id, []).append(s)
    return converting, list(non_converting.values())


def reference_removal_effects(paths: list[tuple[list[str], bool]]) -> tuple[float, dict[str, float]]:
    """P and the removal effect of every state of a first-order chain fitted on ``paths``, solved exactly."""
    states = sorted({s for path, _ in paths for s in path})
    index = {s: i for i, s in enumerate(states)}
    n = len(states)
    start, conversion, null = n, n + 1, n + 2
    counts = np.zeros((n + 3, n + 3))
    for path, converted in paths:
        previous = start
        for s in path:
            counts[previous, index[s]] += 1
            previous = index[s]
        counts[previous, conversion if converted else null] += 1
    transient = list(range(n + 1))

    def conversion_probability(removed: int | None) -> float:
        matrix = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        if removed is not None:  # every step into the removed state goes to null instead
            matrix[:, null] += matrix[:, removed]
            matrix[:, removed] = 0
        q = matrix[np.ix_(transient, transient)]
        r = matrix[transient, conversion]
        return float(np.linalg.solve(np.eye(n + 1) - q, r)[start])

    p = conversion_probability(None)
    return p, {s: max(1 - conversion_probability(index[s]) / p, 0.0) for s in states}


def check_against_reference(warehouse: Path, state: str) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        converting, non_converting = paths_of(con, state)
        stored = {
            s: (float(p), float(effect))
            for s, p, effect in con.execute(
                "select markov_state, conversion_probability, removal_effect "
                "from intermediate.int_attribution_markov_effects"
            ).fetchall()
        }
        credits = {
            (conversion_id, event_id): float(credit)
            for conversion_id, event_id, credit in con.execute(
                "select conversion_id, touchpoint_event_id, credit from intermediate.int_attribution_credits "
                "where attribution_model = 'markov' and touchpoint_event_id is not null"
            ).fetchall()
        }
    paths = [([s for _, s in touches], True) for touches in converting.values()]
    paths += [(states, False) for states in non_converting]
    assert len(converting) > 50 and len(non_converting) > 50  # both kinds of path really occur
    p, effects = reference_removal_effects(paths)

    assert p == pytest.approx(len(converting) / len(paths), abs=1e-12)  # the fitted chain's P
    assert set(stored) == set(effects)
    for s, effect in effects.items():
        assert stored[s][0] == pytest.approx(p, abs=1e-9), s
        assert stored[s][1] == pytest.approx(effect, abs=1e-9), s

    assert len(credits) == sum(len(touches) for touches in converting.values())
    for conversion_id, touches in converting.items():
        per_state = Counter(s for _, s in touches)
        weights = [effects[s] / per_state[s] for _, s in touches]
        for (event_id, _), weight in zip(touches, weights, strict=True):
            # billionths rounded down, the remainder on the latest touch
            assert credits[(conversion_id, event_id)] == pytest.approx(
                weight / sum(weights), abs=(len(touches) + 1) * 1e-9
            ), (conversion_id, event_id)


def test_markov_by_channel_matches_a_numpy_reference(demo_run: dict) -> None:
    check_against_reference(demo_run["warehouse"], "t.channel")


def test_markov_by_campaign_matches_a_numpy_reference(demo_run: dict, tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_run["warehouse"], warehouse)
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(PROJECT_DIR),
        "CONVOPT_WAREHOUSE": str(warehouse),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
    }
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            "run",
            "--project-dir",
            str(PROJECT_DIR),
            "--select",
            "int_attribution_markov_effects int_attribution_credits",
            "--vars",
            "{attribution_markov_states: campaign}",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    check_against_reference(warehouse, "coalesce(t.campaign_id, '(unattributed)')")
