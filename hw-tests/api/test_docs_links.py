"""The developer docs keep matching the repository: docs/architecture.md names every workspace
member and its crate diagram is the one docs/crate_graph.py generates from the Cargo.toml files
(no dependency pointing to a higher layer)."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def crate_graph():
    spec = importlib.util.spec_from_file_location("crate_graph", REPO / "docs" / "crate_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_architecture_names_every_workspace_member():
    members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    text = (REPO / "docs" / "architecture.md").read_text()
    missing = [m for m in members if f"`{m}`" not in text]
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_crate_diagram_is_generated_from_the_manifests():
    graph = crate_graph()
    text = graph.DOC.read_text()
    assert graph.current_block(text) == graph.diagram(), \
        "docs/architecture.md's crate diagram is out of date: run python3 docs/crate_graph.py --write"


# ---- relative links ----------------------------------------------------------------------

import re  # noqa: E402

import pytest  # noqa: E402

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def pages() -> list[Path]:
    found = [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "CHANGELOG.md"]
    found += sorted((REPO / "docs").rglob("*.md"))
    found += sorted((REPO / "hw-tests").glob("*/README.md")) + [REPO / "hw-tests" / "README.md"]
    return [p for p in found if p.is_file()]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def links(page: Path) -> list[str]:
    text = FENCE.sub("", page.read_text())
    # Inline code spans, left to right, dropped unless they are a link's text ([`x`](y)).
    text = re.sub(r"`[^`\n]*`", lambda m: m.group(0) if m.string[m.end():m.end() + 1] == "]" else "", text)
    return [m.group(1) for m in LINK.finditer(text)]


def test_the_pages_are_found():
    names = {p.relative_to(REPO).as_posix() for p in pages()}
    assert {"README.md", "CONTRIBUTING.md", "docs/architecture.md"} <= names


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_point_to_existing_files(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:…
            continue
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target} (no heading #{fragment})")
    assert not broken, f"{page}: broken links: {broken}"


def test_readme_stays_a_map():
    assert (REPO / "README.md").stat().st_size <= 16 * 1024
