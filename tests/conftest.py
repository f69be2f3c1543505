"""Shared fixtures. ``demo_run`` is the one built warehouse most end-to-end tests read: a small generated
data set taken through `convopt run` (ingest → dbt build → export-meta dry run → report) once per session."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.util
import io
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console
from spark_fixture import spark  # noqa: F401 - the session fixture `spark`, one cluster for every Spark test file

from pipelines.generate import GeneratorConfig, generate_dataset
from pipelines.run import RunOptions, run_pipeline


def _test_module_scheduling():
    """`make test` runs on pytest-xdist workers with ``--dist loadfile``: each module whole on one
    worker, so its module-scoped fixture (most build the dbt project) is built once. This keeps, in
    addition, every module that reads the session's ``demo_run`` warehouse on one worker, so that
    warehouse is built once. (xdist's own ``xdist_group`` marks do not group on pytest 9.2:
    pytest-dev/pytest-xdist#1386.)"""
    from xdist.scheduler import LoadFileScheduling

    @functools.cache
    def reads_demo_run(path: Path) -> bool:
        return path.is_file() and "demo_run" in path.read_text()

    class ModuleScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "demo_run" if reads_demo_run(Path(self.config.rootpath) / module) else module

    return ModuleScheduling


if importlib.util.find_spec("xdist") is not None:

    @pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own; optional for -p no:xdist
    def pytest_xdist_make_scheduler(config: pytest.Config, log):
        if config.getvalue("dist") == "loadfile":
            return _test_module_scheduling()(config, log)
        return None


DEMO_CONFIG = GeneratorConfig(persons=400, seed=7, start=dt.date(2026, 3, 1), days=21, bad_rows_ratio=0.01)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """root, landing, warehouse, written (generator files), report (ingest report), run (RunResult), out,
    target (dbt artifacts), log (the run's console output). Tests must not modify the warehouse's data."""
    root = tmp_path_factory.mktemp("demo_run")
    landing, warehouse, out, target = (
        root / "landing",
        root / "warehouse.duckdb",
        root / "reports",
        root / "target",
    )
    written = generate_dataset(landing, DEMO_CONFIG)
    log = io.StringIO()
    result = run_pipeline(
        RunOptions(warehouse=warehouse, landing=[landing], out=out, target_path=target),
        console=Console(file=log, width=160),
    )
    summary = "\n".join(f"{s.name}: {s.status} {s.detail}" for s in result.stages)
    assert result.exit_code == 0, summary + "\n" + log.getvalue()[-4000:]
    return {
        "root": root,
        "landing": landing,
        "warehouse": warehouse,
        "written": written,
        "report": result.ingest_report,
        "run": result,
        "out": out,
        "target": target,
        "log": log.getvalue(),
    }


def copy_of(path: Path, into: Path) -> Path:
    """A private copy of a DuckDB file (for tests that write)."""
    import shutil

    target = into / path.name
    shutil.copy2(path, target)
    return target


@contextlib.contextmanager
def _another_process(setup: str) -> Iterator[subprocess.Popen]:
    """A second Python process that runs ``setup`` (which takes some lock), says so, and waits to be killed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", f"{setup}\nprint('locked', flush=True)\nimport time\ntime.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,  # `pipelines` importable from this checkout
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture()
def warehouse_held_open() -> Callable[[Path], contextlib.AbstractContextManager[subprocess.Popen]]:
    """``with warehouse_held_open(path) as holder:`` another process has the DuckDB file open for writing."""
    return lambda path: _another_process(f"import duckdb\ncon = duckdb.connect({str(path)!r})")


@pytest.fixture()
def run_lock_held() -> Callable[[Path], contextlib.AbstractContextManager[subprocess.Popen]]:
    """``with run_lock_held(warehouse) as holder:`` another process holds `convopt run`'s lock, as a run does."""
    return lambda path: _another_process(
        f"import sys\nsys.path.insert(0, '.')\nfrom pipelines.run import run_lock\nlock = run_lock({str(path)!r})\nlock.__enter__()"
    )
