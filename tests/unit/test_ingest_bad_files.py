"""A bad landing file costs only itself: every file the loader cannot use is a ``failed`` row in
``raw.load_log`` with a one-line reason, the exit code says so, and every other file still loads."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from ingest_helpers import record, write_jsonl
from rich.console import Console
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ingest import ingest_paths

runner = CliRunner()


def _three_files(folder: Path) -> list[Path]:
    return [
        write_jsonl(folder / f"events_{n}.jsonl", [record("events", 10 * n + i) for i in range(2)])
        for n in (1, 2, 3)
    ]


def _load_log(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select regexp_extract(file_name, '[^/]+$'), status, error from raw.load_log order by file_name"
        ).fetchall()


def _events(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select count(*) from raw.events").fetchone()[0]


def _ingest(*args: str):
    return runner.invoke(app, ["ingest", *args, "--no-progress"])


def _without_read_override() -> list[str] | None:
    """A command prefix under which this process cannot read a chmod 000 file (None: not possible here)."""
    if os.geteuid() != 0:
        return []
    capsh = shutil.which("capsh")
    if capsh:
        return [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--"]
    return None


def test_an_unreadable_file_is_failed_and_the_files_after_it_still_load(tmp_path: Path) -> None:
    prefix = _without_read_override()
    if prefix is None:
        pytest.skip("running as root without capsh: a chmod 000 file stays readable")
    files = _three_files(tmp_path / "landing")
    files[1].chmod(0)
    warehouse = tmp_path / "wh.duckdb"
    command = [sys.executable, "-m", "pipelines.cli", "ingest", str(tmp_path / "landing"), "--no-progress"]
    if prefix:  # capsh runs its arguments through a shell
        command = [*prefix, "-c", " ".join(f"'{c}'" for c in command)]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "CONVOPT_WAREHOUSE": str(warehouse)}
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "events_2.jsonl: cannot read it: Permission denied" in " ".join(done.stderr.split())
    log = _load_log(warehouse)
    assert [(name, status) for name, status, _ in log] == [
        ("events_1.jsonl", "loaded"),
        ("events_2.jsonl", "failed"),
        ("events_3.jsonl", "loaded"),
    ]
    assert _events(warehouse) == 4


def test_an_unreadable_file_is_failed_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _three_files(tmp_path)
    real_open = Path.open

    def refuse(self: Path, *args, **kwargs):
        if self.name == files[1].name:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    report = ingest_paths(
        [tmp_path], warehouse=tmp_path / "wh.duckdb", progress=False, console=Console(quiet=True)
    )
    assert [f.status for f in report.files] == ["loaded", "failed", "loaded"]
    assert report.files[1].message == "cannot read it: Permission denied"
    assert not report.ok


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX")
def test_a_named_pipe_is_refused_without_being_opened(tmp_path: Path) -> None:
    files = _three_files(tmp_path)
    files[1].unlink()
    os.mkfifo(files[1])  # opening it for reading would wait forever for a writer
    result = _ingest(str(tmp_path), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert result.exit_code == 1
    log = _load_log(tmp_path / "wh.duckdb")
    assert [s for _, s, _ in log] == ["loaded", "failed", "loaded"]
    assert log[1][2] == "a named pipe (FIFO), not a regular file: refused without reading it"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("events.json", b'{"a": 1}\n', "unknown file type '.json': expected .jsonl, .ndjson, .csv, .parquet"),
        ("events.jsonl.gz", gzip.compress(b"{}\n", mtime=0), "compressed files (.gz) are not read"),
        ("events_notes.txt", b"hello\n", "unknown file type '.txt'"),
        (
            "events_gz.jsonl",
            gzip.compress(b"{}\n", mtime=0),
            "a gzip-compressed file, not JSONL as its name '.jsonl' says",
        ),
        ("events_pq.csv", b"PAR1\x00\x00", "a Parquet file, not CSV as its name '.csv' says"),
    ],
)
def test_files_of_the_wrong_kind_in_a_folder_are_failed_not_skipped(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    _three_files(tmp_path)
    (tmp_path / name).write_bytes(content)
    result = _ingest(str(tmp_path), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert result.exit_code == 1
    log = dict((n, (s, e)) for n, s, e in _load_log(tmp_path / "wh.duckdb"))
    assert log[name][0] == "failed" and reason in log[name][1]
    assert "\n" not in log[name][1]
    assert _events(tmp_path / "wh.duckdb") == 6


def test_a_parquet_file_named_jsonl_says_so(tmp_path: Path) -> None:
    pl.DataFrame({"event_id": ["e1"]}).write_parquet(tmp_path / "events.jsonl")
    result = _ingest(str(tmp_path / "events.jsonl"), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert result.exit_code == 1
    assert _load_log(tmp_path / "wh.duckdb")[0][2] == (
        "a Parquet file, not JSONL as its name '.jsonl' says: rename or convert it"
    )


def test_an_unreadable_subfolder_is_failed_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _three_files(tmp_path)
    (tmp_path / "sub").mkdir()
    write_jsonl(tmp_path / "sub" / "events_9.jsonl", [record("events", 99)])
    real_scandir = os.scandir

    def refuse(path=".", *args):
        if Path(path) == tmp_path / "sub":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path, *args)

    monkeypatch.setattr(os, "scandir", refuse)
    report = ingest_paths(
        [tmp_path], warehouse=tmp_path / "wh.duckdb", progress=False, console=Console(quiet=True)
    )
    statuses = {Path(f.file_name).name: (f.status, f.message) for f in report.files}
    assert statuses["sub"][0] == "failed" and "cannot be listed" in statuses["sub"][1]
    assert [statuses[f"events_{n}.jsonl"][0] for n in (1, 2, 3)] == ["loaded"] * 3


def test_a_symlink_leading_outside_the_landing_folder_is_refused_unread(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    _three_files(landing)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:the first line of a private file\n")
    (landing / "events_link.jsonl").symlink_to(secret)
    result = _ingest(str(landing), "--warehouse", str(tmp_path / "wh.duckdb"))
    assert result.exit_code == 1
    log = dict((n, (s, e)) for n, s, e in _load_log(tmp_path / "wh.duckdb"))
    assert log["events_link.jsonl"][0] == "failed"
    assert "outside the landing folder" in log["events_link.jsonl"][1]
    assert "root:x" not in log["events_link.jsonl"][1] and "root:x" not in result.output


def test_an_empty_jsonl_file_is_loaded_once_then_skipped(tmp_path: Path) -> None:
    (tmp_path / "events_empty.jsonl").write_bytes(b"")
    for _ in range(3):
        assert _ingest(str(tmp_path), "--warehouse", str(tmp_path / "wh.duckdb")).exit_code == 0
    assert _load_log(tmp_path / "wh.duckdb") == [("events_empty.jsonl", "loaded", None)]


def test_an_empty_parquet_file_is_failed_even_after_an_empty_jsonl_file(tmp_path: Path) -> None:
    (tmp_path / "events_a.jsonl").write_bytes(b"")
    (tmp_path / "events_b.parquet").write_bytes(b"")
    assert _ingest(str(tmp_path), "--warehouse", str(tmp_path / "wh.duckdb")).exit_code == 1
    log = _load_log(tmp_path / "wh.duckdb")
    assert [(n, s) for n, s, _ in log] == [("events_a.jsonl", "loaded"), ("events_b.parquet", "failed")]
