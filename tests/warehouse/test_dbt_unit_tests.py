"""The dbt unit tests (``unit_tests:`` in the models' YAML). `convopt run` builds the `scheduled` selector,
which leaves them out; `make test` runs every one of them here, on a copy of the demo warehouse (unit
tests read their inputs' column types from the built relations)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.dbt_runner import run_dbt

pytestmark = pytest.mark.dbt


SQL_PROOF = "test.convopt.assert_conversion_meta_normalization_macros"  # tagged proves_sql


def test_the_scheduled_run_left_out_the_unit_tests_and_the_sql_proofs(demo_run: dict) -> None:
    results = json.loads((demo_run["target"] / "run_results.json").read_text())
    kinds = {r["unique_id"].split(".")[0] for r in results["results"]}
    assert {"model", "seed", "test"} <= kinds
    assert "unit_test" not in kinds
    assert SQL_PROOF not in {r["unique_id"] for r in results["results"]}


def test_every_unit_test_passes(demo_run: dict, tmp_path: Path) -> None:
    warehouse = Path(shutil.copy2(demo_run["warehouse"], tmp_path / "warehouse.duckdb"))
    target = tmp_path / "target"
    completed = run_dbt(
        ["test", "--select", "test_type:unit", "tag:proves_sql"],
        warehouse=warehouse,
        target_path=target,
        capture=True,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert set(statuses) == set(manifest["unit_tests"]) and statuses
    assert set(statuses.values()) == {"pass"}
    proofs = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("test.")}
    assert proofs == {SQL_PROOF: "pass"}
