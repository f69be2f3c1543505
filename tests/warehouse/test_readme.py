"""The README and docs are part of the product: the README's first commands and the generated metric
dictionary (docs/metrics.md) must stay true."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[:4] == ["# convopt", "", "```bash", lines[3]]
    assert lines[3].startswith("make demo") and lines[4].startswith("make test")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_docs_metric_dictionary_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "metric_dictionary.py"), "--check"], check=False
    )
    assert result.returncode == 0, "docs/metrics.md is stale: run scripts/metric_dictionary.py"
