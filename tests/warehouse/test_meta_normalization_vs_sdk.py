"""Our Meta normalization + hashing macros (run through DuckDB) against Meta's own Python SDK.

``facebook_business.adobjects.serverside.normalize.Normalize.normalize_field`` is the reference. It is a
test-only dependency (``pip install facebook-business``); the test is skipped without it. Every field
either agrees with the SDK on every input, or differs only on inputs described in ``DELIBERATE`` below,
each with the reason we normalize further than the SDK does (the SDK mostly lower-cases and trims and
leaves the rest to the caller; Meta's documentation asks for more).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from pipelines.dbt_runner import run_dbt

normalize = pytest.importorskip("facebook_business.adobjects.serverside.normalize")
pytestmark = pytest.mark.dbt

FIELDS = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country", "external_id")
BASE_VALUES: dict[str, list[str]] = {
    "em": [
        "John.Doe@Example.com",
        "jane@test.org",
        "bob+tag@mail.co.uk",
        "no-at-sign",
        "a@b",
        "x@y.z",
        "Éloïse@exemple.fr",
        "two@@at.com",
    ],
    "fn": ["John", "Mary-Ann", "O'Neil", "Éloïse", "van der Berg", "Smith", "Jean Luc", "李"],
    "ln": ["Doe", "Smith-Jones", "D'Angelo", "Müller", "de la Cruz", "O.Brien"],
    "ct": ["San Francisco", "St. Louis", "São Paulo", "New York 10", "Winston-Salem", "Köln", "Paris (75)"],
    "st": ["CA", "ca", "California", "N.Y.", "Bavaria", "new york", "TX"],
    "zp": ["94103", "94103-1234", "941031234", "SW1A 1AA", "00-950", "10115", "9410"],
    "country": ["US", "us", "USA", "United States", "gb", "UK", "DE", "Germany", "xx", "Brasil"],
    "ph": [
        "+1 (202) 555-0123",
        "0044 7911 123456",
        "(202) 555-0123",
        "07911 123456",
        "12025550123",
        "+44 (0)20 7946 0958",
        "call me",
        "+49 30 1234567",
    ],
    "ge": ["f", "F", "Female", "m", "Male", "woman", "x", "M."],
    "db": ["1990-02-14", "19900214", "02/14/1990", "14.02.1990", "1990-02-30", "yesterday"],
    "external_id": ["ABC123", "abc123", "user-42", "Ünïcode-Id"],
}
DECORATIONS: list[Callable[[str], str]] = [
    str,
    str.upper,
    str.lower,
    lambda v: f"  {v}  ",
    lambda v: f"\t{v}\n",
    # All whitespace Python's str.strip() (the SDK) removes is trimmed, not only spaces.
    lambda v: f"\r\n{v}\r\n",
    lambda v: f"\u00a0{v}\u3000",
    lambda v: f" \t\u2003{v}\x0b\x0c ",
]
COUNTRIES = {"ph": ["US", "GB", None], "zp": ["US", "GB", None]}
LOCATION_EXCLUDED = re.compile(r"[0-9.\s\-()]")


def _letters(text: str) -> str:
    return "".join(ch for ch in text if ch.isalpha())


# Inputs on which we deliberately differ from the SDK, per field: (predicate on (raw, country), why).
DELIBERATE: dict[str, tuple[Callable[[str, str | None], bool], str]] = {
    "em": (
        lambda v, c: v.count("@") != 1,
        "the SDK accepts any `.+@.+\\..+` (so `two@@at.com`); we require exactly one @ and no spaces.",
    ),
    "fn": (
        lambda v, c: not v.strip().lower().isalpha(),
        "Meta asks for names without punctuation; the SDK keeps spaces, hyphens, apostrophes and dots, "
        "we keep letters only so `Mary-Ann` and `Mary Ann` hash alike.",
    ),
    "ln": (lambda v, c: not v.strip().lower().isalpha(), "as fn."),
    "ct": (
        lambda v, c: not LOCATION_EXCLUDED.sub("", v.strip().lower()).isalpha(),
        "the SDK removes only digits, dots, whitespace, hyphens and parentheses; we remove every non-letter "
        "(apostrophes, commas, …) as Meta's 'no punctuation' asks.",
    ),
    "st": (
        lambda v, c: len(_letters(v.lower())) > 2,
        "we map written-out US state names to their 2-letter code (Meta wants the code); the SDK hashes the "
        "name as written.",
    ),
    "zp": (
        lambda v, c: "-" in v or (c == "US" and len(re.sub(r"\D", "", v)) != 5),
        "the SDK cuts at the first hyphen (`00-950` → `00`) and never truncates ZIP+4 without hyphen; we drop "
        "spaces and hyphens, keep the first 5 digits of a US ZIP+4 and drop US values that are not 5/9 digits.",
    ),
    "country": (
        lambda v, c: len(_letters(v.lower())) != 2 or _letters(v.lower()) == "uk",
        "the SDK accepts only an ISO alpha-2 code (else raises); we also accept alpha-3 codes and names "
        "(seed country_codes) and read UK as gb.",
    ),
    "ph": (
        lambda v, c: not (v.strip().startswith("+") or v.strip().startswith("00")) or "(0)" in v,
        "the SDK does not add a country calling code (and rejects a national number starting with 0); we "
        "add the conversion country's calling code and drop the trunk prefix and a written `(0)`.",
    ),
    "ge": (
        lambda v, c: v.strip().lower() not in ("f", "m"),
        "the SDK hashes `female`/`male`/`m.` as written; Meta's field is `f`/`m`, so we map them, "
        "punctuation ignored (and send nothing for other values).",
    ),
    "db": (
        lambda v, c: not re.fullmatch(r"\d{8}", v.strip()),
        "the SDK hashes the date as written; Meta wants YYYYMMDD, so we parse the usual formats (and send "
        "nothing for an impossible date).",
    ),
    "external_id": (
        lambda v, c: v.strip() != v.strip().lower(),
        "the SDK lower-cases external_id; ids can be case-sensitive, so we only trim.",
    ),
}


def _inputs() -> list[tuple[str, str, str | None]]:
    rows = []
    for field, values in BASE_VALUES.items():
        for value, decorate, country in itertools.product(values, DECORATIONS, COUNTRIES.get(field, [None])):
            rows.append((field, decorate(value), country))
    rows.append(("em", hashlib.sha256(b"john@example.com").hexdigest().upper(), None))
    return sorted(set(rows), key=lambda r: (r[0], r[1], r[2] or ""))


def _sdk(field: str, value: str, country: str | None) -> str | None:
    try:
        return normalize.Normalize.normalize_field(field, value)
    except (TypeError, ValueError):
        return None  # the SDK raises where it cannot normalize: nothing is sent


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str | None], str | None]:
    root = tmp_path_factory.mktemp("sdk")
    warehouse = root / "warehouse.duckdb"
    seed = run_dbt(["seed"], warehouse=warehouse, target_path=root / "target", capture=True)
    assert seed.returncode == 0, seed.stdout[-3000:]
    cases = "\n".join(
        f"when '{f}' then {{{{ meta_hashed_user_data('{f}', 'inputs.v', 'inputs.c') }}}}" for f in FIELDS
    )
    compiled = run_dbt(
        [
            "compile",
            "--quiet",
            "--inline",
            f"select inputs.f, inputs.v, inputs.c, case inputs.f {cases} end as h from inputs",
        ],
        warehouse=warehouse,
        target_path=root / "target",
        capture=True,
    )
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    rows = _inputs()
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create temp table inputs (f varchar, v varchar, c varchar)")
        con.executemany("insert into inputs values (?, ?, ?)", rows)
        result = con.execute(compiled.stdout).fetchall()
    return {(f, v, c): h for f, v, c, h in result}


def test_enough_varied_inputs() -> None:
    assert len(_inputs()) >= 300


@pytest.mark.parametrize("field", FIELDS)
def test_field_agrees_with_the_sdk_except_where_documented(ours: dict, field: str) -> None:
    agree, differ = 0, []
    for (f, value, country), our_hash in ours.items():
        if f != field:
            continue
        if our_hash == _sdk(field, value, country):
            agree += 1
        else:
            differ.append((value, country))
    assert agree > 0
    predicate = DELIBERATE.get(field, (lambda v, c: False, ""))[0]
    undocumented = [(v, c) for v, c in differ if not predicate(v, c)]
    assert not undocumented, f"{field}: undocumented differences from the SDK on {undocumented}"


WHITESPACE_DECORATIONS = DECORATIONS[3:]


def test_surrounding_whitespace_never_changes_the_hash(ours: dict) -> None:
    # Independent of the SDK: a value padded with tabs, line breaks, no-break or ideographic spaces
    # hashes exactly as the bare value (or is dropped exactly when the bare value is).
    compared = 0
    for field, values in BASE_VALUES.items():
        for value, country in itertools.product(values, COUNTRIES.get(field, [None])):
            bare = ours[(field, value, country)]
            for decorate in WHITESPACE_DECORATIONS:
                assert ours[(field, decorate(value), country)] == bare, (field, decorate(value), country)
                compared += 1
    assert compared >= 300


def test_every_hash_is_64_hex_or_absent(ours: dict) -> None:
    assert all(h is None or re.fullmatch(r"[0-9a-f]{64}", h) for h in ours.values())


def test_documentation_lists_each_deliberate_difference() -> None:
    assert set(DELIBERATE) <= set(FIELDS)
    assert all(reason for _, reason in DELIBERATE.values())
    assert Path(__file__).read_text().count("the SDK") >= len(DELIBERATE) - 1
