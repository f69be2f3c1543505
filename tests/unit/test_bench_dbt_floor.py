"""benchmarks/dbt_floor.py: the trivial project it times, and that it builds (dbt's floor for as many nodes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def floor():
    return load_benchmark("dbt_floor")


def test_the_project_has_the_node_counts_asked_for(floor, tmp_path) -> None:
    floor.write_project(tmp_path, models=3, tests=5, seeds=2)
    assert sorted(path.name for path in (tmp_path / "models").iterdir()) == [
        "model_0.sql",
        "model_1.sql",
        "model_2.sql",
    ]
    assert len(list((tmp_path / "tests").iterdir())) == 5
    assert len(list((tmp_path / "seeds").iterdir())) == 2
    # The tests spread over the models; each reads one and finds no row.
    assert (
        tmp_path / "tests" / "test_4.sql"
    ).read_text() == "select x from {{ ref('model_1') }} where x <> 1\n"
    # Its own profile, on DuckDB with the threads of convopt's DuckDB target, its database in the folder.
    profile = (tmp_path / "profiles.yml").read_text()
    assert "type: duckdb" in profile and "threads: 2" in profile and str(tmp_path / "floor.duckdb") in profile


def test_tests_without_a_model_to_read_are_refused(floor, tmp_path) -> None:
    with pytest.raises(ValueError, match="--models must be at least 1"):
        floor.write_project(tmp_path, models=0, tests=1, seeds=0)


@pytest.mark.dbt
def test_it_builds_the_project_twice_and_times_both(floor) -> None:
    measured = floor.measure(models=2, tests=2, seeds=1)
    assert (measured.models, measured.tests, measured.seeds) == (2, 2, 1)
    assert measured.first_seconds > 0 and measured.rerun_seconds > 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--models", "-1"], "--models: a count of nodes, 0 or more (got -1)"),
        (["--models", "0", "--tests", "3"], "--models must be at least 1 when --tests is"),
    ],
)
def test_bad_counts_are_refused_by_the_command(arguments, message) -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "dbt_floor.py"
    finished = subprocess.run(
        [sys.executable, str(script), *arguments], capture_output=True, text=True, check=False
    )
    assert finished.returncode == 2
    assert message in finished.stderr
