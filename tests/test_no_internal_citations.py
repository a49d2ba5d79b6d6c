"""Code and docs cite the published documentation only, and every cited page and anchor exists.

Comments and docstrings under src/ point readers at ``docs/<page>.md#<anchor>``; this test keeps those links
valid (anchors as MkDocs makes them: heading slugs, ``{#id}`` attributes and ``<a id>`` tags) and keeps out
citations of a document users do not have.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# "SPEC" as a document name (not SPECS, _SPECIAL, ...), and the section sign its citations used.
INTERNAL = re.compile(r"\bSPEC\b|§\s?\d")
CITATION = re.compile(r"\bdocs/((?:[\w-]+/)*[\w-]+\.md)(?:#([\w-]+))?")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$")
ATTR_ID = re.compile(r"\{[^}]*#([\w-]+)[^}]*\}")
HTML_ID = re.compile(r"<a\s+(?:[^>]*\s)?(?:id|name)=\"([^\"]+)\"")
FENCE = re.compile(r"^\s*(```|~~~)")


def slugify(text: str) -> str:
    """The heading id Python-Markdown's toc extension gives (its default slugify), as MkDocs uses it."""
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}", "", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors_of_text(markdown: str) -> set[str]:
    """Every anchor a page defines: heading slugs (or their ``{#id}``), attribute ids and ``<a id>`` tags."""
    found: set[str] = set()
    in_fence = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        found.update(HTML_ID.findall(line))
        found.update(ATTR_ID.findall(line))
        heading = HEADING.match(line)
        if heading and not ATTR_ID.search(line):
            base = slugify(heading.group(1))
            slug, n = base, 0
            while slug in found:
                n += 1
                slug = f"{base}_{n}"
            found.add(slug)
    return found


@cache
def anchors(page: str) -> frozenset[str]:
    return frozenset(anchors_of_text((DOCS / page).read_text(encoding="utf-8")))


def sources() -> list[Path]:
    return sorted((ROOT / "src").rglob("*.py"))


def test_slugify_matches_mkdocs_headings() -> None:
    assert slugify("Content state and assessments") == "content-state-and-assessments"
    assert slugify("Group aggregates: the /data routes, `fields`") == "group-aggregates-the-data-routes-fields"
    assert anchors_of_text('## A {#x}\n```\n# not a heading\n```\n<a id="c1"></a>\n## Errors\n') == {
        "x",
        "c1",
        "errors",
    }


@pytest.mark.parametrize(
    "path",
    [*sources(), *sorted(DOCS.rglob("*.md")), ROOT / "README.md", ROOT / "BENCHMARKS.md"],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_internal_document_is_cited(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    hits = [f"{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1) if INTERNAL.search(line)]
    assert hits == [], f"{path.relative_to(ROOT)} cites an unpublished document; cite docs/<page>.md#<anchor>"


def test_cited_docs_pages_and_anchors_exist() -> None:
    broken: list[str] = []
    for path in sources():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for page, anchor in CITATION.findall(line):
                where = f"{path.relative_to(ROOT)}:{n}: docs/{page}"
                if not (DOCS / page).is_file():
                    broken.append(f"{where} (no such page)")
                elif anchor and anchor not in anchors(page):
                    broken.append(f"{where}#{anchor} (no such anchor)")
    assert broken == []


def test_the_checker_finds_a_broken_anchor() -> None:
    assert "a3" in anchors("jobs/assessment.md")
    assert "no-such-section" not in anchors("jobs/assessment.md")
    assert "14a" in anchors("reference/compatibility.md")
