"""`trim_whitespace` (macros/clean_string.sql) on DuckDB trims exactly what Python's str.strip() trims.

The DuckDB version skips trimming when both end characters are printable ASCII and otherwise trims with two
anchored regular expressions (faster than trim(text, characters)); this checks it against str.strip() on every
Unicode code point, at the start, at the end, inside, and repeated, and against the portable default.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from pipelines.dbt_runner import run_dbt

pytestmark = pytest.mark.dbt

SURROGATES = range(0xD800, 0xE000)


def _values() -> list[str]:
    values = ["", "a", "ab", " a b ", "\u00a0\u3000x\u2003", "\t\n", "李", " 李 ", "é\u0301 "]
    for code_point in range(1, 0x110000):
        if code_point in SURROGATES or (code_point > 0x3100 and code_point % 97):
            continue  # every code point up to U+3100 (all whitespace is below), a sample above
        ch = chr(code_point)
        values += [ch, f"{ch}x", f"x{ch}", f"{ch}{ch}x{ch}y{ch}{ch}"]
    return values


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str | None, str | None]]:
    root = tmp_path_factory.mktemp("trim")
    warehouse = root / "warehouse.duckdb"
    compiled = run_dbt(
        [
            "compile",
            "--quiet",
            "--inline",
            "select v, {{ trim_whitespace('v') }} as duckdb_trimmed, "
            "{{ default__trim_whitespace('v') }} as default_trimmed from inputs order by i",
        ],
        warehouse=warehouse,
        target_path=root / "target",
        capture=True,
    )
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    assert "regexp_replace" in compiled.stdout  # the DuckDB version was compiled, not the default
    with duckdb.connect(str(warehouse)) as con:
        values = _values()
        con.register("input_values", pa.table({"i": list(range(len(values))), "v": values}))
        con.execute("create temp table inputs as select * from input_values")
        return con.execute(compiled.stdout).fetchall()


def test_duckdb_trim_whitespace_is_str_strip(trimmed: list) -> None:
    wrong = [(v, got) for v, got, _ in trimmed if got != v.strip()]
    assert len(trimmed) > 50_000
    assert not wrong, wrong[:20]


def test_duckdb_trim_whitespace_equals_the_portable_default(trimmed: list) -> None:
    assert [got for _, got, _ in trimmed] == [default for _, _, default in trimmed]


def test_null_stays_null(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("trim_null")
    compiled = run_dbt(
        ["compile", "--quiet", "--inline", "select {{ trim_whitespace('cast(null as varchar)') }} as t"],
        warehouse=root / "warehouse.duckdb",
        target_path=root / "target",
        capture=True,
    )
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    assert duckdb.sql(compiled.stdout).fetchall() == [(None,)]
