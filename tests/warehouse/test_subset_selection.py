"""`dbt build --select +<model>` must work on its own: it runs only the data tests whose parents it
builds. The project sets dbt's `indirect_selection` to `buildable` (dbt_project.yml); with dbt's default,
`eager`, a singular test that also reads a model outside the selection is selected and fails on a missing
table. Checked with `dbt ls`, which selects exactly as `dbt build` does, against the parsed manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.dbt_runner import run_dbt

pytestmark = pytest.mark.dbt

# A mart, a model deep in the middle, and the last fact mart: each has tests that read other models too.
SUBSETS = ["conversion_funnel", "int_attribution_credits", "meta_capi_events"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("subset")
    context = {"warehouse": root / "warehouse.duckdb", "target_path": root / "target"}
    parsed = run_dbt(["parse", "--quiet"], capture=True, **context)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    manifest = json.loads((root / "target" / "manifest.json").read_text())
    return {"context": context, "manifest": manifest}


def _selected(project: dict, model: str, env: dict[str, str] | None = None) -> set[str]:
    listed = run_dbt(
        ["ls", "--quiet", "--select", f"+{model}", "--output", "json", "--output-keys", "unique_id"],
        capture=True,
        extra_env=env,
        **project["context"],
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    return {json.loads(line)["unique_id"] for line in listed.stdout.splitlines() if line.startswith("{")}


def _unbuilt_parents(project: dict, selected: set[str]) -> dict[str, set[str]]:
    """Each selected test that reads a model, seed or snapshot the selection does not build."""
    nodes = project["manifest"]["nodes"]
    buildable = {"model", "seed", "snapshot"}
    missing = {}
    for unique_id in selected:
        node = nodes.get(unique_id)
        if node is None or node["resource_type"] != "test":
            continue
        parents = {p for p in node["depends_on"]["nodes"] if p.split(".")[0] in buildable}
        if parents - selected:
            missing[unique_id] = parents - selected
    return missing


@pytest.mark.parametrize("model", SUBSETS)
def test_a_subset_build_selects_only_tests_it_can_run(project: dict, model: str) -> None:
    selected = _selected(project, model)
    assert f"model.convopt.{model}" in selected
    assert any(uid.startswith("test.") for uid in selected), "the subset should still run its own tests"
    assert _unbuilt_parents(project, selected) == {}


def test_the_check_sees_what_eager_selection_would_break(project: dict) -> None:
    """Under dbt's default the same subset does select a test it cannot run: the check above can fail."""
    selected = _selected(project, "conversion_funnel", env={"DBT_INDIRECT_SELECTION": "eager"})
    assert _unbuilt_parents(project, selected)
