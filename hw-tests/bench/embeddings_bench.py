"""Embeddings benchmark: POST /v1/embeddings end to end (JSON, metering, the queue, the worker's
IPC, llama.cpp) on French passages of about 100 words with the E5 model install-models.sh
installs, for a few `[embeddings] batch_size` values; prints passages/s, tokens/s and the
embedding worker's memory (resident now and at its peak, from /proc). Never asserts a speed.

    .cache/venv/bin/python hw-tests/bench/embeddings_bench.py [--passages 64] [--batch 512,2048]

The same passages in-process, without civiad (the embedder alone):
    cargo test --release -p civia-embed -- --ignored --nocapture throughput
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("CIVIA_MODEL_DIR", REPO / ".cache" / "models"))
E5 = "multilingual-e5-small.Q4_0"
KEY = "bench-key-0123456789"
WORDS = ("le conseil municipal de la commune a délibéré sur les tarifs du restaurant scolaire de la "
         "garderie périscolaire et de la location de la salle des fêtes pour l'année prochaine après "
         "avoir entendu le rapport du maire et l'avis de la commission des finances").split()


def passages(n: int, words: int) -> list[str]:
    return [f"passage: {i} " + " ".join(WORDS[(k * 7 + i) % len(WORDS)] for k in range(words))
            for i in range(n)]


def worker_memory(civiad_pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in MiB of civiad's `embed-worker` child."""
    for p in Path("/proc").iterdir():
        try:
            if not p.name.isdigit() or b"embed-worker" not in (p / "cmdline").read_bytes():
                continue
            st = dict(line.split(":", 1) for line in (p / "status").read_text().splitlines())
        except OSError:
            continue
        if int(st["PPid"]) == civiad_pid:
            return int(st["VmRSS"].split()[0]) // 1024, int(st["VmHWM"].split()[0]) // 1024
    raise SystemExit("no embedding worker found")


def run(batch: int, texts: list[str], runs: int, threads: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        port = 18000 + os.getpid() % 1000
        cfg = Path(d) / "civia.toml"
        cfg.write_text(f"""state_dir = "{d}/state"
[api]
listen = "127.0.0.1:{port}"
max_body_bytes = 16777216
[model]
path = "{MODELS / 'tiny-mistral.gguf'}"
[embeddings]
path = "{MODELS / (E5 + '.gguf')}"
batch_size = {batch}
threads = {threads}
""")
        env = {**os.environ, "CIVIA_DEV_API_KEY": KEY}
        proc = subprocess.Popen([str(REPO / "target" / "release" / "civiad"), "--config", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(url + "/health").json()["embeddings"]["loaded"]:
                        break
                except (httpx.TransportError, TypeError, KeyError):
                    pass
                time.sleep(0.1)
            idle = worker_memory(proc.pid)[0]
            h = {"authorization": f"Bearer {KEY}"}
            body = {"model": E5, "input": texts, "encoding_format": "float"}
            httpx.post(url + "/v1/embeddings", headers=h, json={**body, "input": texts[:2]}, timeout=600)
            best, tokens = None, 0
            for _ in range(runs):
                t0 = time.monotonic()
                r = httpx.post(url + "/v1/embeddings", headers=h, json=body, timeout=600)
                secs = time.monotonic() - t0
                r.raise_for_status()
                tokens = r.json()["usage"]["prompt_tokens"]
                best = secs if best is None else min(best, secs)
            rss, peak = worker_memory(proc.pid)
            print(f"batch_size {batch:5}: {len(texts)} passages ({tokens} tokens) in {best:.2f} s: "
                  f"{len(texts) / best:.1f} passages/s, {tokens / best:.0f} tokens/s; "
                  f"worker RSS {idle} MiB idle, {rss} MiB after, peak {peak} MiB", flush=True)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=64)
    ap.add_argument("--words", type=int, default=100)
    ap.add_argument("--batch", default="512,1024,2048", help="[embeddings] batch_size values")
    ap.add_argument("--runs", type=int, default=3, help="runs per setting (the best is kept)")
    ap.add_argument("--threads", type=int, default=0, help="[embeddings] threads (0: all cores)")
    a = ap.parse_args()
    if not (MODELS / f"{E5}.gguf").is_file():
        sys.exit(f"{MODELS / (E5 + '.gguf')} is missing: run appliance/scripts/install-models.sh")
    texts = passages(a.passages, a.words)
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)
    for batch in (int(b) for b in a.batch.split(",")):
        run(batch, texts, a.runs, a.threads)


if __name__ == "__main__":
    main()
