"""The README is part of the product: its first commands and its metric dictionary must stay true."""

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


def test_readme_metric_dictionary_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "metric_dictionary.py"), "--check"], check=False
    )
    assert result.returncode == 0, "README metric dictionary is stale: run scripts/metric_dictionary.py"
