"""benchmarks/meta_payloads.py's reading of dbt's run_results.json: the span of the nodes, from which the
benchmark takes dbt's own time (start-up, parsing, hooks) as the run's wall time outside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("meta_payloads")


def node(unique_id: str, *steps: tuple[str, str]) -> dict:
    names = ("compile", "execute")
    return {
        "unique_id": unique_id,
        "execution_time": 0.0,
        "timing": [
            {"name": name, "started_at": start, "completed_at": end}
            for name, (start, end) in zip(names, steps, strict=False)
        ],
    }


def write(target: Path, results: list[dict]) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    (target / "run_results.json").write_text(json.dumps({"results": results}))
    return target


def test_nodes_span_runs_from_the_first_start_to_the_last_end(bench, tmp_path):
    # Two threads: the second node starts before the first ends; the span is not the sum of the nodes.
    target = write(
        tmp_path,
        [
            node(
                "model.convopt.int_conversion_identities",
                ("2026-12-06T10:32:19.500000Z", "2026-12-06T10:32:19.600000Z"),
                ("2026-12-06T10:32:19.600000Z", "2026-12-06T10:32:30.400000Z"),
            ),
            node(
                "model.convopt.int_identity_map",
                ("2026-12-06T10:32:19.259000Z", "2026-12-06T10:32:19.300000Z"),
                ("2026-12-06T10:32:19.300000Z", "2026-12-06T10:32:20.200000Z"),
            ),
            node(
                "model.convopt.meta_capi_events",
                ("2026-12-06T10:32:43.355000Z", "2026-12-06T10:32:43.400000Z"),
                ("2026-12-06T10:32:43.400000Z", "2026-12-06T10:32:47.832000Z"),
            ),
        ],
    )
    assert bench.nodes_span(target) == pytest.approx(47.832 - 19.259)


def test_nodes_span_of_a_run_without_nodes_is_zero(bench, tmp_path):
    # A node that never ran (skipped) has no timing: nothing to span.
    target = write(tmp_path, [{"unique_id": "model.convopt.meta_capi_events", "timing": []}])
    assert bench.nodes_span(target) == 0.0
