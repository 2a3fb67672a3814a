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
