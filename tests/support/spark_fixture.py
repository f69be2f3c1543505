"""Session-scoped Spark cluster for tests marked `spark` (registered in conftest.py, so one cluster
serves every Spark test file of a session).

* CONVOPT_SPARK_HOST and CONVOPT_SPARK_PORT set: that cluster's Thrift server is used (its `raw`,
  `reference`, `staging`, `intermediate` and `marts` databases are replaced by the tests).
* Otherwise a private cluster is started (pipelines.engines.servers.spark) in a temp folder and
  stopped at the end of the session (every process checked gone).

Test modules call :func:`skip_unless_spark_available` at import, which skips the module with the
reason when the `.[spark]` extra or Java is missing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from collections.abc import Iterator

import pytest

from pipelines.engines.servers import spark as cluster

EXTERNAL = bool(os.environ.get("CONVOPT_SPARK_HOST") and os.environ.get("CONVOPT_SPARK_PORT"))


def skip_unless_spark_available() -> None:
    """Skip the calling test module (at import) when Spark cannot run here, saying why."""
    missing = [m for m in ("pyspark", "pyhive", "dbt.adapters.spark") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"Spark tests need the `.[spark]` extra ({', '.join(missing)} not importable): pip install -e '.[spark]'",
            allow_module_level=True,
        )
    if not EXTERNAL and shutil.which("java") is None:
        pytest.skip(
            "Spark tests need Java 17 on PATH to start a cluster (or CONVOPT_SPARK_HOST/PORT of a running one)",
            allow_module_level=True,
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Host, port and (when started here) the state folder, start time and pids of a Spark cluster."""
    if EXTERNAL:
        yield {"host": os.environ["CONVOPT_SPARK_HOST"], "port": int(os.environ["CONVOPT_SPARK_PORT"])}
        return
    state_dir = tmp_path_factory.mktemp("spark_cluster")
    started = time.perf_counter()
    start = cluster.run("start", state_dir)
    seconds = time.perf_counter() - started
    if start.returncode != 0:
        cluster.run("stop", state_dir)
        pytest.fail(f"spark_cluster.sh start failed:\n{start.stderr[-3000:]}")
    exported = cluster.exports(start.stdout)
    pids = cluster.pids(state_dir)
    try:
        yield {
            "host": exported["CONVOPT_SPARK_HOST"],
            "port": int(exported["CONVOPT_SPARK_PORT"]),
            "state_dir": state_dir,
            "start_seconds": seconds,
            "pids": pids,
        }
    finally:
        stop = cluster.run("stop", state_dir)
        assert stop.returncode == 0, stop.stderr
        assert not [pid for pid in pids if _alive(pid)], f"processes left after stop: {pids}"
