"""Structured-output benchmark: tokens/s of the same chat request on SmolLM2 without a
`response_format`, with `json_object` and with a `json_schema`, alternated on one civiad
(end to end: JSON, metering, IPC, the grammar in the worker). Never asserts a speed.

    .cache/venv/bin/python hw-tests/bench/structured_bench.py [--rounds 3] [--tokens 128]
        [--temperature 0]

The rate counts the whole request (the prompt is short and, after the first round, cached).
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
SMOL = "SmolLM2-135M-Instruct.Q4_1"
KEY = "bench-key-0123456789"
MESSAGES = [{"role": "user", "content": "Write a long description of the city of Lyon, its history, "
                                        "its food and its people."}]
SCHEMA = {"type": "object",
          "properties": {"city": {"type": "string"}, "description": {"type": "string"}},
          "required": ["city", "description"], "additionalProperties": False}
FORMATS = {
    "free text": None,
    "json_object": {"type": "json_object"},
    "json_schema": {"type": "json_schema", "json_schema": {"name": "d", "strict": True, "schema": SCHEMA}},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128, help="max_tokens of each request")
    ap.add_argument("--temperature", type=float, default=0.0)
    a = ap.parse_args()
    model = MODELS / f"{SMOL}.gguf"
    if not model.is_file():
        sys.exit(f"{model} is missing: run appliance/scripts/install-models.sh")
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as d:
        port = 18000 + os.getpid() % 1000
        cfg = Path(d) / "civia.toml"
        cfg.write_text(f'state_dir = "{d}/state"\n[api]\nlisten = "127.0.0.1:{port}"\n'
                       f'[model]\npath = "{model}"\n')
        env = {**os.environ, "CIVIA_DEV_API_KEY": KEY}
        proc = subprocess.Popen([str(REPO / "target" / "release" / "civiad"), "--config", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(1200):
                try:
                    if httpx.get(url + "/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            totals = {name: [0, 0.0] for name in FORMATS}
            for _ in range(a.rounds):
                for name, rf in FORMATS.items():
                    body = {"model": SMOL, "messages": MESSAGES, "max_tokens": a.tokens,
                            "temperature": a.temperature, "seed": 1}
                    if rf:
                        body["response_format"] = rf
                    t0 = time.monotonic()
                    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=600,
                                   headers={"authorization": f"Bearer {KEY}"})
                    secs = time.monotonic() - t0
                    r.raise_for_status()
                    n = r.json()["usage"]["completion_tokens"]
                    totals[name][0] += n
                    totals[name][1] += secs
                    print(f"{name:12} {n:5} tokens in {secs:6.2f} s: {n / secs:6.1f} tokens/s", flush=True)
            for name, (n, secs) in totals.items():
                print(f"all rounds, {name:12}: {n / secs:6.1f} tokens/s ({n} tokens)")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
