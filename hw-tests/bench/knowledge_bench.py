#!/usr/bin/env python3
"""Civia's knowledge search against a BM25 library, in one run, as numbers and ratios
(docs/benchmarks.md, "Knowledge search").

1. Quality on the French evaluation set (hw-tests/knowledge): civiad with the E5 embedding
   model indexes the 35 documents (OCR included), then recall@5 and MRR@10 at page level for
   hybrid, semantic and lexical search, next to the BM25 peer (rank-bm25) on the same files;
   ingest pages/s; query p50/p95 through the API; resident memory of civiad and its workers.
2. Scale: `civia-knowledge`'s `scale` example builds 10,000 and 100,000 chunks (random unit
   vectors: the embedding cost is measured in 1.) and times each method; bm25s indexes and
   queries the same texts with the same questions: the ratio of p50 latencies, the index size
   per 1,000 chunks, memory.

Usage: .cache/venv/bin/python hw-tests/bench/knowledge_bench.py [--sizes 10000,100000] [--skip-quality]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
KEY = "knowledge-bench-key-0123456789"
MODELS = REPO / ".cache" / "models"


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children, MiB."""
    total = 0
    pids = [pid]
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    pids += [int(p) for p in out]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def quality() -> dict:
    subprocess.run([PY, str(REPO / "hw-tests/knowledge/make_corpus.py")], check=True)
    work = Path(tempfile.mkdtemp(prefix="civia-knowledge-bench-"))
    port = 18600 + os.getpid() % 1000
    (work / "civia.toml").write_text(
        f'state_dir = "{work / "state"}"\n[api]\nlisten = "127.0.0.1:{port}"\n'
        f'[model]\npath = "{MODELS / "tiny-mistral.gguf"}"\n'
        f'[embeddings]\npath = "{MODELS / "multilingual-e5-small.Q4_0.gguf"}"\n')
    env = {**os.environ, "CIVIA_DEV_API_KEY": KEY}
    with open(work / "civiad.log", "wb") as log:
        proc = subprocess.Popen([str(REPO / "target/release/civiad"), "--config", str(work / "civia.toml")],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        details = work / "details.json"
        run = subprocess.run([PY, str(REPO / "hw-tests/knowledge/eval_civia.py"), "--base-url", url,
                              "--api-key", KEY, "--methods", "hybrid,semantic,lexical",
                              "--index-timeout", "3600", "--details", str(details)],
                             capture_output=True, text=True)
        sys.stderr.write(run.stderr)
        if run.returncode != 0:
            raise SystemExit(f"eval_civia.py failed ({run.returncode}):\n{run.stdout[-2000:]}")
        report = json.loads(run.stdout)
        report["civiad_rss_mib"] = round(rss_mib(proc.pid), 1)
        return report
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bm25s_latency(texts: Path, questions: Path) -> dict:
    import bm25s  # the peer, from PyPI

    corpus = texts.read_text().splitlines()
    queries = questions.read_text().splitlines()
    t0 = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="fr", show_progress=False), show_progress=False)
    build = time.perf_counter() - t0
    times = []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        retriever.retrieve(bm25s.tokenize([q], stopwords="fr", show_progress=False), k=5, show_progress=False)
        if i:
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"build_s": build, "p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}


def scale(sizes: list[int]) -> list[dict]:
    out = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as d:
            texts, questions = Path(d) / "texts.txt", Path(d) / "questions.txt"
            run = subprocess.run([str(REPO / "target/release/examples/scale"), str(n), "--texts", str(texts),
                                  "--questions", str(questions)], capture_output=True, text=True, check=True)
            civia = json.loads(run.stdout.strip().splitlines()[-1])
            peer = bm25s_latency(texts, questions)
        civia["bm25s"] = peer
        civia["lexical_p50_vs_bm25s"] = civia["lexical"]["p50_ms"] / peer["p50_ms"]
        civia["hybrid_p50_vs_bm25s"] = civia["hybrid"]["p50_ms"] / peer["p50_ms"]
        out.append(civia)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--skip-quality", action="store_true")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "civiad", "-p", "civia-knowledge",
                    "--example", "scale"], cwd=REPO, check=True)
    result = {"scale": scale([int(s) for s in a.sizes.split(",") if s])}
    if not a.skip_quality:
        result["quality"] = quality()
    for s in result["scale"]:
        print(f"{s['chunks']:>7} chunks: lexical p50 {s['lexical']['p50_ms']:.1f} ms p95 {s['lexical']['p95_ms']:.1f}"
              f" | semantic p50 {s['semantic']['p50_ms']:.1f} p95 {s['semantic']['p95_ms']:.1f}"
              f" | hybrid p50 {s['hybrid']['p50_ms']:.1f} p95 {s['hybrid']['p95_ms']:.1f}"
              f" | bm25s p50 {s['bm25s']['p50_ms']:.2f} ms (lexical/bm25s ×{s['lexical_p50_vs_bm25s']:.1f})"
              f" | {s['bytes_per_1000_chunks'] / 2**20:.2f} MiB per 1,000 chunks | RSS {s['rss_kib_after_search'] / 1024:.0f} MiB",
              file=sys.stderr)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
