"""Write the README's metric dictionary from the models' YAML, so definitions live in one place.

Usage: .venv/bin/python scripts/metric_dictionary.py   (rewrites the block between the
<!-- METRIC-DICTIONARY --> markers in README.md; CI's test_readme_metric_dictionary_is_current fails
when the README is stale).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MODELS = (
    "conversion_metrics",
    "conversion_event",
    "conversion_funnel",
    "conversion_funnel_step",
    "funnel_stats",
    "conversion_attribution",
    "conversion_rollup_daily",
    "person_conversion_summary",
)
START, END = "<!-- METRIC-DICTIONARY -->", "<!-- /METRIC-DICTIONARY -->"
DOC_REF = re.compile(r"""\{\{\s*doc\(\s*["']([A-Za-z0-9_]+)["']\s*\)\s*\}\}""")
DOC_BLOCK = re.compile(r"\{%\s*docs\s+([A-Za-z0-9_]+)\s*%\}(.*?)\{%\s*enddocs\s*%\}", re.S)


def docs_blocks() -> dict[str, str]:
    blocks: dict[str, str] = {}
    for path in (ROOT / "models").rglob("*.md"):
        blocks.update((name, body.strip()) for name, body in DOC_BLOCK.findall(path.read_text()))
    return blocks


def model_columns() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    found: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for path in sorted((ROOT / "models").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []) or []:
            columns = [(c["name"], c.get("description", "")) for c in model.get("columns", []) or []]
            found[model["name"]] = (model.get("description", ""), columns)
    return found


def one_line(text: str, blocks: dict[str, str]) -> str:
    text = DOC_REF.sub(lambda m: blocks.get(m.group(1), m.group(0)), text)
    return " ".join(text.replace("|", "\\|").split())


def render() -> str:
    blocks, models = docs_blocks(), model_columns()
    out = [START, ""]
    for name in MODELS:
        if name not in models:
            raise SystemExit(f"model {name} has no YAML entry; cannot document it")
        description, columns = models[name]
        out += [
            f"#### `{name}`",
            "",
            one_line(description, blocks),
            "",
            "| column | definition |",
            "|---|---|",
        ]
        out += [f"| `{col}` | {one_line(desc, blocks)} |" for col, desc in columns]
        out.append("")
    out.append(END)
    return "\n".join(out)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"README.md has no {START} … {END} block")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    new = before + render() + after
    if "--check" in sys.argv:
        return 0 if new == text else 1
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
