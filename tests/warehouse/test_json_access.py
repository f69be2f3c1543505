"""The JSON macros of macros/json_access.sql on DuckDB, run through `dbt show` on hand-made documents:
`json_unnest_array_strings` gives one row per array element, and one row `otherwise` for anything that
is not an array (PostgreSQL and Spark do the same; DuckDB's wildcard alone gives no row for a string)."""

from __future__ import annotations

import json

import pytest

from pipelines.dbt_runner import run_dbt

pytestmark = pytest.mark.dbt

DOCUMENTS = {
    "array": '{"a": ["x", "y"]}',
    "string": '{"a": "s"}',
    "object": '{"a": {"b": 1}}',
    "json null": '{"a": null}',
    "absent": '{"b": 1}',
    "empty array": '{"a": []}',
}


def test_unnest_array_strings_gives_otherwise_for_anything_not_an_array(tmp_path) -> None:
    rows = " union all ".join(f"select '{name}' as doc, '{text}' as j" for name, text in DOCUMENTS.items())
    query = (
        f"select doc, {{{{ json_type_name('j', ['a']) }}}} as value_type,"
        f" {{{{ json_unnest_array_strings('j', ['a'], 'none') }}}} as element from ({rows}) as docs"
    )
    result = run_dbt(
        ["show", "--output", "json", "--limit", "-1", "--inline", query],
        warehouse=tmp_path / "w.duckdb",
        target_path=tmp_path / "target",
        capture=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    shown = json.loads(result.stdout[result.stdout.index("{") : result.stdout.rindex("}") + 1])["show"]
    found = sorted((row["doc"], row["value_type"], row["element"]) for row in shown)
    assert found == [
        ("absent", None, "none"),
        ("array", "ARRAY", "x"),
        ("array", "ARRAY", "y"),
        ("json null", "NULL", "none"),
        ("object", "OBJECT", "none"),
        ("string", "VARCHAR", "none"),
    ]  # an empty array has no element
