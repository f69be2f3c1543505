"""The funnel definitions file is checked when it is loaded: `dbt build` stops on an invalid funnel with a
message naming the funnel, the step and the field, and accepts both ways of writing a window as well as a
file written before order types and window units existed. Each case builds only the definitions (the seed
and int_funnel_definitions) in a copy of the dbt project, on its own DuckDB file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.dbt

PROJECT_DIR = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"

HEADER = "funnel_name,step_number,step_name,event_name,conversion_window_hours,conversion_window_interval,conversion_window_unit,order_type\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("definitions_project")
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(PROJECT_DIR / name, root / name)
    for folder in ("models", "macros", "seeds", "data-tests"):
        shutil.copytree(PROJECT_DIR / folder, root / folder)
    return root


def build_definitions(project: Path, csv_text: str, warehouse: Path) -> subprocess.CompletedProcess[str]:
    (project / "seeds" / "funnel_definitions.csv").write_text(csv_text)
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(project),
        "CONVOPT_WAREHOUSE": str(warehouse),
        "DBT_TARGET_PATH": str(warehouse.parent / "target"),
        "DBT_LOG_PATH": str(warehouse.parent / "logs"),
    }
    env.pop("CONVOPT_TARGET", None)
    command = [
        "build",
        "--select",
        "funnel_definitions",
        "int_funnel_definitions",
        "--exclude-resource-type",
        "unit_test",
    ]
    return subprocess.run(
        [str(DBT), *command, "--project-dir", str(project)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param(
            "f,1,A,a,24,1,day,ordered\nf,2,B,b,24,1,day,ordered\n",
            "funnel_definitions.csv, funnel f step 1: both conversion_window_hours and conversion_window_interval",
            id="both_windows",
        ),
        pytest.param("f,1,A,a,,,,\nf,2,B,b,,,,\n", "funnel f step 1: no conversion window", id="no_window"),
        pytest.param(
            "f,1,A,a,,0,day,\nf,2,B,b,,0,day,\n",
            "funnel f step 1: the conversion window must be positive",
            id="zero",
        ),
        pytest.param(
            "f,1,A,a,-2,,,\nf,2,B,b,-2,,,\n",
            "funnel f step 1: the conversion window must be positive",
            id="negative_hours",
        ),
        pytest.param(
            "f,1,A,a,,3,fortnight,\nf,2,B,b,,3,fortnight,\n",
            "conversion_window_unit 'fortnight' is not one of",
            id="unit",
        ),
        pytest.param(
            "f,1,A,a,,3,,\nf,2,B,b,,3,,\n",
            "conversion_window_interval without conversion_window_unit",
            id="no_unit",
        ),
        pytest.param(
            "f,1,A,a,,1,day,sideways\nf,2,B,b,,1,day,\n",
            "order_type 'sideways' is not one of",
            id="order_type",
        ),
        pytest.param(
            "f,1,A,a,,1,day,strict\nf,2,B,b,,1,day,unordered\n",
            "different order_type values",
            id="two_orders",
        ),
        pytest.param("f,1,A,a,,1,day,\nf,2,B,b,,2,day,\n", "different conversion windows", id="two_windows"),
        pytest.param(
            'f,1,A," ",,1,day,\nf,2,B,b,,1,day,\n', "funnel f step 1: event_name is empty", id="blank_event"
        ),
    ],
)
def test_an_invalid_definition_stops_the_build_naming_the_row(
    project: Path, tmp_path: Path, rows: str, message: str
) -> None:
    result = build_definitions(project, HEADER + rows, tmp_path / "warehouse.duckdb")
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]


def test_windows_in_hours_and_in_units_and_mixed_case_event_names(project: Path, tmp_path: Path) -> None:
    rows = "hours,1,A,Landing_Page_View,1.5,,,\nhours,2,B, Purchase ,1.5,,,\nunits,1,A,A,,15,Seconds,Strict\nunits,2,B,b,,15,Seconds,Strict\n"
    warehouse = tmp_path / "warehouse.duckdb"
    result = build_definitions(project, HEADER + rows, warehouse)
    assert result.returncode == 0, result.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        got = con.execute(
            "select funnel_name, step_number, event_name, order_type, window_seconds"
            " from intermediate.int_funnel_definitions order by funnel_name, step_number"
        ).fetchall()
    assert got == [
        ("hours", 1, "landing_page_view", "ordered", 5400),
        ("hours", 2, "purchase", "ordered", 5400),
        ("units", 1, "a", "strict", 15),
        ("units", 2, "b", "strict", 15),
    ]


def test_a_file_without_order_type_and_window_units_still_builds(project: Path, tmp_path: Path) -> None:
    csv_text = (
        "funnel_name,step_number,step_name,event_name,conversion_window_hours\nf,1,A,a,72\nf,2,B,b,72\n"
    )
    warehouse = tmp_path / "warehouse.duckdb"
    result = build_definitions(project, csv_text, warehouse)
    assert result.returncode == 0, result.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        got = con.execute(
            "select order_type, window_seconds, conversion_window_hours from intermediate.int_funnel_definitions"
        ).fetchall()
    assert got == [("ordered", 259200, 72), ("ordered", 259200, 72)]


FILTER_HEADER = "funnel_name,step_number,step_name,event_name,step_filter,conversion_window_interval,conversion_window_unit,order_type\n"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param(
            "f,1,A,a,properties.path = /x,1,day,\nf,2,B,b,colour = red,1,day,\n",
            "funnel f step 2: step_filter: condition 'colour = red': unknown key 'colour'",
            id="unknown_key",
        ),
        pytest.param(
            "f,1,A,a,value_cents > ten,1,day,\nf,2,B,b,,1,day,\n",
            "funnel f step 1: step_filter: condition 'value_cents > ten': > needs a number, not 'ten'",
            id="not_a_number",
        ),
        pytest.param(
            "f,1,A,a,country=US,1,day,\nf,2,B,b,,1,day,\n",
            "funnel f step 1: step_filter: condition 'country=US' is not `key operator value`",
            id="no_spaces",
        ),
        pytest.param(
            "f,1,A,a,country ~ US,1,day,\nf,2,B,b,,1,day,\n",
            "operator '~' is not one of = != < <= > >=",
            id="operator",
        ),
        pytest.param(
            "f,1,A,a,country = US AND os = ios,1,day,\nf,2,B,b,,1,day,\n",
            "join conditions with a lower-case ' and '",
            id="upper_case_and",
        ),
        pytest.param(
            "f,1,A,a,country = US and,1,day,\nf,2,B,b,,1,day,\n",
            "join conditions with a lower-case ' and '",
            id="trailing_and",
        ),
        pytest.param(
            "f,1,A,a,properties.p q = 1,1,day,\nf,2,B,b,,1,day,\n",
            "operator 'q' is not one of",
            id="key_with_space",
        ),
        pytest.param(
            "f,1,A,a," + " and ".join(["os = x"] * 6) + ",1,day,\nf,2,B,b,,1,day,\n",
            "funnel f step 1: step_filter: more than 5 conditions",
            id="six_conditions",
        ),
        pytest.param(
            "f,1,A,a,os = x,1,day,unordered\nf,2,B,a,os = y,1,day,unordered\n",
            "steps of an unordered funnel with the same event_name must have the same step_filter",
            id="unordered_same_name",
        ),
    ],
)
def test_an_invalid_step_filter_stops_the_build_naming_the_step(
    project: Path, tmp_path: Path, rows: str, message: str
) -> None:
    result = build_definitions(project, FILTER_HEADER + rows, tmp_path / "warehouse.duckdb")
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]


def test_step_filters_are_kept_as_written_without_outer_spaces(project: Path, tmp_path: Path) -> None:
    rows = "f,1,A,page_view, properties.path = /checkout ,1,day,\nf,2,B,purchase,value_cents > 0 and country != US,1,day,\nf,3,C,c,,1,day,\n"
    warehouse = tmp_path / "warehouse.duckdb"
    result = build_definitions(project, FILTER_HEADER + rows, warehouse)
    assert result.returncode == 0, result.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        got = con.execute(
            "select step_number, step_filter from intermediate.int_funnel_definitions order by step_number"
        ).fetchall()
    assert got == [(1, "properties.path = /checkout"), (2, "value_cents > 0 and country != US"), (3, None)]


def test_an_invalid_exclusion_filter_stops_the_build(project: Path, tmp_path: Path) -> None:
    (project / "seeds" / "funnel_exclusions.csv").write_text(
        "funnel_name,event_name,from_step,to_step,exclusion_filter\nf,x,1,2,properties.reason == price\n"
    )
    try:
        (project / "seeds" / "funnel_definitions.csv").write_text(
            FILTER_HEADER + "f,1,A,a,,1,day,\nf,2,B,b,,1,day,\n"
        )
        env = {
            **os.environ,
            "DBT_PROFILES_DIR": str(project),
            "CONVOPT_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "DBT_TARGET_PATH": str(tmp_path / "target"),
            "DBT_LOG_PATH": str(tmp_path / "logs"),
        }
        env.pop("CONVOPT_TARGET", None)
        selection = [
            "funnel_definitions",
            "funnel_exclusions",
            "int_funnel_definitions",
            "int_funnel_exclusions",
        ]
        result = subprocess.run(
            [str(DBT), "build", "--select", *selection, "--exclude-resource-type", "unit_test"]
            + ["--project-dir", str(project)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.copy2(
            PROJECT_DIR / "seeds" / "funnel_exclusions.csv", project / "seeds" / "funnel_exclusions.csv"
        )
    assert result.returncode != 0
    assert (
        "funnel_exclusions.csv, funnel f event x: exclusion_filter: condition 'properties.reason == price':"
        " operator '==' is not one of" in result.stdout
    ), result.stdout[-3000:]


BREAKDOWN_HEADER = "funnel_name,step_number,step_name,event_name,breakdown_attribution,conversion_window_interval,conversion_window_unit,order_type\n"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param(
            "f,1,A,a,middle_touch,1,day,\nf,2,B,b,,1,day,\n",
            "funnel f step 1: breakdown_attribution 'middle_touch' is not one of first_touch, last_touch, step_1 … step_2",
            id="unknown",
        ),
        pytest.param(
            "f,1,A,a,step_3,1,day,\nf,2,B,b,,1,day,\n",
            "breakdown_attribution 'step_3' is not one of",
            id="beyond_last_step",
        ),
        pytest.param(
            "f,1,A,a,first_touch,1,day,\nf,2,B,b,last_touch,1,day,\n",
            "different breakdown_attribution values",
            id="two_values",
        ),
        pytest.param(
            "f,1,A,a,step_2,1,day,unordered\nf,2,B,b,,1,day,unordered\n",
            "an unordered funnel breaks down by first_touch, last_touch or step_1 only",
            id="unordered_step_2",
        ),
    ],
)
def test_an_invalid_breakdown_attribution_stops_the_build(
    project: Path, tmp_path: Path, rows: str, message: str
) -> None:
    result = build_definitions(project, BREAKDOWN_HEADER + rows, tmp_path / "warehouse.duckdb")
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]


def test_breakdown_attribution_defaults_to_first_touch(project: Path, tmp_path: Path) -> None:
    rows = "f,1,A,a,,1,day,\nf,2,B,b,,1,day,\ng,1,A,a,Step_2,1,day,\ng,2,B,b,,1,day,\n"
    warehouse = tmp_path / "warehouse.duckdb"
    result = build_definitions(project, BREAKDOWN_HEADER + rows, warehouse)
    assert result.returncode == 0, result.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        got = con.execute(
            "select distinct funnel_name, breakdown_attribution from intermediate.int_funnel_definitions order by 1"
        ).fetchall()
    assert got == [("f", "first_touch"), ("g", "step_2")]
