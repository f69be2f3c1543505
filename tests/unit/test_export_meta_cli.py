"""`convopt export-meta` dry runs, the access token never leaking, and the command line."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_graph_api import FakeGraphAPI, drop, error, slow
from meta_export_helpers import (
    SHORT_READ_TIMEOUT,
    SLOW_ANSWER_SECONDS,
    TOKEN,
    event_row,
    log_rows,
    make_warehouse,
    run_export,
)
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.meta.batching import MAX_EVENTS_PER_REQUEST, build_request_body
from pipelines.meta.dry_run import _request_bodies
from pipelines.meta.export import export_meta
from pipelines.meta.graph_client import GraphClient
from pipelines.meta.results import ExportUsageError

# -- dry run ---------------------------------------------------------------------------------------------


def test_dry_run_payloads_are_byte_identical_and_exactly_what_is_sent(
    tmp_path: Path, fake: FakeGraphAPI
) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(25)])
    options = {"dry_run": True, "access_token": None, "batch_size": 10, "test_event_code": "TEST9"}

    first = run_export(warehouse, fake, out=tmp_path / "a", **options)
    second = run_export(warehouse, fake, out=tmp_path / "b", **options)

    for name in ("requests.jsonl", "events.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first.ok and first.sent == 25 and first.requests == 3 and second.sent == 25
    assert fake.requests == [] and log_rows(warehouse) == []
    lines = (tmp_path / "a" / "requests.jsonl").read_bytes().splitlines()
    assert [len(json.loads(line)["data"]) for line in lines] == [10, 10, 5]
    events = pq.read_table(tmp_path / "a" / "events.parquet")
    assert events.column_names == ["batch_no", "pixel_id", "conversion_id", "event_id", "payload"]
    assert events.column("batch_no").to_pylist() == [1] * 10 + [2] * 10 + [3] * 5

    run_export(warehouse, fake, batch_size=10, test_event_code="TEST9")

    token_field = b',"access_token":' + json.dumps(TOKEN).encode() + b"}"
    assert fake.bodies == [line[:-1] + token_field for line in lines]


@pytest.mark.parametrize(
    ("chunk_sizes", "request_sizes"),
    [
        ([3, 4, 5], [2, 6, 4]),  # a request spanning two chunks, one spanning three
        ([5, 0, 7], [5, 7]),  # requests ending exactly at a chunk's end, an empty chunk
        ([12], [1] * 12),
        ([1] * 6, [6]),
    ],
)
def test_dry_run_bodies_from_chunked_payloads_are_the_request_bodies(
    chunk_sizes: list[int], request_sizes: list[int]
) -> None:
    """The dry run joins payloads chunk by chunk (dry_run._request_bodies): the same bytes as
    build_request_body over each request's payloads, wherever the chunks split a request."""
    payloads = [f'{{"event_id":"e{n}"}}' for n in range(sum(chunk_sizes))]
    chunks, start = [], 0
    for size in chunk_sizes:
        chunks.append(pa.array(payloads[start : start + size], type=pa.string()))
        start += size
    ends = list(itertools.accumulate(request_sizes))
    envelope = build_request_body([], "T1")
    prefix, suffix = envelope[: len(b'{"data":[')], envelope[len(b'{"data":[') :]

    bodies = [
        b"".join(bytes(piece) for piece in pieces)
        for pieces in _request_bodies(pa.chunked_array(chunks, type=pa.string()), ends, prefix, suffix)
    ]

    expected, start = [], 0
    for end in ends:
        expected.append(build_request_body([p.encode() for p in payloads[start:end]], "T1"))
        start = end
    assert bodies == expected


def test_dry_run_needs_no_token_and_reads_a_warehouse_without_a_log(tmp_path: Path) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(0)])
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table raw.meta_delivery_log")

    summary = export_meta(warehouse, dry_run=True, out=tmp_path / "out")

    assert summary.ok and summary.sent == 1 and summary.dry_run_files


# -- the token never leaks --------------------------------------------------------------------------------


def test_the_token_never_appears_in_logs_tables_files_or_errors(
    tmp_path: Path, fake: FakeGraphAPI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(6)])
    fake.reject_event("evt-00002")
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    runner = CliRunner()
    cli_common = ["--warehouse", str(warehouse), "--graph-base-url", fake.base_url, "--no-progress"]
    dry = runner.invoke(app, ["export-meta", *cli_common, "--dry-run", "--out", str(tmp_path / "dry")])
    sent = runner.invoke(
        app, ["export-meta", *cli_common, "--conversion-id", "conv-00001", "--conversion-id", "conv-00002"]
    )
    fake.script(error(500, 2), drop(), slow(SLOW_ANSWER_SECONDS))
    transient = run_export(warehouse, fake, timeout=SHORT_READ_TIMEOUT)
    fake.script(error(400, 190, message="Invalid OAuth access token"))
    rejected = run_export(warehouse, fake, retry_failed=True)
    with pytest.raises(ExportUsageError) as bad_url:
        run_export(warehouse, fake, graph_base_url="ftp://127.0.0.1:1")

    assert sent.exit_code == 1 and dry.exit_code == 0, sent.output + dry.output
    assert all(r.access_token == TOKEN for r in fake.requests)  # it is sent, in the body, to Meta
    with duckdb.connect(str(warehouse), read_only=True) as con:
        table_text = str(con.execute("select * from raw.meta_delivery_log").fetchall())
    texts = {
        "python logging": caplog.text,
        "cli output": sent.output + dry.output + str(sent.exception) + str(dry.exception),
        "log table": table_text,
        "summary": repr(transient) + repr(rejected) + str(rejected.aborted),
        "exception": str(bad_url.value) + repr(bad_url.value),
        "client repr": repr(GraphClient(TOKEN, base_url=fake.base_url)),
    }
    for where, text in texts.items():
        assert TOKEN not in text, where
    for path in [*(tmp_path / "dry").iterdir(), warehouse, *tmp_path.glob("wh.duckdb*")]:
        assert TOKEN.encode() not in path.read_bytes(), path


# -- the command line -----------------------------------------------------------------------------------


def test_cli_without_token_and_without_dry_run_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("META_ACCESS_TOKEN", raising=False)
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(0)])

    result = CliRunner().invoke(app, ["export-meta", "--warehouse", str(warehouse)])

    assert result.exit_code == 2
    assert "META_ACCESS_TOKEN" in result.output and "--dry-run" in result.output


def test_cli_reports_a_missing_mart_as_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    warehouse = tmp_path / "wh.duckdb"
    duckdb.connect(str(warehouse)).close()

    result = CliRunner().invoke(
        app, ["export-meta", "--warehouse", str(warehouse), "--graph-base-url", "http://127.0.0.1:9"]
    )

    assert result.exit_code == 2 and "marts.meta_capi_events" in result.output


def test_cli_sends_and_exits_0_then_rerun_sends_nothing(
    tmp_path: Path, fake: FakeGraphAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("META_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("META_GRAPH_BASE_URL", fake.base_url)
    monkeypatch.setenv("META_TEST_EVENT_CODE", "TEST42")
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [event_row(n) for n in range(3)])
    args = ["export-meta", "--warehouse", str(warehouse), "--no-progress", "--as-of", "2026-03-20T00:00:00"]

    first, second = CliRunner().invoke(app, args), CliRunner().invoke(app, args)

    assert first.exit_code == 0 and second.exit_code == 0, first.output
    assert len(fake.requests) == 1 and fake.requests[0].test_event_code == "TEST42"
    assert {str(r["as_of"].date()) for r in log_rows(warehouse)} == {"2026-03-20"}


def test_batch_size_above_1000_is_refused(tmp_path: Path) -> None:
    warehouse = make_warehouse(tmp_path / "wh.duckdb", [])
    with pytest.raises(ExportUsageError):
        export_meta(warehouse, dry_run=True, batch_size=MAX_EVENTS_PER_REQUEST + 1)
    result = CliRunner().invoke(
        app, ["export-meta", "--warehouse", str(warehouse), "--dry-run", "--batch-size", "1001"]
    )
    assert result.exit_code == 2


def test_a_dry_run_writes_beside_the_warehouse_not_into_the_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONVOPT_META_DRY_RUN", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wh").mkdir()
    warehouse = make_warehouse(tmp_path / "wh" / "wh.duckdb", [event_row(0)])
    result = CliRunner().invoke(
        app, ["export-meta", "--warehouse", str(warehouse), "--dry-run", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "wh" / "meta_dry_run" / "requests.jsonl").exists()
    assert not (tmp_path / "reports").exists()
    monkeypatch.setenv("CONVOPT_META_DRY_RUN", str(tmp_path / "private"))
    assert CliRunner().invoke(app, ["export-meta", "--warehouse", str(warehouse), "--dry-run"]).exit_code == 0
    assert (tmp_path / "private" / "events.parquet").exists()
