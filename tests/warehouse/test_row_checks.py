"""The generic data test `row_checks` (macros/tests/row_checks.sql): a model's row rules in one query.

dbt runs a generic test as the query its macro renders and fails when it returns rows. Here the macro's query
runs through `dbt show` on a handful of hand-made rows, so what each rule lets through is visible row by row.
"""

from __future__ import annotations

import json

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

    show.warehouse = root / "w.duckdb"
    show.target = root / "target"
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


# Uniqueness rules (`unique`): a column is dbt's `unique` (a null is not compared), a list of columns is
# unique_combination_of_columns (nulls compare equal, as in `group by`).
REPEATED = """{% set repeated %}(
    select * from (values
        (1, 'a'),
        (1, 'a'),
        (2, null),
        (3, null),
        (null, 'b'),
        (null, 'b'),
        (4, 'c')
    ) as repeated(id, status)
){% endset %}"""


def test_a_repeated_value_fails_once_naming_its_columns_value_and_rows(project_run) -> None:
    code, rows, log = project_run(
        REPEATED + "{{ test_row_checks(model=repeated, unique=['id', ['status'], ['id', 'status']]) }}"
    )
    assert code == 0, log
    assert sorted(row["failed_checks"] for row in rows) == [
        "not unique: (id) = (1) in 2 rows",  # the two null ids are not compared, as in dbt's unique
        "not unique: (id, status) = (1, a) in 2 rows",
        "not unique: (id, status) = (null, b) in 2 rows",  # nulls compare equal in a combination
        "not unique: (status) = (a) in 2 rows",
        "not unique: (status) = (b) in 2 rows",
        "not unique: (status) = (null) in 2 rows",
    ]
    # a repeated value has no one row: the model's columns come back null
    assert all(row["id"] is None and row["status"] is None for row in rows)


def test_row_rules_and_uniqueness_fail_in_one_query(project_run) -> None:
    code, rows, log = project_run(
        REPEATED + "{{ test_row_checks(model=repeated, not_null=['status'], unique=['id']) }}"
    )
    assert code == 0, log
    assert sorted((row["id"], row["failed_checks"]) for row in rows if row["id"] is not None) == [
        (2, "status is null"),
        (3, "status is null"),
    ]
    assert [row["failed_checks"] for row in rows if row["id"] is None] == ["not unique: (id) = (1) in 2 rows"]


def test_unique_where_gives_the_uniqueness_rules_their_own_rows(project_run) -> None:
    # funnel_definitions has several steps per funnel: funnel_name repeats, but not among first steps. The
    # rows come from the tested relation itself (here the seed the query reads), narrowed by unique_where,
    # rendered when it runs.
    seeded = run_dbt(
        ["seed", "--select", "funnel_definitions"],
        warehouse=project_run.warehouse,
        target_path=project_run.target,
        capture=True,
    )
    assert seeded.returncode == 0, seeded.stdout[-3000:]
    every_step = "{{ test_row_checks(model=ref('funnel_definitions'), unique=['funnel_name']) }}"
    first_steps = (
        "{{ test_row_checks(model=ref('funnel_definitions'), unique=['funnel_name'],"
        " unique_where=\"{{ 'step_number = ' ~ 1 }}\") }}"
    )
    code, rows, log = project_run(every_step)
    assert code == 0, log
    assert rows and all(row["failed_checks"].startswith("not unique: (funnel_name) = (") for row in rows)
    code, rows, log = project_run(first_steps)
    assert code == 0, log
    assert rows == []


def test_read_once_gives_the_same_failures_from_one_read_of_the_rows(project_run) -> None:
    # read_once: the rows are read into one CTE that the row rules and the uniqueness rules both read.
    rules = "model=repeated, not_null=['status'], unique=['id', ['id', 'status']]"
    code, rows, log = project_run(REPEATED + "{{ test_row_checks(" + rules + ") }}")
    assert code == 0, log
    code, read_once_rows, log = project_run(REPEATED + "{{ test_row_checks(" + rules + ", read_once=true) }}")
    assert code == 0, log
    key = lambda row: (row["failed_checks"], str(row["id"]), str(row["status"]))  # noqa: E731
    assert sorted(read_once_rows, key=key) == sorted(rows, key=key)
    assert len(rows) == 5  # two null statuses, id 1 twice, (1, a) and (null, b) twice
    # dbt's log holds the queries it ran: one of them read the rows once.
    logged = "".join(path.read_text() for path in (project_run.target / "logs").glob("dbt.log*"))
    assert "with checked_rows as materialized (" in logged


def test_read_once_with_unique_where_is_an_error_naming_the_model(project_run) -> None:
    code, _, log = project_run(
        REPEATED + "{{ test_row_checks(model=repeated, unique=['id'], unique_where='id > 1', read_once=true) }}"
    )
    assert code != 0
    assert "row_checks on" in log and "read_once" in log and "unique_where" in log
