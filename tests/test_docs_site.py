"""The documentation site: `mkdocs build --strict` (broken links, missing anchors and pages left out of the
navigation fail it), the rule anchors code cites, and the getting-started session kept equal to the README's."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="mkdocs-material is not installed (pip install -e '.[docs]')",
)


def _build(site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_strict_build_succeeds_and_serves_rule_anchors(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = _build(site)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    # The anchors code and failed events point at (`docs/jobs/assessment.md#a3`, …) exist in the built pages.
    expected = {
        "jobs/assessment/index.html": [f"a{i}" for i in range(1, 10)] + [f"s{i}" for i in range(1, 9)],
        "jobs/progress/index.html": [f"p{i}" for i in range(1, 12)],
        "jobs/certificates/index.html": [f"k{i}" for i in range(1, 10)],
        "reference/data-model/index.html": ["d1", "d2", "d3", "c4", "c5", "merged-view", "hierarchy"],
        "reference/events/index.html": [f"e{i}" for i in range(1, 6)],
        "reference/compatibility/index.html": ["3", "14a", "14b", "22"],
    }
    for page, anchors in expected.items():
        html = (site / page).read_text(encoding="utf-8")
        for anchor in anchors:
            assert f'id="{anchor}"' in html, f"{page} lacks #{anchor}"


def test_internal_links_resolve() -> None:
    """Every relative Markdown link of docs/ names an existing file (mkdocs checks anchors in the build)."""
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    broken = []
    for page in DOCS.rglob("*.md"):
        for target in link.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            if not (page.parent / target).resolve().exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert broken == []


def test_getting_started_session_matches_the_tested_one() -> None:
    """docs/index.md shows the README's first API session, which tests/entrypoints/cli/test_readme_session.py runs."""
    marker = "A first session against the API"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if marker not in readme:
        pytest.skip("the README no longer carries the session")

    def session(text: str) -> str:
        after = text[text.index(marker) :]
        start = after.index("```sh\n")
        return after[start : after.index("```", start + 6)]

    assert session((DOCS / "index.md").read_text(encoding="utf-8")) == session(readme)
