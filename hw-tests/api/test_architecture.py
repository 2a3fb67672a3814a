"""The workspace's shape, checked from the sources (docs/architecture.md, CONTRIBUTING.md).

- No module-import cycle inside any crate: a module reaches another through `use crate::…`,
  `crate::…::` paths or `super::…` (names re-exported by the crate root are followed to the
  module that defines them; `#[cfg(test)]` items are left out).
- In `civia-api` and `civia-admin-api`, no handler imports another handler: what two handlers share lives in a
  module outside `handlers/`.
- No crate holds more than MAX_SHARE of the workspace's Rust source lines (tests excluded).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The bound is 12 %, for every crate (an exception would be named here).
MAX_SHARE: dict[str, float] = {}
DEFAULT_MAX_SHARE = 0.12


def members() -> list[str]:
    return tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]


def strip_tests(text: str) -> str:
    """The source without `#[cfg(test)]` items (attribute and the braced item after it)."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        if lines[i].strip().startswith("#[cfg(test)]"):
            depth, started, j = 0, False, i + 1
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                started = started or "{" in lines[j]
                if (started and depth <= 0) or (not started and lines[j].rstrip().endswith(";")):
                    break
                j += 1
            i = j + 1
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def source_files(crate: Path) -> dict[str, Path]:
    """Module path (`handlers::admin`, `` for the root) → file, tests excluded."""
    mods = {}
    src = crate / "src"
    for p in sorted(src.rglob("*.rs")):
        rel = p.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        if parts and parts[-1] == "tests" or "bin" in parts:
            continue
        mods["::".join(parts)] = p
    return mods


def root_reexports(root_text: str) -> dict[str, str]:
    """Names the crate root re-exports from its own modules (`pub use m::{A, B}`)."""
    names = {}
    for m in re.finditer(r"pub(?:\(crate\))?\s+use\s+([a-z_][a-z0-9_]*)::(\{[^}]*\}|[A-Za-z0-9_]+)\s*;", root_text):
        for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(2)):
            names[name] = m.group(1)
    return names


def edges(crate: Path) -> dict[str, set[str]]:
    mods = source_files(crate)
    root = mods.get("")
    reexp = root_reexports(root.read_text()) if root else {}
    graph: dict[str, set[str]] = {m: set() for m in mods}

    def resolve(path: list[str]) -> str | None:
        # The longest known module prefix of the path; a root item goes to its definer.
        for n in range(len(path), 0, -1):
            cand = "::".join(path[:n])
            if cand in mods:
                return cand
        if path and path[0] in reexp:
            return reexp[path[0]]
        return None

    for mod, file in mods.items():
        text = re.sub(r"//.*", "", strip_tests(file.read_text()))
        here = mod.split("::") if mod else []
        refs: list[list[str]] = []
        for m in re.finditer(r"\bcrate::((?:[A-Za-z_][A-Za-z0-9_]*::)*)(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)", text):
            prefix = [p for p in m.group(1).split("::") if p]
            tail = m.group(2)
            for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", tail) if tail.startswith("{") else [tail]:
                refs.append(prefix + [name])
        for m in re.finditer(r"\bsuper::((?:[A-Za-z_][A-Za-z0-9_]*::)*)([A-Za-z_][A-Za-z0-9_]*)", text):
            parent = here[:-1]
            refs.append(parent + [p for p in m.group(1).split("::") if p] + [m.group(2)])
        for r in refs:
            target = resolve(r)
            if target is not None and target != mod:
                graph[mod].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_edges_follow_root_reexports(tmp_path):
    src = tmp_path / "src"
    (src / "handlers").mkdir(parents=True)
    (src / "lib.rs").write_text("mod error;\nmod handlers;\npub use error::ApiError;\n")
    (src / "error.rs").write_text("pub struct ApiError;\n")
    (src / "handlers" / "mod.rs").write_text("pub mod a;\npub mod b;\n")
    (src / "handlers" / "a.rs").write_text("use crate::ApiError;\nuse crate::handlers::b::x;\n")
    (src / "handlers" / "b.rs").write_text(
        "pub fn x() {}\n#[cfg(test)]\nmod tests {\n    use crate::handlers::a;\n}\nfn y() { super::a::z() }\n"
    )
    g = edges(tmp_path)
    assert g["handlers::a"] == {"error", "handlers::b"}
    assert g["handlers::b"] == {"handlers::a"}
    assert find_cycle(g) == ["handlers::a", "handlers::b", "handlers::a"]


def test_no_module_import_cycle_in_any_crate():
    for m in members():
        cycle = find_cycle(edges(ROOT / m))
        assert cycle is None, f"{m}: modules import each other in a circle: {' -> '.join(cycle)}"


def test_no_handler_imports_another_handler():
    g = edges(ROOT / "appliance/civia-api") | edges(ROOT / "appliance/civia-admin-api")
    for mod, targets in g.items():
        if mod.startswith("handlers::"):
            others = sorted(t for t in targets if t.startswith("handlers::"))
            assert not others, f"{mod} imports {others}: move what they share out of handlers/"


def source_lines(crate: Path) -> int:
    return sum(len(strip_tests(p.read_text()).split("\n")) for p in source_files(crate).values())


def test_no_crate_dominates_the_workspace():
    sizes = {m: source_lines(ROOT / m) for m in members()}
    total = sum(sizes.values())
    for m, n in sizes.items():
        share = n / total
        assert share <= MAX_SHARE.get(m, DEFAULT_MAX_SHARE), f"{m}: {n} of {total} lines ({share:.1%})"
