"""Write docs/metrics.md, the metric dictionary, from the models' YAML, so definitions live in one place.

Usage: .venv/bin/python scripts/metric_dictionary.py           rewrites docs/metrics.md
       .venv/bin/python scripts/metric_dictionary.py --check   exit 1 when docs/metrics.md is stale
(tests/warehouse/test_readme.py runs the check, so a changed description fails the suite until the page
is regenerated). The whole page is generated: edit the models' YAML and docs blocks, never the page.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "metrics.md"
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
DOC_REF = re.compile(r"""\{\{\s*doc\(\s*["']([A-Za-z0-9_]+)["']\s*\)\s*\}\}""")
DOC_BLOCK = re.compile(r"\{%\s*docs\s+([A-Za-z0-9_]+)\s*%\}(.*?)\{%\s*enddocs\s*%\}", re.S)
# A few descriptions in models/ still name the feature document "the seed" (a word that also means a dbt
# seed) or point at the change that added a column. The page uses the documentation's words; an entry
# becomes a no-op once the YAML says it the same way.
HEADER = """\
# Metric dictionary

_Generated from the models' YAML and docs blocks by `scripts/metric_dictionary.py`: do not edit this page.
Regenerate it with `.venv/bin/python scripts/metric_dictionary.py` (`--check` exits 1 when it is stale)._

Every column of the marts people query most, with its definition as the model's YAML states it (and as
`dbt docs generate` shows it). The words these definitions use (conversion, touchpoint, attribution model,
period, reporting currency, …) are defined once in [the warehouse page](warehouse.md#terms); the path from a
metric to the SQL that computes it and the tests that check it is in
[Finding a metric](warehouse.md#finding-a-metric).
"""


def docs_blocks() -> dict[str, str]:
    blocks: dict[str, str] = {}
    for path in sorted((ROOT / "models").rglob("*.md")):
        blocks.update((name, body.strip()) for name, body in DOC_BLOCK.findall(path.read_text()))
    return blocks


def model_entries() -> dict[str, tuple[Path, str, list[tuple[str, str]]]]:
    """Each model's YAML file, description and (column, description) pairs, from models/**/*.yml."""
    found: dict[str, tuple[Path, str, list[tuple[str, str]]]] = {}
    for path in sorted((ROOT / "models").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []) or []:
            columns = [(c["name"], c.get("description", "")) for c in model.get("columns", []) or []]
            found[model["name"]] = (path, model.get("description", ""), columns)
    return found


def expand(text: str, blocks: dict[str, str]) -> str:
    """``{{ doc("name") }}`` references replaced by their docs blocks."""
    return DOC_REF.sub(lambda m: blocks.get(m.group(1), m.group(0)), text)


def paragraphs(text: str, blocks: dict[str, str]) -> str:
    """A description as Markdown: doc blocks expanded, lines stripped, blank lines kept."""
    lines = [line.strip() for line in expand(text, blocks).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def one_line(text: str, blocks: dict[str, str]) -> str:
    return " ".join(expand(text, blocks).replace("|", "\\|").split())


def render() -> str:
    blocks, models = docs_blocks(), model_entries()
    out = [HEADER]
    out += ["Models: " + ", ".join(f"[`{name}`](#{name})" for name in MODELS) + ".", ""]
    for name in MODELS:
        if name not in models:
            raise SystemExit(f"model {name} has no YAML entry under models/; cannot document it")
        path, description, columns = models[name]
        yml = path.relative_to(ROOT).as_posix()
        sql = path.with_suffix(".sql").relative_to(ROOT).as_posix()
        out += [
            f"## {name}",
            "",
            f"Defined in [`{yml}`](../{yml}) (description, columns, tests), computed in [`{sql}`](../{sql}).",
            "",
            paragraphs(description, blocks),
            "",
            "| column | definition |",
            "|---|---|",
        ]
        out += [f"| `{col}` | {one_line(desc, blocks)} |" for col, desc in columns]
        out.append("")
    return "\n".join(out)


def main() -> int:
    new = render()
    if "--check" in sys.argv:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if new != current:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run scripts/metric_dictionary.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
