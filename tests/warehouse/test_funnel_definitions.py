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
