#!/usr/bin/env python3
"""CycloneDX 1.5 SBOM of a Civia image: the Debian packages of the root file system (from its
dpkg status file) and the Rust crates compiled into Civia's programs (from Cargo.lock).

Written here rather than taken from a tool: the maintained generators (syft, cargo-cyclonedx)
are not packaged for the build machine and each covers one of the two sources; the format is
a plain JSON document whose fields this script fills from those two files only.

Usage: sbom.py --dpkg-status ROOT/var/lib/dpkg/status --cargo-lock Cargo.lock \
               --version 1.2.3 --variant cpu -o sbom.cdx.json
"""

import argparse
import json
import sys
import tomllib
import uuid
from datetime import datetime, timezone
from urllib.parse import quote


def dpkg_packages(path: str) -> list[dict]:
    """Installed packages of a dpkg status file, as CycloneDX components."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        stanzas = f.read().split("\n\n")
    for stanza in stanzas:
        fields, last = {}, None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and last:
                continue  # continuation lines (descriptions, conffiles)
            key, _, value = line.partition(":")
            last = key
            fields[key] = value.strip()
        if not fields.get("Package") or "installed" not in fields.get("Status", ""):
            continue
        name, version = fields["Package"], fields.get("Version", "")
        arch = fields.get("Architecture", "")
        component = {
            "type": "library" if name.startswith("lib") else "application",
            "bom-ref": f"deb:{name}@{version}",
            "name": name,
            "version": version,
            "purl": f"pkg:deb/debian/{quote(name)}@{quote(version)}?arch={arch}",
        }
        if fields.get("Maintainer"):
            component["supplier"] = {"name": fields["Maintainer"]}
        out.append(component)
    return out


def cargo_crates(path: str) -> list[dict]:
    """Crates of a Cargo.lock from a registry (the workspace's own crates are the product)."""
    with open(path, "rb") as f:
        lock = tomllib.load(f)
    out = []
    for p in lock.get("package", []):
        if "source" not in p:
            continue
        component = {
            "type": "library",
            "bom-ref": f"cargo:{p['name']}@{p['version']}",
            "name": p["name"],
            "version": p["version"],
            "purl": f"pkg:cargo/{p['name']}@{p['version']}",
        }
        if p.get("checksum"):
            component["hashes"] = [{"alg": "SHA-256", "content": p["checksum"]}]
        out.append(component)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dpkg-status", required=True)
    ap.add_argument("--cargo-lock", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--variant", default="cpu")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    debs, crates = dpkg_packages(a.dpkg_status), cargo_crates(a.cargo_lock)
    if not debs or not crates:
        print(f"sbom.py: nothing found ({len(debs)} packages, {len(crates)} crates)", file=sys.stderr)
        return 1
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "component": {"type": "operating-system", "bom-ref": "civia-image",
                          "name": f"civia-{a.variant}", "version": a.version},
            "tools": {"components": [{"type": "application", "name": "civia image/sbom.py"}]},
        },
        "components": debs + crates,
    }
    with open(a.output, "w", encoding="utf-8") as f:
        json.dump(bom, f, indent=1)
        f.write("\n")
    print(f"sbom: {len(debs)} Debian packages, {len(crates)} crates -> {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
