"""The supply chain's promises (docs/security/supply-chain.md): the Python dev tools are pinned
with hashes, the crates pass cargo-deny's licence, ban and source checks."""

import re
import shutil
import subprocess

import pytest

from conftest import REPO

SCRIPTS = REPO / "appliance" / "scripts"


def lock_entries() -> dict[str, tuple[str, list[str]]]:
    text = (SCRIPTS / "requirements-dev.lock").read_text()
    entries = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = block.strip().splitlines()
        if not head or head[0].startswith("#"):
            continue
        name, version = head[0].split(" ")[0].split("==")
        entries[re.sub(r"[-_.]+", "-", name).lower()] = (version, re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return entries


def test_every_python_tool_is_pinned_with_a_hash():
    lock = lock_entries()
    assert len(lock) > 20
    for name, (version, hashes) in lock.items():
        assert hashes, f"{name} has no hash"
    for line in (SCRIPTS / "requirements-dev.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, version = line.split("==")
        key = re.sub(r"[-_.]+", "-", name).lower()
        assert key in lock and lock[key][0] == version, f"{line} is not in requirements-dev.lock at that version"
    assert "--require-hashes" in (SCRIPTS / "install-models.sh").read_text()


def test_crates_pass_cargo_deny():
    deny = shutil.which("cargo-deny")
    if deny is None:
        pytest.fail("cargo-deny is missing: the test command installs it (cargo install cargo-deny --locked)",
                    pytrace=False)
    r = subprocess.run([deny, "check", "licenses", "bans", "sources"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
