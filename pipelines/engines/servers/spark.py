"""A Spark standalone cluster on loopback, for tests and benchmarks (targets `spark`).

The cluster (master, worker and the Thrift server dbt talks to) is started and stopped by the shell
script ``spark_cluster.sh`` beside this module, which also documents its settings. These functions
run it from Python with its state in a chosen folder and read what it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

SCRIPT = Path(__file__).with_name("spark_cluster.sh")
ROLES = ("master", "worker", "thrift")


class SparkClusterError(RuntimeError):
    """The cluster script failed; the message ends with its error output."""


def run(
    action: str,
    state_dir: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
    timeout: float | None = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``spark_cluster.sh <action>`` (start, stop, status) with its state in `state_dir` (default:
    ``$CONVOPT_SPARK_DIR`` or the script's own default) and this Python as the one with pyspark."""
    environment = {**os.environ, **(env or {})}
    environment.setdefault("PYTHON", sys.executable)
    if state_dir is not None:
        environment["CONVOPT_SPARK_DIR"] = str(state_dir)
    return subprocess.run(
        ["bash", str(SCRIPT), action],
        env=environment,
        text=True,
        capture_output=capture,
        timeout=timeout,
        check=False,
    )


def exports(stdout: str) -> dict[str, str]:
    """NAME: value of the ``export NAME=value`` lines the script prints."""
    pairs = (
        line.removeprefix("export ").split("=", 1)
        for line in stdout.splitlines()
        if line.startswith("export ")
    )
    return dict(pairs)


def start(state_dir: Path, *, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Start a cluster (or find it running) with its state in `state_dir`; the variables it exports
    (CONVOPT_SPARK_HOST, CONVOPT_SPARK_PORT, CONVOPT_SPARK_MASTER, CONVOPT_SPARK_DIR)."""
    result = run("start", state_dir, env=env)
    if result.returncode != 0:
        raise SparkClusterError(f"spark_cluster.sh start failed:\n{result.stderr[-3000:]}")
    return exports(result.stdout)


def stop(state_dir: Path, *, env: Mapping[str, str] | None = None) -> None:
    """Stop the cluster whose state is in `state_dir` (its processes, by pid); the folder stays."""
    result = run("stop", state_dir, env=env)
    if result.returncode != 0:
        raise SparkClusterError(f"spark_cluster.sh stop failed:\n{result.stderr[-3000:]}")


def pids(state_dir: Path) -> list[int]:
    """Pids of the master, worker and Thrift server started with their state in `state_dir`."""
    return [int((Path(state_dir) / "run" / f"{role}.pid").read_text()) for role in ROLES]
