"""The dbt DuckDB target opens the warehouse with the memory budget and spill folder, once.

DuckDB refuses `SET temp_directory` once a query has spilled there, even to the same folder, and
dbt-duckdb runs a target's `settings` again on every cursor it opens. A build that spilled (a 10M-event
build under the 4GB default does) then failed on the next node with "Cannot switch temporary directory
after the current one has been used". profiles.yml therefore passes both as `config_options`, given to
`duckdb.connect` when the database opens.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
import yaml

from pipelines.dbt_runner import run_dbt

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.dbt


def _duckdb_target() -> dict:
    profiles = yaml.safe_load((ROOT / "profiles.yml").read_text())
    return profiles["convopt"]["outputs"]["dev"]


def test_duckdb_refuses_to_switch_the_spill_folder_once_used(tmp_path: Path) -> None:
    """The engine behaviour the profile works around (if a DuckDB release lifts it, this says so)."""
    spill = tmp_path / "spill"
    con = duckdb.connect(
        str(tmp_path / "w.duckdb"), config={"memory_limit": "200MB", "temp_directory": str(spill), "threads": 1}
    )
    con.execute("create table t as select md5(cast(i as varchar)) as h from range(3000000) t(i)")
    assert con.execute("select count(*) from (select h from t order by h)").fetchone() == (3_000_000,)
    assert spill.exists()
    with pytest.raises(duckdb.Error, match="Cannot switch temporary directory"):
        con.cursor().execute(f"set temp_directory = '{spill}'")


def test_the_profile_sets_memory_and_spill_folder_when_the_database_opens() -> None:
    target = _duckdb_target()
    assert set(target["config_options"]) == {"memory_limit", "temp_directory"}
    assert not {"memory_limit", "temp_directory"} & set(target["settings"])


def test_a_dbt_command_runs_under_the_budget_and_spill_folder_of_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVOPT_DUCKDB_MEMORY_LIMIT", "3GiB")
    monkeypatch.setenv("CONVOPT_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "spill"))
    result = run_dbt(
        [
            "show",
            "--output",
            "json",
            "--inline",
            "select current_setting('memory_limit') as memory_limit, "
            "current_setting('temp_directory') as temp_directory",
        ],
        warehouse=tmp_path / "w.duckdb",
        target_path=tmp_path / "target",
        capture=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    shown = json.loads(result.stdout[result.stdout.index("{") : result.stdout.rindex("}") + 1])
    assert shown["show"] == [{"memory_limit": "3.0 GiB", "temp_directory": str(tmp_path / "spill")}]
