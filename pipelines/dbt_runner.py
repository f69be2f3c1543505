"""Run the dbt project against a chosen warehouse file, the same way `make demo` does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipelines.warehouse import PROJECT_DIR, WAREHOUSE_ENV, warehouse_path


def dbt_executable() -> str:
    """The `dbt` installed beside this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


def run_dbt(
    args: Sequence[str],
    *,
    warehouse: str | os.PathLike[str] | None = None,
    target_path: str | os.PathLike[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    capture: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <args>`` on this project in a child process.

    A child process (rather than dbt's in-process runner) releases the DuckDB file when it exits,
    so the caller can open the warehouse right after. ``target_path`` keeps dbt's artifacts apart
    when several builds run at once (tests).
    """
    env = dict(os.environ)
    env[WAREHOUSE_ENV] = str(Path(warehouse_path(warehouse)).resolve())
    env.setdefault("DBT_PROFILES_DIR", str(PROJECT_DIR))
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    if target_path is not None:
        env["DBT_TARGET_PATH"] = str(target_path)
        env["DBT_LOG_PATH"] = str(Path(target_path) / "logs")
    if extra_env:
        env.update(extra_env)
    command = [dbt_executable(), *args, "--project-dir", str(PROJECT_DIR)]
    return subprocess.run(command, cwd=PROJECT_DIR, env=env, text=True, capture_output=capture, check=False)
