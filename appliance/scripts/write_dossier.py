"""Writes a model's dossier next to it: the committed description plus the file's SHA-256.

Usage: write_dossier.py TEMPLATE.json MODEL.gguf OUT.dossier.json (rewritten only if changed).
"""

import hashlib
import json
import os
import sys


def main() -> None:
    template, model, out = sys.argv[1:]
    dossier = json.load(open(template, encoding="utf-8"))
    h = hashlib.sha256()
    with open(model, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    dossier["sha256"] = h.hexdigest()
    text = json.dumps(dossier, ensure_ascii=False, indent=2) + "\n"
    if os.path.exists(out) and open(out, encoding="utf-8").read() == text:
        return
    with open(out + ".part", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(out + ".part", out)


if __name__ == "__main__":
    main()
