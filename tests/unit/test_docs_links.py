"""The README stays one short page, and every relative link in it and in docs/ leads somewhere.

A relative Markdown link (`[text](docs/cli.md)`, `[text](../models/marts/conversion_metrics.sql)`,
`[text](warehouse.md#terms)`) must name a file of the repository; an anchor into a Markdown page must name
one of its headings (GitHub's heading ids). The pages also name things as a reader can find them: no paths
of one machine, and the feature document is not called "the seed".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_BYTES = 12 * 1024
PAGES = sorted([README, ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
FORBIDDEN = {
    "a path of one machine": re.compile(r"/work/|/tmp/|/root\b|/home/"),
    'the feature document called "the seed"': re.compile(r"\bthe seed's\b", re.I),
}


def prose(path: Path) -> str:
    """The page without its fenced code blocks (links and headings there are not Markdown)."""
    return FENCE.sub("", path.read_text())


def heading_ids(path: Path) -> set[str]:
    """GitHub's ids of a page's headings: lower-case, punctuation dropped, spaces as hyphens, -1, -2 … on repeats."""
    ids: set[str] = set()
    for heading in HEADING.findall(prose(path)):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in ids:
            n += 1
            candidate = f"{slug}-{n}"
        ids.add(candidate)
    return ids


def relative_links(path: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(prose(path))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)  # http:, https:, mailto: …
    ]


def test_readme_is_one_short_page() -> None:
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes; keep it under {README_MAX_BYTES} and move detail to docs/"
    )


def test_the_link_pattern_finds_links() -> None:
    text = "see [cli](docs/cli.md), [terms](warehouse.md#terms), [web](https://example.com) and ![img](a.png)"
    assert LINK.findall(text) == ["docs/cli.md", "warehouse.md#terms", "https://example.com"]
    assert heading_ids(ROOT / "docs" / "cli.md") >= {"exit-codes", "convopt-ingest-paths"}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        name = linked.relative_to(ROOT).as_posix() if linked.is_relative_to(ROOT) else str(linked)
        if not linked.exists():
            broken.append(f"{target} (no such file)")
            continue
        if anchor and linked.suffix == ".md" and anchor not in heading_ids(linked):
            broken.append(f"{target} (no heading #{anchor} in {name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {'; '.join(broken)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_pages_name_things_as_a_reader_finds_them(page: Path) -> None:
    text = page.read_text()
    found = [
        f"{what}: {match.group(0)!r}"
        for what, pattern in FORBIDDEN.items()
        if (match := pattern.search(text))
    ]
    assert not found, f"{page.relative_to(ROOT)}: {'; '.join(found)}"
