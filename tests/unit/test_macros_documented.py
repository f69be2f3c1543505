"""Every macro under macros/ is documented in macros/_macros.yml, with each of its arguments.

A macro is found by its `{% macro name(args) %}` line (a generic test's `{% test name(args) %}` is the
macro `test_<name>` to dbt), so adding a macro without its entry, or an argument without its line, fails
here before anyone opens dbt docs.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from dbt.parser.schemas import is_valid_type

ROOT = Path(__file__).resolve().parents[2]
MACROS = ROOT / "macros"
DEFINITION = re.compile(r"\{%-?\s*(macro|test)\s+(\w+)\s*\((.*?)\)\s*-?%\}", re.S)


def argument_names(signature: str) -> list[str]:
    """`a, b='x', c=none` → ['a', 'b', 'c'] (defaults here never contain a comma)."""
    return [part.split("=", 1)[0].strip() for part in signature.split(",") if part.strip()]


@cache
def defined_macros() -> dict[str, tuple[str, list[str]]]:
    found: dict[str, tuple[str, list[str]]] = {}
    for path in sorted(MACROS.rglob("*.sql")):
        for kind, name, signature in DEFINITION.findall(path.read_text()):
            macro = f"test_{name}" if kind == "test" else name
            found[macro] = (path.relative_to(ROOT).as_posix(), argument_names(signature))
    return found


@cache
def documented_macros() -> dict[str, dict]:
    entries = yaml.safe_load((MACROS / "_macros.yml").read_text())["macros"]
    return {entry["name"]: entry for entry in entries}


def test_the_definition_pattern_finds_the_macros() -> None:
    macros = defined_macros()
    assert macros["percentage"] == ("macros/percentage.sql", ["numerator", "denominator"])
    assert macros["first_non_null"][1] == ["expression", "order_expression", "where"]
    assert macros["test_row_checks"][1] == [
        "model",
        "not_null",
        "accepted_values",
        "expressions",
        "unique",
        "unique_where",
        "read_once",
    ]
    assert len(macros) > 150


def test_every_macro_has_an_entry() -> None:
    documented = documented_macros()
    missing = [f"{name} ({path})" for name, (path, _) in defined_macros().items() if name not in documented]
    assert not missing, f"macros/_macros.yml has no entry for: {', '.join(missing)}"


def test_every_entry_names_a_macro() -> None:
    defined = defined_macros()
    stale = sorted(set(documented_macros()) - set(defined))
    assert not stale, f"macros/_macros.yml documents macros that no longer exist: {', '.join(stale)}"


@pytest.mark.parametrize("name", sorted(defined_macros()))
def test_entry_describes_the_macro_and_every_argument(name: str) -> None:
    path, arguments = defined_macros()[name]
    entry = documented_macros().get(name)
    if entry is None:
        pytest.fail(f"{name} ({path}) has no entry in macros/_macros.yml")
    assert str(entry.get("description") or "").strip(), f"{name}: no description"
    documented = entry.get("arguments") or []
    assert [argument["name"] for argument in documented] == arguments, (
        f"{name} ({path}): arguments in macros/_macros.yml must be {arguments}, in that order"
    )
    for argument in documented:
        assert str(argument.get("description") or "").strip(), f"{name}.{argument['name']}: no description"
        assert is_valid_type(str(argument.get("type") or "")), (
            f"{name}.{argument['name']}: type {argument.get('type')!r} is not one of dbt's macro types"
        )
