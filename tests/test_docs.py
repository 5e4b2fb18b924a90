"""The documentation: README.md is a short front page, docs/ holds the rest, and every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[(?:[^\]\n]|\][^(\n])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def _prose(text: str) -> str:
    """The text outside fenced code blocks and code spans, where a `[x](y)` is not a link."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: the heading's text without markup, lower case, punctuation
    other than `-` and `_` dropped, spaces as `-`; a repeated anchor gets `-1`, `-2`, ... (GitHub's rule)."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _HEADING.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _relative_links(page: Path) -> list[str]:
    return [target for target in _LINK.findall(_prose(page.read_text(encoding="utf-8")))
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]  # http:, https:, mailto: are not checked offline


def test_the_anchor_rule_matches_githubs_on_known_headings(tmp_path: Path):
    # Expected anchors: the npm package github-slugger 2 (the slugs GitHub gives headings), run by hand with node
    # on each heading's rendered text ("A page in the browser: zoo serve", ...).
    page = tmp_path / "page.md"
    page.write_text("# svs-zoo\n## TFC-TDF-UNet v3 (MDX23C)\n### A page in the browser: `zoo serve`\n"
                    "## Step 1 - Install\n## Notes\n## Notes\n```\n# not a heading\n```\n", encoding="utf-8")
    assert _anchors(page) == {"svs-zoo", "tfc-tdf-unet-v3-mdx23c", "a-page-in-the-browser-zoo-serve",
                              "step-1---install", "notes", "notes-1"}


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path):
    broken = []
    for target in _relative_links(page):
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            broken.append(f"{target}: no heading with this anchor in {destination.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_front_page_is_short_and_links_every_docs_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 350  # issue 18: a front page under 350 lines
    index = ROOT / "docs" / "README.md"
    linked = {(index.parent / target.partition("#")[0]).resolve() for target in _relative_links(index)}
    unlisted = [page.name for page in PAGES[1:] if page != index and page.resolve() not in linked]
    assert not unlisted, f"docs/README.md does not link {unlisted}"
    assert "docs/README.md" in _relative_links(ROOT / "README.md")
