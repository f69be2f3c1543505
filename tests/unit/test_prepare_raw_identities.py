"""The dbt hook that creates raw.identities on an older DuckDB warehouse makes the table ingest makes."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.warehouse import raw_table_ddl

MACRO = Path(__file__).resolve().parents[2] / "macros" / "prepare_raw_identities.sql"


def _statement(text: str) -> str:
    return " ".join(text.split()).lower()


def test_the_hook_creates_the_table_ingest_creates() -> None:
    body = MACRO.read_text(encoding="utf-8").split("macro duckdb__prepare_raw_identities()", 1)[1]
    created = re.search(r"create table if not exists raw\.identities \((.*?)\n    \)", body, re.S)
    assert created is not None
    assert _statement(f"create table if not exists raw.identities ({created.group(1)} )") == _statement(
        raw_table_ddl("identities").replace("\n)", " )")
    )
