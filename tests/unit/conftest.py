"""Fixtures several unit test modules share: a new warehouse (ingest tests), a fake Graph API (export-meta)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from fake_graph_api import FakeGraphAPI

from pipelines.warehouse import connect, ensure_raw_schema


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A new warehouse file with the raw schema (raw tables, load log, rejected rows), open for writing."""
    connection = connect(tmp_path / "wh.duckdb")
    ensure_raw_schema(connection)
    yield connection
    connection.close()


@pytest.fixture
def fake() -> Iterator[FakeGraphAPI]:
    """A fake Graph API on 127.0.0.1 (tests/support/fake_graph_api.py), stopped after the test."""
    server = FakeGraphAPI().start()
    yield server
    server.stop()
