"""Transcription benchmark: Civia's API end to end (upload, decoding, windows, worker IPC,
whisper) against whisper.cpp called directly in one process on the same decoded recording
(appliance/civia-speech/examples/whisper_baseline.rs), same model and threads. Prints real-time
factors and their ratio; never asserts a speed.

    .cache/venv/bin/python hw-tests/bench/speech_bench.py [--minutes 2] [--threads N]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hw-tests" / "api"))
from speech_audio import FRENCH, silence, speak, wav_bytes  # noqa: E402

MODEL = REPO / ".cache" / "models" / "ggml-whisper-base.bin"
KEY = "bench-key-0123456789"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=2.0, help="length of the spoken recording")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="whisper threads (both sides)")
    ap.add_argument("--runs", type=int, default=2, help="runs of each side (the best is kept)")
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "civiad", "-p", "civia-speech",
                    "--example", "whisper_baseline"], cwd=REPO, check=True)
    parts, length = [], 0.0
    while length < a.minutes * 60:
        for s in FRENCH:
            parts += [speak(s), silence(0.6)]
            length += (len(parts[-2]) + len(parts[-1])) / 22050
    audio = np.concatenate(parts)
    work = Path(tempfile.mkdtemp(prefix="civia-speech-bench-"))
    wav = work / "meeting.wav"
    wav.write_bytes(wav_bytes(audio))
    duration = len(audio) / 22050

    base = []
    for _ in range(a.runs):
        out = subprocess.run([str(REPO / "target/release/examples/whisper_baseline"), str(MODEL), str(wav), "fr",
                              str(a.threads)], capture_output=True, text=True, check=True).stdout
        base.append(json.loads(out.strip().splitlines()[-1]))
    best_base = min(base, key=lambda b: b["decode_secs"] + b["whisper_secs"])
    base_secs = best_base["decode_secs"] + best_base["whisper_secs"]

    port = 18500 + os.getpid() % 1000
    cfg = work / "civia.toml"
    cfg.write_text(f'state_dir = "{work / "state"}"\n[api]\nlisten = "127.0.0.1:{port}"\n'
                   f'[model]\npath = "{REPO / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"}"\nthreads = 1\n'
                   f'[speech]\npath = "{MODEL}"\nthreads = {a.threads}\n')
    log = open(work / "civiad.log", "wb")
    proc = subprocess.Popen([str(REPO / "target/release/civiad"), "--config", str(cfg)], stdout=log,
                            stderr=subprocess.STDOUT, env={**os.environ, "CIVIA_DEV_API_KEY": KEY})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).json().get("speech", {}).get("loaded"):
                    break
            except (httpx.TransportError, ValueError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                sys.exit("civiad did not start: see " + str(work / "civiad.log"))
            time.sleep(0.2)
        civia = []
        data = wav.read_bytes()
        for _ in range(a.runs):
            t0 = time.monotonic()
            r = httpx.post(url + "/v1/audio/transcriptions", headers={"authorization": f"Bearer {KEY}"},
                           files={"file": ("meeting.wav", data)}, data={"model": "whisper-base", "language": "fr"},
                           timeout=3600)
            r.raise_for_status()
            civia.append((time.monotonic() - t0, len(r.json()["text"].split())))
        civia_secs, civia_words = min(civia)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"\nrecording: {duration:.0f} s of espeak-ng French, whisper base, {a.threads} thread(s), best of {a.runs}")
    print(f"{'':28}{'seconds':>9}{'real-time factor':>18}{'words':>7}")
    print(f"{'whisper.cpp direct':28}{base_secs:9.1f}{base_secs / duration:18.3f}{best_base['words']:7d}")
    print(f"{'Civia API (end to end)':28}{civia_secs:9.1f}{civia_secs / duration:18.3f}{civia_words:7d}")
    print(f"ratio Civia / whisper.cpp: {civia_secs / base_secs:.2f}  "
          f"(windows of {300} s cut at pauses vs one whisper_full call; upload and IPC included)")


if __name__ == "__main__":
    main()
