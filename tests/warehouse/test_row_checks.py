"""The generic data test `row_checks` (macros/tests/row_checks.sql): a model's row rules in one query.

dbt runs a generic test as the query its macro renders and fails when it returns rows. Here the macro's query
runs through `dbt show` on a handful of hand-made rows, so what each rule lets through is visible row by row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.dbt_runner import run_dbt

pytestmark = pytest.mark.dbt

ROWS = """{% set checked %}(
    select * from (values
        (1, 'open', 5, 10),
        (2, null, 5, 10),
        (3, 'shut', 5, 10),
        (4, 'closed', 11, 10),
        (5, 'open', null, 10),
        (null, 'tv', 12, 10)
    ) as checked(id, status, created_day, updated_day)
){% endset %}"""

ALL_RULES = (
    "test_row_checks(model=checked, not_null=['id', 'status'], accepted_values={'status': ['open', 'closed']},"
    " expressions=['created_day <= updated_day'])"
)
QUOTED = "test_row_checks(model=checked, expressions=[\"status <> 'shut'\"])"


@pytest.fixture(scope="module")
def project_run(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("row_checks")

    def show(query: str) -> tuple[int, list[dict], str]:
        result = run_dbt(
            ["show", "--output", "json", "--limit", "-1", "--inline", ROWS + query],
            warehouse=root / "w.duckdb",
            target_path=root / "target",
            capture=True,
        )
        if result.returncode != 0:
            return result.returncode, [], result.stdout[-3000:]
        shown = json.loads(result.stdout[result.stdout.index("{") : result.stdout.rindex("}") + 1])
        return 0, shown["show"], result.stdout

    return show


@pytest.fixture(scope="module")
def failing_rows(project_run) -> dict[str, list[dict]]:
    code, rows, log = project_run(
        f"select 'all rules' as rules, * from ({{{{ {ALL_RULES} }}}}) as failing"
        f" union all by name select 'quoted' as rules, * from ({{{{ {QUOTED} }}}}) as failing"
    )
    assert code == 0, log
    by_rules: dict[str, list[dict]] = {}
    for row in rows:
        by_rules.setdefault(row["rules"], []).append(row)
    return by_rules


def test_a_failing_row_comes_back_whole_naming_every_rule_it_breaks(failing_rows) -> None:
    failed = {row["id"]: row["failed_checks"] for row in failing_rows["all rules"]}
    assert failed == {
        # a null status breaks not_null only: accepted_values lets a null through, as dbt's does
        2: "status is null",
        3: "status = 'shut' is not accepted",
        4: "not true: created_day <= updated_day",
        # an expression that is null (not true) fails
        5: "not true: created_day <= updated_day",
        None: "id is null; status = 'tv' is not accepted; not true: created_day <= updated_day",
    }
    # the whole row comes back beside the rules it breaks
    assert {row["id"]: row["status"] for row in failing_rows["all rules"]}[3] == "shut"


def test_a_quote_in_an_expression_is_named_as_written(failing_rows) -> None:
    # id 2's status is null, so the expression is null there: not true either
    assert sorted((row["id"], row["failed_checks"]) for row in failing_rows["quoted"]) == [
        (2, "not true: status <> 'shut'"),
        (3, "not true: status <> 'shut'"),
    ]


def test_a_row_checks_without_rules_is_an_error_naming_the_model(project_run) -> None:
    code, _, log = project_run("{{ test_row_checks(model=checked) }}")
    assert code != 0
    assert "row_checks on" in log and "give at least one of not_null, accepted_values, expressions" in log
