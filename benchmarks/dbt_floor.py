"""dbt's own floor for a build of a given number of nodes: what any `dbt build` of that many models, data
tests and seeds costs on this machine, however little its SQL does.

    .venv/bin/python benchmarks/dbt_floor.py --models 48 --tests 98 --seeds 7

A throwaway project in a temp folder, on the same adapter and thread count as convopt's DuckDB target
(profiles.yml, target dev): `models` table models that each select one constant row, independent of
each other (so dbt can run them as parallel as its threads allow), `tests` singular data tests that each
read one of those models and return no row, and `seeds` one-row CSV seeds. It is built twice: once from
nothing (dbt parses the whole project) and once more with the parse and tables kept (what a scheduled
rerun costs, as benchmarks/build.py's builds reuse their parse). The rerun's wall time is a lower
bound for any build of that many nodes under dbt on this machine: start-up, reading the saved parse,
compiling and running every node, writing the artifacts. benchmarks/build.py measures it after its own
builds, with their node counts, in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
THREADS = 2  # profiles.yml, target dev

PROJECT = """name: floor
version: "1.0.0"
config-version: 2
profile: floor
models:
  floor:
    +materialized: table
"""

PROFILE = """floor:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{path}"
      threads: {threads}
"""


@dataclass
class Floor:
    """Wall seconds of the two builds of a trivial project with these node counts."""

    models: int
    tests: int
    seeds: int
    first_seconds: float  # from nothing: a full parse
    rerun_seconds: float  # parse and tables kept


def write_project(folder: Path, models: int, tests: int, seeds: int) -> None:
    """The trivial project (see the module's docstring) in `folder`, with its own profiles.yml."""
    if models < 1 and tests > 0:
        raise ValueError("a data test needs a model to read: --models must be at least 1 when --tests is")
    for sub in ("models", "tests", "seeds"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "dbt_project.yml").write_text(PROJECT)
    (folder / "profiles.yml").write_text(PROFILE.format(path=folder / "floor.duckdb", threads=THREADS))
    for index in range(models):
        (folder / "models" / f"model_{index}.sql").write_text("select 1 as x\n")
    for index in range(tests):
        model = f"model_{index % models}"
        (folder / "tests" / f"test_{index}.sql").write_text(
            f"select x from {{{{ ref('{model}') }}}} where x <> 1\n"
        )
    for index in range(seeds):
        (folder / "seeds" / f"seed_{index}.csv").write_text("x\n1\n")


def _build(folder: Path) -> float:
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(folder),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_TARGET_PATH": str(folder / "target"),
        "DBT_LOG_PATH": str(folder / "logs"),
    }
    started = time.perf_counter()
    finished = subprocess.run(
        [str(BIN / "dbt"), "build", "--project-dir", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"dbt build of the floor project in {folder} failed:\n{finished.stdout[-3000:]}")
    return seconds


def measure(models: int, tests: int, seeds: int) -> Floor:
    """Build the trivial project twice in a temp folder (deleted after) and time both builds."""
    folder = Path(tempfile.mkdtemp(prefix="convopt-dbt-floor-"))
    try:
        write_project(folder, models, tests, seeds)
        first = _build(folder)
        rerun = _build(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Floor(models, tests, seeds, first, rerun)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=48)
    parser.add_argument("--tests", type=int, default=98)
    parser.add_argument("--seeds", type=int, default=7)
    args = parser.parse_args()
    for name in ("models", "tests", "seeds"):
        if getattr(args, name) < 0:
            parser.error(f"--{name}: a count of nodes, 0 or more (got {getattr(args, name)})")
    try:
        floor = measure(args.models, args.tests, args.seeds)
    except ValueError as error:
        parser.error(str(error))
    print(
        f"dbt build of {floor.models} models, {floor.tests} data tests, {floor.seeds} seeds that do nothing: "
        f"{floor.first_seconds:.1f} s from nothing, {floor.rerun_seconds:.1f} s again with the parse kept"
    )


if __name__ == "__main__":
    main()
