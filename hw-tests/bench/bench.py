#!/usr/bin/env python3
"""Civia against llama.cpp's own tools, in one run, as ratios (docs/benchmarks.md).

Started by hw-tests/bench/run.sh, which builds the baseline first. Every server this script
starts is killed when it exits (normally, on an error, on Ctrl-C or SIGTERM).

Measures, on the same model, threads and context per sequence, greedy decoding:
  1. single-stream generation t/s: Civia's API (streaming) vs `llama-bench -p 0 -n 128` tg;
  2. aggregate t/s with 1, 4, 8, 16 concurrent streaming clients: civiad with n_parallel=N
     vs `llama-server -np N -c ctx*N` (both restarted per N);
  3. time to first token of 8 clients sharing a ~1,000-token system prompt;
  4. p50/p95 time to first token of short requests while one client sends an ~8k prompt;
  5. civiad supervisor RSS over its runtime worker's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime as dt
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / ".cache" / "bench"

# ----------------------------------------------------------------------------------------
# Processes: everything started here is killed on exit.

_PROCS: list[subprocess.Popen] = []


class BenchError(Exception):
    pass


def _kill_all() -> None:
    for p in reversed(_PROCS):
        _kill(p)
    _PROCS.clear()


def _kill(p: subprocess.Popen, grace: float = 5.0) -> None:
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)  # the process and its children (civiad's worker)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=5)
    # The worker dies with civiad (PR_SET_PDEATHSIG); make sure nothing of the group is left.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _on_signal(signum, _frame):
    raise SystemExit(f"interrupted by signal {signum}")


atexit.register(_kill_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Server:
    """One civiad or llama-server process on a loopback port."""

    def __init__(self, kind: str, argv: list[str], port: int, logfile: Path, ready_path: str):
        self.kind, self.argv, self.port, self.logfile = kind, argv, port, logfile
        self.base = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> "Server":
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.logfile, "wb")
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env["CIVIA_DEV_API_KEY"] = BENCH_KEY  # civiad's trial admin; llama-server ignores it
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env)
        out.close()
        _PROCS.append(self.proc)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.kind} exited with status {self.proc.returncode} while "
                                 f"starting:\n{self.log_tail()}")
            try:
                r = httpx.get(self.base + self.ready_path, timeout=2)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{self.kind} not ready after {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
            if self.proc in _PROCS:
                _PROCS.remove(self.proc)
            self.proc = None

    def log_tail(self, n: int = 25) -> str:
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:]) + f"\n(full log: {self.logfile})"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ----------------------------------------------------------------------------------------
# Streaming client.

async def stream_chat(client: httpx.AsyncClient, server: Server, model: str, messages: list,
                      max_tokens: int, extra: dict | None = None) -> dict:
    """One streaming chat completion; times are perf_counter() seconds."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    if extra:
        body.update(extra)
    t0 = time.perf_counter()
    t_first = t_last = None
    n_deltas, usage, timings, finish, text = 0, None, None, None, []
    async with client.stream("POST", server.base + "/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise BenchError(f"{server.kind}: HTTP {r.status_code}: {(await r.aread())[:500]!r}")
        async for line in r.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            ev = json.loads(data)
            if "error" in ev:
                raise BenchError(f"{server.kind}: stream error {ev['error']}")
            for ch in ev.get("choices") or []:
                c = (ch.get("delta") or {}).get("content")
                if c:
                    now = time.perf_counter()
                    if t_first is None:
                        t_first = now
                    t_last = now
                    n_deltas += 1
                    text.append(c)
                if ch.get("finish_reason"):
                    finish = ch["finish_reason"]
            if ev.get("usage"):
                usage = ev["usage"]
            if ev.get("timings"):
                timings = ev["timings"]
    t_end = time.perf_counter()
    if usage and usage.get("completion_tokens") is not None:
        tokens = usage["completion_tokens"]
    elif timings and timings.get("predicted_n") is not None:
        tokens = timings["predicted_n"]
    else:
        tokens = n_deltas
    cached = None
    if usage and isinstance(usage.get("prompt_tokens_details"), dict):
        cached = usage["prompt_tokens_details"].get("cached_tokens")
    if cached is None and timings and timings.get("cache_n") is not None:
        cached = timings["cache_n"]
    if t_first is None:
        t_first = t_last = t_end
    return {"t0": t0, "t_first": t_first, "t_last": t_last, "t_end": t_end,
            "ttft": t_first - t0, "tokens": tokens, "deltas": n_deltas,
            "prompt_tokens": (usage or {}).get("prompt_tokens"), "cached_tokens": cached,
            "finish_reason": finish, "text": "".join(text)}


# The key every client sends: civiad's trial admin (unlimited quotas); llama-server ignores it.
BENCH_KEY = "civia-bench-key"


def new_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0),
                             headers={"authorization": f"Bearer {BENCH_KEY}"},
                             limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))


def run(coro):
    return asyncio.run(coro)


# ----------------------------------------------------------------------------------------
# Prompts (the same for both servers).

SYSTEM = "You are a helpful assistant."
TOPICS = ["the history of the French Republic", "how a town council votes its budget",
          "the water cycle", "the life of bees", "the construction of a cathedral",
          "the invention of the printing press", "how trains work", "the Loire valley",
          "a day in the life of a mayor", "the benefits of public libraries",
          "how bread is made", "the solar system", "the art of cheese making",
          "why recycling matters", "the Tour de France", "the history of the bicycle"]


ASKS = ["Write a long, detailed essay about", "Write a thorough article on",
        "Compose a detailed report about", "Tell me everything you know about",
        "Give a long and complete explanation of", "Write a comprehensive guide to"]


def essay(i: int, rep: int = 0) -> list:
    """Client i's request in repetition rep: each repetition asks differently, so that no
    server answers a repetition from the previous one's cached prompts."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{ASKS[rep % len(ASKS)]} {TOPICS[i % 16]}."}]


QUESTIONS = ["When is the town hall open on Saturdays?", "How do I register a birth?",
             "Where can I get a parking permit?", "How do I book the village hall?",
             "Who collects bulky waste, and when?", "How do I apply for a school canteen place?",
             "Can I get a copy of my marriage certificate?", "How do I report a broken street light?",
             "What documents do I need for an identity card?"]

RULES = ["Answer politely and in plain language, as a clerk of the town hall would.",
         "Never invent opening hours, fees or deadlines that are not written in this document.",
         "The town hall is open Monday to Friday from 8:30 to 12:00 and 13:30 to 17:30.",
         "On Saturdays the town hall is open from 9:00 to 12:00, except in August.",
         "Birth registrations must be made within five days at the civil registry desk.",
         "Parking permits for residents are issued by the police municipale on the ground floor.",
         "The village hall can be booked by residents and associations, with a deposit.",
         "Bulky waste is collected on the first Tuesday of each month on appointment.",
         "School canteen registrations open in June for the following school year.",
         "Copies of civil status certificates are free and can be requested online.",
         "Broken street lights are reported to the technical services by phone or online.",
         "Identity cards and passports are made by appointment in the equipped towns nearby.",
         "Personal data given by citizens stays in the town hall and is never shared.",
         "When a question is outside the town hall's remit, say which service is competent.",
         "Keep answers short: three sentences at most unless the citizen asks for details."]


def shared_system(variant: int, paragraphs: int) -> str:
    """A town hall's instructions; `variant` changes its first words (no reuse across reps)."""
    towns = ["Saint-Aubin", "Montreuil-sur-Loire", "Villeneuve", "Beaulieu", "Champagnac",
             "Roquefort", "Lavaur", "Mirepoix"]
    head = f"You are the assistant of the town hall of {towns[variant % len(towns)]}. "
    body = []
    for p in range(paragraphs):
        rules = " ".join(RULES[(p + k) % len(RULES)] for k in range(5))
        body.append(f"Section {p + 1}. {rules}")
    return head + "\n\n".join(body)


def long_document(paragraphs: int) -> str:
    body = []
    for p in range(paragraphs):
        rules = " ".join(RULES[(p * 3 + k) % len(RULES)] for k in range(6))
        body.append(f"Article {p + 1} of the municipal regulations. {rules}")
    return "Summarize the following municipal regulations in two sentences.\n\n" + "\n\n".join(body)


# ----------------------------------------------------------------------------------------
# Servers.

class Setup:
    def __init__(self, a):
        self.a = a
        self.model = Path(a.model).resolve()
        self.model_id = self.model.name.removesuffix(".gguf")
        self.run_dir = BENCH_DIR / f"run-{a.stamp}"

    def civiad(self, n_parallel: int, ctx: int) -> Server:
        port = free_port()
        d = self.run_dir / f"civiad-np{n_parallel}-ctx{ctx}"
        d.mkdir(parents=True, exist_ok=True)
        cfg = d / "civia.toml"
        cfg.write_text(f"""# written by hw-tests/bench/bench.py
state_dir = "{d / 'state'}"
[api]
listen = "127.0.0.1:{port}"
max_tokens = 4096
[model]
path = "{self.model}"
context_length = {ctx}
batch_size = {self.a.batch_size}
threads = {self.a.threads}
gpu_layers = {self.a.gpu_layers}
n_parallel = {n_parallel}
prefix_reuse = true
[runtime]
queue_depth = 64
[log]
level = "warn"
""")
        return Server("civiad", [str(self.a.civiad_copy), "--config", str(cfg)], port,
                      d / "civiad.log", "/ready")

    def llama_server(self, n_parallel: int, ctx: int) -> Server:
        port = free_port()
        d = self.run_dir / f"llama-server-np{n_parallel}-ctx{ctx}"
        argv = [self.a.llama_server, "-m", str(self.model), "--host", "127.0.0.1",
                "--port", str(port), "-t", str(self.a.threads), "-tb", str(self.a.threads),
                "-np", str(n_parallel), "-c", str(ctx * n_parallel),
                "-ngl", str(self.a.gpu_layers), "--no-webui"]
        return Server("llama-server", argv, port, d / "llama-server.log", "/health")


def tokenize(server: Server, text: str) -> int:
    r = httpx.post(server.base + "/tokenize", json={"content": text}, timeout=60)
    r.raise_for_status()
    return len(r.json()["tokens"])


def warm(server: Server, model: str) -> None:
    async def go():
        async with new_client() as c:
            await stream_chat(c, server, model, essay(0), 8)
    run(go())


def proc_rss(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_snapshot(server: Server | None) -> dict:
    """CPU seconds so far: this client, its reaped children (llama-bench), the server
    (civiad: supervisor and worker apart), and the whole machine's busy and steal time."""
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    snap = {"client": time.process_time(), "children": ch.ru_utime + ch.ru_stime}
    if server is not None:
        snap["server"] = cpu_s(server.proc.pid)
        if server.kind == "civiad":
            kids = children(server.proc.pid)
            snap["worker"] = cpu_s(kids[0]) if kids else 0.0
    t = cpu_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    snap["machine_busy"], snap["machine_steal"] = t["busy"] / hz, t["steal"] / hz
    snap["wall"] = time.perf_counter()
    return snap


def measured(server: Server | None, fn, *args) -> dict:
    """fn(*args), with the CPU seconds each process spent on it and the share of the
    machine's CPUs that something else took meanwhile (`foreign`: other sessions' work,
    or a hypervisor's steal). A repetition with foreign > DISTURBED is marked disturbed."""
    before = cpu_snapshot(server)
    res = fn(*args)
    after = cpu_snapshot(server)
    d = {k: after[k] - before[k] for k in before}
    ours = sum(v for k, v in d.items() if not k.startswith("machine") and k != "wall")
    foreign = max(0.0, d["machine_busy"] - ours) + d["machine_steal"]
    res["cpu_s"] = {k: round(v, 3) for k, v in d.items() if k != "wall"}
    res["foreign_cpu_share"] = round(foreign / (d["wall"] * (os.cpu_count() or 1)), 3)
    res["disturbed"] = res["foreign_cpu_share"] > DISTURBED
    return res


DISTURBED = 0.10


def pair(a, civia_fn, base_fn, label: str) -> tuple[dict, dict]:
    """One repetition: Civia then the baseline; again (up to --retries times) when another
    workload took more than DISTURBED of the CPUs during either."""
    for attempt in range(a.retries + 1):
        c, b = civia_fn(), base_fn()
        c["attempt"] = b["attempt"] = attempt
        if not (c["disturbed"] or b["disturbed"]):
            break
        log(f"{label}: disturbed (other work took {100 * c['foreign_cpu_share']:.0f}% / "
            f"{100 * b['foreign_cpu_share']:.0f}% of the CPUs)"
            + (", again" if attempt < a.retries else ", kept"))
    return c, b


def civiad_rss(server: Server) -> dict:
    sup = server.proc.pid
    kids = children(sup)
    if not kids:
        raise BenchError("civiad has no runtime worker child")
    worker = kids[0]
    cmd = Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")
    return {"supervisor_pid": sup, "worker_pid": worker,
            "worker_cmdline": [x.decode() for x in cmd if x],
            "supervisor": proc_rss(sup), "worker": proc_rss(worker)}


# ----------------------------------------------------------------------------------------
# 1 and 2: generation speed.

def llama_bench(s: Setup) -> dict:
    """One `llama-bench -p 0 -n 128 -r 1` (its own warm-up run first): tg t/s."""
    a = s.a
    argv = [a.llama_bench, "-m", str(s.model), "-t", str(a.threads), "-p", "0", "-n",
            str(a.gen_tokens), "-r", "1", "-ngl", str(a.gpu_layers), "-o", "json"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True)
    _PROCS.append(p)
    try:
        out, err = p.communicate(timeout=600)
    finally:
        _kill(p)
        _PROCS.remove(p)
    if p.returncode != 0:
        raise BenchError(f"llama-bench failed ({p.returncode}):\n{err.decode()[-2000:]}")
    tg = [r for r in json.loads(out) if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0][0]
    keep = ("avg_ts", "build_commit", "build_number", "cpu_info", "backends", "n_threads",
            "flash_attn", "n_batch", "n_ubatch", "type_k", "n_gen")
    return {"argv": argv, **{k: tg.get(k) for k in keep}}


def single_stream(s: Setup, server: Server, rep: int) -> dict:
    """Decode rate of one streaming client: (tokens - 1) / (last token - first token)."""
    async def go():
        async with new_client() as c:
            return await stream_chat(c, server, s.model_id, essay(rep + 1, rep), s.a.gen_tokens)
    res = run(go())
    if res["tokens"] < 2 or res["t_last"] <= res["t_first"]:
        raise BenchError(f"single stream produced {res['tokens']} tokens")
    rate = (res["tokens"] - 1) / (res["t_last"] - res["t_first"])
    return {"ts": rate, **{k: res[k] for k in ("ttft", "tokens", "deltas", "finish_reason")}}


def aggregate(s: Setup, server: Server, n: int, rep: int) -> dict:
    """n concurrent streaming clients, one request each: total tokens / wall time."""
    async def go():
        async with new_client() as c:
            t0 = time.perf_counter()
            res = await asyncio.gather(*[stream_chat(c, server, s.model_id, essay(i, rep),
                                                     s.a.gen_tokens) for i in range(n)])
            return time.perf_counter() - t0, res
    wall, res = run(go())
    toks = sum(r["tokens"] for r in res)
    return {"wall_s": wall, "tokens": toks, "ts": toks / wall,
            "ttft_max": max(r["ttft"] for r in res),
            "finish": sorted({r["finish_reason"] or "?" for r in res}),
            "per_client_tokens": [r["tokens"] for r in res]}


def paired_ratio(civia: dict, base: dict) -> dict:
    """The median of the per-repetition ratios Civia / baseline: the two ran one after the
    other in each repetition, so a slow spell of the machine mostly cancels out."""
    rs = [c[civia["key"]] / b[base["key"]] for c, b in zip(civia["samples"], base["samples"])]
    return {"ratio": statistics.median(rs), "ratio_samples": rs}


def summary(samples: list, key: str) -> dict:
    xs = [x[key] for x in samples]
    med = statistics.median(xs)
    return {"median": med, "min": min(xs), "max": max(xs), "key": key,
            "disturbed": sum(1 for x in samples if x.get("disturbed")),
            "spread_pct": 100 * (max(xs) - min(xs)) / med if med else None, "samples": samples}


# ----------------------------------------------------------------------------------------
# 3: shared system prompt.

def shared_prefix(s: Setup, server: Server, sys_paragraphs: int, rep: int) -> dict:
    """One client sends system+question 0 and reads its answer; then 8 clients send the same
    system prompt with their own question at once. TTFT of each of the 8."""
    system = shared_system(rep, sys_paragraphs)

    def msgs(q):
        return [{"role": "system", "content": system}, {"role": "user", "content": QUESTIONS[q]}]

    async def go():
        async with new_client() as c:
            first = await stream_chat(c, server, s.model_id, msgs(0), 16)
            res = await asyncio.gather(*[stream_chat(c, server, s.model_id, msgs(q), 16)
                                         for q in range(1, 9)])
        ttft = [r["ttft"] for r in res]
        return {"first_ttft": first["ttft"], "prompt_tokens": first["prompt_tokens"],
                "ttft": ttft, "mean_ttft": statistics.mean(ttft),
                "median_ttft": statistics.median(ttft), "max_ttft": max(ttft),
                "cached_tokens": [r["cached_tokens"] for r in res]}
    return run(go())


# ----------------------------------------------------------------------------------------
# 4: short requests while a long prompt is fed.

def long_prompt(s: Setup, server: Server, doc: str) -> dict:
    """`short_clients` closed-loop clients send short questions (a think time between them):
    first alone (unloaded), then while one more client sends the long prompt. The TTFTs
    that count are those of the short requests waiting for their first token at some moment
    between the long request's sending and its first token (while its prompt is fed)."""
    a = s.a
    done_flag = [False]  # set when the long request has finished

    async def short_loop(c, k, until, out):
        i = 0
        while time.perf_counter() < until and not done_flag[0]:
            q = QUESTIONS[(k + i) % len(QUESTIONS)]
            m = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]
            r = await stream_chat(c, server, s.model_id, m, a.short_tokens)
            out.append(r)
            i += 1
            await asyncio.sleep(a.think_s)

    async def go():
        async with new_client() as c:
            # Unloaded: the short clients alone.
            base: list = []
            t_end = time.perf_counter() + a.unloaded_s
            await asyncio.gather(*[short_loop(c, k, t_end, base)
                                   for k in range(a.short_clients)])
            # Loaded: the same clients, plus the long prompt.
            during: list = []
            long_res: dict = {}

            async def long_client():
                await asyncio.sleep(1.0)  # the short clients are running
                m = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": doc}]
                try:
                    long_res.update(await stream_chat(c, server, s.model_id, m, 16))
                finally:
                    done_flag[0] = True

            t_far = time.perf_counter() + 3600
            await asyncio.gather(long_client(), *[short_loop(c, k, t_far, during)
                                                  for k in range(a.short_clients)])
        lt0, lt1 = long_res["t0"], long_res["t_first"]
        overlap = [r for r in during if r["t0"] < lt1 and r["t0"] + r["ttft"] > lt0]
        fed = [r["ttft"] for r in overlap]
        base_t = [r["ttft"] for r in base]
        if not fed:
            raise BenchError("no short request overlapped the long prompt")
        p50 = statistics.median(fed)
        return {"long_prompt_tokens": long_res["prompt_tokens"],
                "long_ttft": long_res["ttft"], "long_tokens": long_res["tokens"],
                "unloaded_p50": statistics.median(base_t), "unloaded_n": len(base_t),
                "p50": p50, "p95": quantile(fed, 0.95), "max": max(fed), "n": len(fed),
                "max_over_p50": max(fed) / p50,
                "max_over_unloaded_p50": max(fed) / statistics.median(base_t),
                "ttfts": fed, "sent_after_long_s": [r["t0"] - lt0 for r in overlap]}
    return run(go())


def quantile(xs: list, q: float) -> float:
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# ----------------------------------------------------------------------------------------
# Machine and versions.

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cpu_ticks() -> dict:
    """/proc/stat's aggregate CPU line: busy, idle and steal ticks (steal: a hypervisor ran
    someone else on our cores)."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return {"busy": user + nice + system + irq + softirq, "idle": idle + iowait, "steal": steal}


def machine() -> dict:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = int(line.split()[1]) * 1024
    osname = "?"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    flags = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            f = set(line.split(":", 1)[1].split())
            flags = " ".join(x for x in ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni",
                                         "avx_vnni", "amx_tile") if x in f)
            break
    return {"cpu": cpu, "cores": os.cpu_count(), "cpu_flags": flags,
            "mem_gib": round(mem / 2**30, 1), "kernel": platform.release(), "os": osname,
            "python": platform.python_version()}


def git_info() -> dict:
    def g(*args):
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                                  text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    return {"commit": g("rev-parse", "HEAD"),
            "dirty": bool(g("status", "--porcelain", "--untracked-files=no"))}


def vendored_comparison(llama_src: Path) -> dict:
    """Compares the baseline's llama.cpp tree with the one llama-cpp-sys-2 vendors."""
    lock = (REPO / "Cargo.lock").read_text()
    m = re.search(r'name = "llama-cpp-sys-2"\nversion = "([^"]+)"', lock)
    if not m:
        return {"error": "llama-cpp-sys-2 not in Cargo.lock"}
    ver = m.group(1)
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    cands = sorted(cargo_home.glob(f"registry/src/*/llama-cpp-sys-2-{ver}/llama.cpp"))
    if not cands:
        return {"crate": f"llama-cpp-sys-2 {ver}", "error": "crate source not in CARGO_HOME"}
    crate = cands[0]
    same, differ, only_one = 0, [], []
    for sub in ("include", "src", "common", "ggml/include", "ggml/src"):
        for f in sorted((llama_src / sub).rglob("*")):
            if not f.is_file():
                continue
            rel = f.relative_to(llama_src)
            other = crate / rel
            if not other.is_file():
                only_one.append(str(rel))
            elif f.read_bytes() == other.read_bytes():
                same += 1
            else:
                differ.append(str(rel))
    return {"crate": f"llama-cpp-sys-2 {ver}", "crate_tree": str(crate),
            "compared": "include src common ggml/include ggml/src",
            "identical_files": same, "differing_files": differ,
            "only_in_baseline": only_one[:50], "only_in_baseline_count": len(only_one),
            "llama_h_identical": (llama_src / "include/llama.h").read_bytes()
            == (crate / "include/llama.h").read_bytes()}


# ----------------------------------------------------------------------------------------
# The table.

def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def build_table(R: dict) -> str:
    rows = []  # measure, Civia, baseline, ratio, target, verdict

    def met(ok):
        return "met" if ok else "MISSED"

    def spread(x):
        return f" ±{x['spread_pct'] / 2:.0f}%" if x.get("spread_pct") is not None else ""

    ss = R.get("single_stream")
    if ss:
        c, b = ss["civia"], ss["llama_bench"]
        ratio = ss["ratio"]
        rows.append(("1. single-stream generation t/s (llama-bench tg)",
                     f"{c['median']:.1f}{spread(c)}", f"{b['median']:.1f}{spread(b)}",
                     fmt_ratio(ratio), ">= 0.95x", met(ratio >= 0.95)))
        b = ss.get("llama_server")
        if b:
            rows.append(("1. same, measured alike on llama-server's API (reference)",
                         f"{c['median']:.1f}{spread(c)}", f"{b['median']:.1f}{spread(b)}",
                         fmt_ratio(ss["vs_llama_server"]["ratio"]), "", ""))
    for n, ag in sorted((R.get("aggregate") or {}).items(), key=lambda kv: int(kv[0])):
        c, b = ag["civia"], ag["llama_server"]
        ratio = ag["ratio"]
        rows.append((f"2. aggregate t/s, {n} streaming clients (llama-server -np {n})",
                     f"{c['median']:.1f}{spread(c)}", f"{b['median']:.1f}{spread(b)}",
                     fmt_ratio(ratio), ">= 1.15x" if n == "8" else "",
                     met(ratio >= 1.15) if n == "8" else ""))
    sp = R.get("shared_prefix")
    if sp:
        c, b = sp["civia"], sp["llama_server"]
        ratio = sp["ratio"]
        rows.append((f"3. TTFT ms, 8 clients sharing a {sp['system_tokens']}-token system prompt",
                     f"{c['median'] * 1000:.0f}{spread(c)}", f"{b['median'] * 1000:.0f}{spread(b)}",
                     fmt_ratio(ratio), "<= 0.80x", met(ratio <= 0.8)))
    lp = R.get("long_prompt")
    if lp:
        c, b = lp["civia"], lp["llama_server"]
        rows.append(("4. short-request TTFT p50 ms, no long prompt (unloaded)",
                     f"{c['unloaded_p50'] * 1000:.0f}", f"{b['unloaded_p50'] * 1000:.0f}",
                     fmt_ratio(c["unloaded_p50"] / b["unloaded_p50"]), "", ""))
        rows.append((f"4. short-request TTFT p50 ms while a {c['long_prompt_tokens']}-token "
                     "prompt is fed", f"{c['p50'] * 1000:.0f}", f"{b['p50'] * 1000:.0f}",
                     fmt_ratio(c["p50"] / b["p50"]), "", ""))
        rows.append(("4. same, p95 ms", f"{c['p95'] * 1000:.0f}", f"{b['p95'] * 1000:.0f}",
                     fmt_ratio(c["p95"] / b["p95"]), "", ""))
        rows.append(("4. same, worst TTFT / unloaded median TTFT",
                     f"{c['max_over_unloaded_p50']:.1f}", f"{b['max_over_unloaded_p50']:.1f}",
                     "", "Civia <= 2", met(c["max_over_unloaded_p50"] <= 2.0)))
        rows.append(("4. same, worst TTFT / median TTFT while fed", f"{c['max_over_p50']:.2f}",
                     f"{b['max_over_p50']:.2f}", "", "", ""))
        rows.append(("4. the long prompt's own TTFT, s", f"{c['long_ttft']:.1f}",
                     f"{b['long_ttft']:.1f}", fmt_ratio(c["long_ttft"] / b["long_ttft"]), "", ""))
    rss = R.get("rss")
    if rss:
        sup, wrk = rss["supervisor"]["VmRSS"], rss["worker"]["VmRSS"]
        rows.append((f"5. supervisor RSS / worker RSS, MiB (n_parallel={rss['n_parallel']})",
                     f"{sup / 2**20:.1f}", f"{wrk / 2**20:.1f}", f"{sup / wrk:.3f}", "", ""))
        if rss.get("llama_server"):
            ls = rss["llama_server"]["VmRSS"]
            rows.append(("5. civiad total RSS / llama-server RSS, MiB (same -np, -c)",
                         f"{(sup + wrk) / 2**20:.1f}", f"{ls / 2**20:.1f}",
                         fmt_ratio((sup + wrk) / ls), "", ""))
    notes = []

    def disturbed(label, *summaries):
        n = sum(x.get("disturbed", 0) for x in summaries)
        if n:
            notes.append(f"{label}: {n}")
    if ss:
        disturbed("test 1", ss["civia"], ss["llama_bench"])
    for n, ag in (R.get("aggregate") or {}).items():
        disturbed(f"test 2 with {n} clients", ag["civia"], ag["llama_server"])
    if sp:
        disturbed("test 3", sp["civia"], sp["llama_server"])
    if lp:
        disturbed("test 4", *[{"disturbed": int(bool(x.get("disturbed")))}
                              for x in (lp["civia"], lp["llama_server"])])
    head = ("measure (baseline)", "Civia", "baseline", "ratio", "target", "")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(6)]

    def line(r):
        return "  ".join(str(x).ljust(widths[i]) if i == 0 else str(x).rjust(widths[i])
                         for i, x in enumerate(r)).rstrip()
    out = [line(head), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]
    if notes:
        out.append(f"samples taken while other work used more than {DISTURBED:.0%} of the CPUs: "
                   + "; ".join(notes))
    return "\n".join(out)


# ----------------------------------------------------------------------------------------

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--civiad", required=True)
    p.add_argument("--llama-bench", required=True)
    p.add_argument("--llama-server", required=True)
    p.add_argument("--llama-src", help="the baseline's llama.cpp tree (compared with the crate's)")
    p.add_argument("--backend", default="cpu")
    p.add_argument("--model", default=str(REPO / ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--ctx", type=int, default=2048,
                   help="context per sequence for tests 1-3 (test 4 uses --long-ctx)")
    p.add_argument("--long-ctx", type=int, default=8192, help="context per sequence, test 4")
    p.add_argument("--long-tokens", type=int, default=7800,
                   help="approximate length of test 4's long prompt in tokens")
    p.add_argument("--batch-size", type=int, default=512, help="civiad [model] batch_size")
    p.add_argument("--gpu-layers", type=int, default=None,
                   help="-ngl / gpu_layers for both (default: 0 with --backend cpu, else 999)")
    p.add_argument("--clients", default="1,4,8,16", help="client counts for test 2")
    p.add_argument("--gen-tokens", type=int, default=128, help="max_tokens, tests 1-2")
    p.add_argument("--reps", type=int, default=5, help="repetitions of tests 1 and 2")
    p.add_argument("--prefix-reps", type=int, default=3, help="repetitions of test 3")
    p.add_argument("--retries", type=int, default=2,
                   help="tests 1-2: repeat a repetition disturbed by other work, at most this often")
    p.add_argument("--short-clients", type=int, default=4, help="test 4 short clients")
    p.add_argument("--short-tokens", type=int, default=8, help="test 4 short max_tokens")
    p.add_argument("--think-s", type=float, default=0.2, help="test 4 pause between requests")
    p.add_argument("--unloaded-s", type=float, default=8.0, help="test 4 unloaded phase")
    p.add_argument("--only", default="1,2,3,4", help="tests to run (5 comes with 2)")
    a = p.parse_args()
    a.stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    if a.gpu_layers is None:
        a.gpu_layers = 0 if a.backend == "cpu" else 999
    only = {int(x) for x in a.only.split(",") if x}
    clients = [int(x) for x in a.clients.split(",") if x]
    t_start = time.monotonic()

    for path in (a.civiad, a.llama_bench, a.llama_server, a.model):
        if not Path(path).exists():
            raise BenchError(f"missing: {path}")
    s = Setup(a)
    s.run_dir.mkdir(parents=True, exist_ok=True)
    # A private copy: a rebuild of target/release/civiad during the run changes nothing.
    a.civiad_copy = s.run_dir / "civiad"
    shutil.copy2(a.civiad, a.civiad_copy)

    R: dict = {"started": dt.datetime.now().isoformat(timespec="seconds"),
               "machine": machine(), "backend": a.backend,
               "model": {"path": str(s.model), "sha256": sha256(s.model),
                         "bytes": s.model.stat().st_size},
               "civiad": {"binary_sha256": sha256(a.civiad_copy), "repo": git_info()},
               "settings": {k: v for k, v in vars(a).items() if k not in ("civiad_copy",)}}
    R["settings"]["civiad_copy"] = str(a.civiad_copy)
    if a.llama_src:
        src = Path(a.llama_src)
        R["baseline"] = {"source": str(src.parent.name),
                         "vendored_comparison": vendored_comparison(src)}
    log(f"machine: {R['machine']['cpu']}, {R['machine']['cores']} cores, "
        f"{R['machine']['mem_gib']} GiB; model {s.model.name}; threads {a.threads}")

    ticks0 = cpu_ticks()
    busy = os.getloadavg()[0]
    R["loadavg_start"] = os.getloadavg()
    if busy > 0.5 * (os.cpu_count() or 1):
        log(f"warning: load average {busy:.1f} before starting: another workload shares the "
            "CPUs, expect noisy numbers (the ratios are interleaved to limit the damage)")

    # 1 + 2 (+ 5): generation speed. For each N, civiad (n_parallel = N) and llama-server
    # (-np N) run side by side and the repetitions alternate, so a change in the machine's
    # load hits both; only one of them works at any time.
    if 1 in only or 2 in only:
        R["aggregate"] = {}
        counts = set(clients if 2 in only else []) | ({1} if 1 in only else set())
        for n in sorted(counts):
            civ, ls = s.civiad(n, a.ctx), s.llama_server(n, a.ctx)
            try:
                civ.start(), ls.start()
                warm(civ, s.model_id), warm(ls, s.model_id)
                if n == 1 and 1 in only:
                    lb, cs, lss = [], [], []
                    for r in range(a.reps):
                        c, b = pair(a, lambda: measured(civ, single_stream, s, civ, r),
                                    lambda: measured(None, llama_bench, s),
                                    f"single stream, repetition {r + 1}")
                        cs.append(c), lb.append(b)
                        lss.append(measured(ls, single_stream, s, ls, r))
                    ss = {"llama_bench": summary(lb, "avg_ts"), "civia": summary(cs, "ts"),
                          "llama_server": summary(lss, "ts")}
                    ss.update(paired_ratio(ss["civia"], ss["llama_bench"]))
                    ss["vs_llama_server"] = paired_ratio(ss["civia"], ss["llama_server"])
                    R["single_stream"] = ss
                    log(f"single stream: civia {R['single_stream']['civia']['median']:.1f} t/s, "
                        f"llama-bench tg{a.gen_tokens} "
                        f"{R['single_stream']['llama_bench']['median']:.1f} t/s")
                if 2 in only and n in clients:
                    cv, lv = [], []
                    for r in range(a.reps):
                        c, b = pair(a, lambda: measured(civ, aggregate, s, civ, n, r),
                                    lambda: measured(ls, aggregate, s, ls, n, r),
                                    f"{n} clients, repetition {r + 1}")
                        cv.append(c), lv.append(b)
                    ag = {"civia": summary(cv, "ts"), "llama_server": summary(lv, "ts")}
                    ag.update(paired_ratio(ag["civia"], ag["llama_server"]))
                    rss = civiad_rss(civ)
                    rss["n_parallel"], rss["ctx"] = n, a.ctx
                    rss["llama_server"] = proc_rss(ls.proc.pid)
                    ag["rss"] = rss
                    R["aggregate"][str(n)] = ag
                    log(f"{n} clients: civia {ag['civia']['median']:.1f} t/s, llama-server "
                        f"{ag['llama_server']['median']:.1f} t/s")
            finally:
                civ.stop(), ls.stop()
        if R["aggregate"]:
            n_rss = "8" if "8" in R["aggregate"] else max(R["aggregate"], key=int)
            R["rss"] = R["aggregate"][n_rss]["rss"]
        else:
            del R["aggregate"]

    # 3: shared system prompt, 8 slots each, alternating; a fresh prefix every repetition.
    if 3 in only:
        civ, ls = s.civiad(8, a.ctx), s.llama_server(8, a.ctx)
        try:
            civ.start(), ls.start()
            paras = 1  # ~1,000 tokens with this model's tokenizer
            while tokenize(ls, shared_system(0, paras + 1)) <= 1000:
                paras += 1
            sys_tokens = tokenize(ls, shared_system(0, paras))
            warm(civ, s.model_id), warm(ls, s.model_id)
            cv, lv = [], []
            for r in range(a.prefix_reps):
                cv.append(measured(civ, shared_prefix, s, civ, paras, r))
                lv.append(measured(ls, shared_prefix, s, ls, paras, r))
        finally:
            civ.stop(), ls.stop()
        sp = {"system_tokens": sys_tokens, "civia": summary(cv, "mean_ttft"),
              "llama_server": summary(lv, "mean_ttft")}
        sp.update(paired_ratio(sp["civia"], sp["llama_server"]))
        R["shared_prefix"] = sp
        log(f"shared prefix ({sys_tokens} tokens): mean TTFT civia "
            f"{R['shared_prefix']['civia']['median'] * 1000:.0f} ms, llama-server "
            f"{R['shared_prefix']['llama_server']['median'] * 1000:.0f} ms")

    # 4: short requests during a long prompt, 8 slots of --long-ctx tokens each.
    if 4 in only:
        lp = {}
        civ, ls = s.civiad(8, a.long_ctx), s.llama_server(8, a.long_ctx)
        try:
            civ.start(), ls.start()
            paras = 10
            n_tok = tokenize(ls, long_document(paras))
            paras = max(1, int(paras * a.long_tokens / n_tok))
            while paras > 1 and tokenize(ls, long_document(paras)) > a.long_tokens:
                paras -= 1
            doc = long_document(paras)
            warm(civ, s.model_id), warm(ls, s.model_id)
            lp["llama_server"] = measured(ls, long_prompt, s, ls, doc)
            log(f"long prompt, llama-server: p50 {lp['llama_server']['p50'] * 1000:.0f} ms, "
                f"p95 {lp['llama_server']['p95'] * 1000:.0f} ms")
            lp["civia"] = measured(civ, long_prompt, s, civ, doc)
            log(f"long prompt, civia: p50 {lp['civia']['p50'] * 1000:.0f} ms, "
                f"p95 {lp['civia']['p95'] * 1000:.0f} ms")
        finally:
            civ.stop(), ls.stop()
        R["long_prompt"] = lp

    R["loadavg_end"] = os.getloadavg()
    t1 = cpu_ticks()
    total = sum(t1[k] - ticks0[k] for k in t1) or 1
    R["cpu_steal_pct"] = round(100 * (t1["steal"] - ticks0["steal"]) / total, 1)
    R["elapsed_s"] = round(time.monotonic() - t_start, 1)
    table = build_table(R)
    R["table"] = table
    out = BENCH_DIR / f"results-{a.stamp}.json"
    out.write_text(json.dumps(R, indent=2, default=str))
    m = R["machine"]
    print(f"\nCivia vs llama.cpp ({R.get('baseline', {}).get('source', '?')}), {s.model.name}, "
          f"{a.threads} threads, backend {a.backend}")
    print(f"{m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, Linux {m['kernel']}\n")
    print(table)
    print(f"\nload average {R['loadavg_start'][0]:.1f} at the start, "
          f"{R['loadavg_end'][0]:.1f} at the end; CPU steal {R['cpu_steal_pct']}%; "
          "± is half the spread (max - min) of the repetitions around their median; for "
          "tests 1-3 the ratio is the median of the per-repetition ratios")
    print(f"elapsed {R['elapsed_s']:.0f} s; results: {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
