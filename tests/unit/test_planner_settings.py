"""`set_local_statements` (macros/planner_settings.sql): a model's `postgres_settings` config turned into
`set local` statements for its PostgreSQL transaction, and rejected with the model's name when it is
not a mapping of setting names. Compiled with `dbt compile --inline` on the default DuckDB target (the
macro itself is engine-neutral; tests/engines/test_engines_equivalence.py checks the hooks on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.dbt_runner import run_dbt

pytestmark = pytest.mark.dbt


def _compile(tmp_path: Path, expression: str) -> tuple[int, str]:
    result = run_dbt(
        ["compile", "--quiet", "--inline", "{{ " + expression + " }}"],
        warehouse=tmp_path / "warehouse.duckdb",
        target_path=tmp_path / "target",
        capture=True,
    )
    return result.returncode, result.stdout + result.stderr


def test_settings_become_set_local_statements_with_quoted_values(tmp_path: Path) -> None:
    code, output = _compile(
        tmp_path,
        "(set_local_statements({'work_mem': \"6'4MB\", 'enable_nestloop': 'off'}, 'model.m')"
        " + set_local_statements(none, 'model.n') + set_local_statements({}, 'model.o')) | join(' | ')",
    )
    assert code == 0, output
    # Sorted by name, one statement each, a quote in a value doubled; none and {} add nothing.
    assert "set local enable_nestloop = 'off' | set local work_mem = '6''4MB'" in output.splitlines()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            "['enable_nestloop']",
            "model.m: config postgres_settings must be a mapping of setting name to value, "
            "got ['enable_nestloop']",
        ),
        (
            "{'enable_nestloop = off; drop table raw.events; --': 'off'}",
            "model.m: config postgres_settings: 'enable_nestloop = off; drop table raw.events; --' "
            "is not a setting name",
        ),
    ],
    ids=["not-a-mapping", "not-a-setting-name"],
)
def test_bad_settings_are_rejected_naming_the_model(tmp_path: Path, settings: str, message: str) -> None:
    code, output = _compile(tmp_path, f"set_local_statements({settings}, 'model.m')")
    assert code != 0
    assert message in output
    assert "set local" not in output.replace("set_local_statements", "")
