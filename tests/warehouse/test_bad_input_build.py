"""What ingest accepts, the build carries: amounts beyond what the models can hold and currencies
without exchange rates are rejected rows; a conversion that still cannot be valued (a day without
rates) is quarantined in rpt_unvalued_conversions, and the scheduled build passes with a warning."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import duckdb
import pytest
from rich.console import Console

from pipelines.generate import GeneratorConfig, generate_dataset
from pipelines.run import RunOptions, run_pipeline

pytestmark = pytest.mark.dbt

CONVERSION = {
    "person_id": "p-bad",
    "conversion_type": "purchase",
    "conversion_source": "capi",
    "currency": "USD",
    "conversion_time": "2026-03-05T12:00:00Z",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("bad_input_build")
    landing, warehouse = root / "landing", root / "wh.duckdb"
    generate_dataset(landing, GeneratorConfig(persons=120, seed=11, start=dt.date(2026, 3, 1), days=10))
    rows = [
        {**CONVERSION, "event_id": "huge", "value_cents": 2**63 - 1},
        {**CONVERSION, "event_id": "yen", "value_cents": 1000, "currency": "JPY"},
        # A USD purchase in a USD warehouse needs no rate, whatever the day (July 2023, and before any rates).
        {**CONVERSION, "event_id": "july", "value_cents": 1500, "conversion_time": "2023-07-03T12:00:00Z"},
        {**CONVERSION, "event_id": "ancient", "value_cents": 700, "conversion_time": "2022-06-01T12:00:00Z"},
        # EUR before the first day of the exchange rates cannot be valued.
        {
            **CONVERSION,
            "event_id": "old",
            "value_cents": 1500,
            "currency": "EUR",
            "conversion_time": "2022-06-01T12:00:00Z",
        },
        {**CONVERSION, "event_id": "fine", "value_cents": 2500},
    ]
    (landing / "conversions_edge.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    log = io.StringIO()
    result = run_pipeline(
        RunOptions(warehouse=warehouse, landing=[landing], out=root / "reports", target_path=root / "target"),
        console=Console(file=log, width=200),
    )
    return {"root": root, "warehouse": warehouse, "result": result, "log": log.getvalue()}


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_amounts_and_currencies_the_models_cannot_carry_are_rejected_at_ingest(built: dict) -> None:
    rejected = dict(
        query(
            built["warehouse"],
            "select json_extract_string(payload, '$.event_id'), reason from raw.rejected_rows "
            "where file_name like '%conversions_edge.jsonl'",
        )
    )
    assert set(rejected) == {"huge", "yen"}
    assert rejected["huge"].startswith("value_cents: expected at most 999,999,999,999")
    assert rejected["yen"].startswith("currency: expected a currency the warehouse has exchange rates for")


def test_a_conversion_without_a_rate_is_quarantined_and_the_build_passes(built: dict) -> None:
    result = built["result"]
    assert [(s.name, s.status) for s in result.stages] == [
        ("ingest", "ok"),
        ("dbt build", "ok"),
        ("export-meta", "ok"),
        ("report", "ok"),
    ], "\n".join(f"{s.name}: {s.detail}" for s in result.stages) + built["log"][-3000:]
    assert result.exit_code == 0
    quarantined = query(
        built["warehouse"],
        "select event_id, value_cents, currency, reason from reports.rpt_unvalued_conversions",
    )
    assert quarantined == [
        (
            "old",
            1500,
            "EUR",
            "no exchange rate for EUR on 2022-06-01: the exchange-rate seed covers 2023-01-01 to 2027-12-31",
        )
    ]
    # Left out of the money columns, kept in the counts.
    ((value, counted),) = query(
        built["warehouse"],
        "select value_cents_reporting, count(*) over () from marts.conversion_event where event_id = 'old'",
    )
    assert value is None and counted == 1
    assert query(
        built["warehouse"],
        "select event_id, value_cents_reporting from marts.conversion_event "
        "where event_id in ('fine', 'july', 'ancient') order by event_id",
    ) == [("ancient", 700), ("fine", 2500), ("july", 1500)]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every fuzz case (tests/support/fuzz_cases.py) beside a small generated data set, through one
    `convopt run`: the dbt build after all of them at once."""
    from fuzz_cases import all_cases

    root = tmp_path_factory.mktemp("fuzz_build")
    landing, warehouse = root / "landing", root / "wh.duckdb"
    generate_dataset(landing, GeneratorConfig(persons=120, seed=12, start=dt.date(2026, 3, 1), days=10))
    cases = all_cases()
    for case in cases:
        (landing / "fuzz").mkdir(exist_ok=True)
        case.write(landing / "fuzz" / case.file_name)
    log = io.StringIO()
    result = run_pipeline(
        RunOptions(warehouse=warehouse, landing=[landing], out=root / "reports", target_path=root / "target"),
        console=Console(file=log, width=200),
    )
    return {"warehouse": warehouse, "result": result, "cases": cases, "log": log.getvalue()}


def test_after_every_fuzz_case_the_build_passes_and_only_the_bad_files_failed(fuzzed: dict) -> None:
    result, cases = fuzzed["result"], fuzzed["cases"]
    stages = {s.name: s for s in result.stages}
    assert stages["dbt build"].status == "ok", stages["dbt build"].detail + fuzzed["log"][-3000:]
    assert stages["export-meta"].status == "ok" and stages["report"].status == "ok"
    # The files that must fail did; everything else loaded; the exit code says something failed.
    failed = {Path(f.file_name).name for f in result.ingest_report.files if f.status == "failed"}
    assert failed == {c.file_name for c in cases if c.outcome == "failed"}
    assert stages["ingest"].status == "failed" and result.exit_code == 1
    by_name = {Path(f.file_name).name: f for f in result.ingest_report.files}
    for case in cases:
        if case.outcome != "failed":
            f = by_name[case.file_name]
            assert (f.rows_loaded, f.rows_rejected) == (case.loaded, case.rejected), case.id
    # Each good fuzz conversion is one conversion_event row, valued.
    ((conversions, unvalued),) = query(
        fuzzed["warehouse"],
        "select count(*), count(*) filter (where value_cents_reporting is null) "
        "from marts.conversion_event where event_id like 'fz-%'",
    )
    expected = sum(c.loaded for c in cases if c.file_name.startswith("conversions") and c.outcome != "failed")
    assert conversions == expected and unvalued == 0
