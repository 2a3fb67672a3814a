"""Acceptance checks of a Civia box, seen from the LAN (a real box, or the emulated one).

A technician runs it from a laptop on the commune's LAN after installing a box:

    python3 hw-tests/acceptance/civia_acceptance.py --box 192.168.1.20 \
        --pairing-code CODE --report rapport-civia.md

(or `--user NAME --password PW` on a box that is already paired). It pairs (or logs in),
checks the box's own report (`GET /admin/system`: encrypted /var, verity root, TPM, Secure
Boot, GPU), the listening sockets and the ports reachable from the LAN, that the box cannot
open a connection out (`POST /admin/system/egress-probe` towards a port this laptop listens
on, which must see nothing), runs the model through the official `openai` client and
measures its decoding speed (streamed tokens after the first), compares it with what the
hardware allows (`POST /admin/system/memory-bandwidth`: memory read rate ÷ model weight
bytes, the bound of decoding on the CPU) and writes a report in French. Exit status 1 when a
check fails. `hw-tests/emulated` runs the same checks against the image booted in QEMU.

Needs the `httpx` and `openai` packages (appliance/scripts/requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai

SERVER_NAME = "civia.local"
API_PORT = 443
ADMIN_PORT = 8443
# What the box may listen on from the LAN (TCP), and UDP: DHCP client, mDNS.
EXPECTED_TCP = {API_PORT, ADMIN_PORT}
ALLOWED_UDP = {68, 546, 5353, 5355}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, bool(ok), detail))
        print(f"{'OK   ' if ok else 'ÉCHEC'} {name}{' — ' + detail if detail else ''}", flush=True)
        return bool(ok)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def markdown(self, title: str) -> str:
        lines = [f"# {title}", "", f"Date : {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", "",
                 f"Résultat : **{'conforme' if self.ok else 'NON CONFORME'}** "
                 f"({sum(c.ok for c in self.checks)}/{len(self.checks)} contrôles réussis)", "",
                 "| contrôle | résultat | détail |", "|---|---|---|"]
        for c in self.checks:
            lines.append(f"| {c.name.replace('|', '/')} | {'réussi' if c.ok else '**échec**'} | {c.detail.replace('|', '/')} |")
        if self.facts:
            lines += ["", "## Ce que la box déclare", "", "```json"]
            import json
            lines += [json.dumps(self.facts, indent=2, ensure_ascii=False), "```"]
        return "\n".join(lines) + "\n"


class Box:
    """HTTPS to the box by IP address, checking its certificate for civia.local against the
    box CA (fetched once from /ca.crt, trust on first use, fingerprint in the report)."""

    def __init__(self, ip: str, workdir: Path, ca: Path | None = None, source: str | None = None,
                 timeout: float = 60):
        self.ip = ip
        self.timeout = timeout
        self.source = source
        if ca is None:
            ca = workdir / "civia-ca.crt"
            transport = httpx.HTTPTransport(verify=False, local_address=source)
            with httpx.Client(transport=transport, timeout=timeout) as c:
                r = c.get(self.url(API_PORT, "/ca.crt"), extensions={"sni_hostname": SERVER_NAME})
            r.raise_for_status()
            ca.write_text(r.text)
        self.ca = ca
        self.cookies = httpx.Cookies()
        self.csrf: str | None = None

    def url(self, port: int, path: str) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"https://{host}:{port}{path}"

    def client(self, timeout: float | None = None) -> httpx.Client:
        transport = httpx.HTTPTransport(verify=str(self.ca), local_address=self.source)
        return httpx.Client(transport=transport, timeout=timeout or self.timeout, cookies=self.cookies)

    def request(self, method: str, port: int, path: str, **kw) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})
        if self.csrf and method != "GET":
            headers["x-csrf-token"] = self.csrf
        with self.client(kw.pop("timeout", None)) as c:
            r = c.request(method, self.url(port, path), headers=headers,
                          extensions={"sni_hostname": SERVER_NAME}, **kw)
            self.cookies.update(c.cookies)
            return r

    def api(self, method: str, path: str, **kw) -> httpx.Response:
        return self.request(method, API_PORT, path, **kw)

    def admin(self, method: str, path: str, **kw) -> httpx.Response:
        return self.request(method, ADMIN_PORT, path, **kw)

    def pair(self, code: str, name: str) -> str:
        r = self.admin("POST", "/admin/pair", json={"code": code, "name": name})
        if r.status_code != 201:
            raise AssertionError(f"pairing refused: {r.status_code} {r.text}")
        return r.json()["password"]

    def login(self, name: str, password: str) -> None:
        r = self.api("POST", "/auth/login", json={"username": name, "password": password})
        if r.status_code != 200:
            raise AssertionError(f"login refused: {r.status_code} {r.text}")
        self.csrf = r.json()["csrf_token"]

    def openai_client(self, key: str) -> openai.OpenAI:
        transport = httpx.HTTPTransport(verify=str(self.ca), local_address=self.source)

        class Sni(httpx.Client):
            def send(self, request, **kw):  # every request names civia.local in TLS
                request.extensions["sni_hostname"] = SERVER_NAME
                return super().send(request, **kw)

        return openai.OpenAI(base_url=self.url(API_PORT, "/v1"), api_key=key, max_retries=0,
                             timeout=600, http_client=Sni(transport=transport))


def tcp_open(ip: str, port: int, timeout: float = 3.0, source: str | None = None) -> bool:
    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
    s.settimeout(timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


async def _scan(ip: str, ports: list[int], timeout: float) -> set[int]:
    sem = asyncio.Semaphore(256)

    async def one(port: int) -> int | None:
        async with sem:
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection(ip, port), timeout)
                w.close()
                return port
            except (OSError, asyncio.TimeoutError):
                return None

    return {p for p in await asyncio.gather(*(one(p) for p in ports)) if p is not None}


def scan_tcp(ip: str, ports: list[int], timeout: float = 2.0) -> set[int]:
    return asyncio.run(_scan(ip, ports, timeout))


def mdns_lookup(name: str, source: str, timeout: float = 10.0) -> set[str]:
    """IPv4 addresses announced for `name` over mDNS, asked from `source` as a full mDNS
    querier (port 5353, answers come back to the multicast group: the box's firewall lets
    only those out)."""
    import struct
    group = "224.0.0.251"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", 5353))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton(source))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
    s.settimeout(1.0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    query = struct.pack(">HHHHHH", 0, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    found: set[str] = set()
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end and not found:
            s.sendto(query, (group, 5353))
            t = time.monotonic() + 2
            while time.monotonic() < t:
                try:
                    data, _ = s.recvfrom(9000)
                except socket.timeout:
                    continue
                found |= _mdns_a_records(data, qname)
                if found:
                    break
    finally:
        s.close()
    return found


def _mdns_a_records(data: bytes, qname: bytes) -> set[str]:
    import struct
    out: set[str] = set()
    if len(data) < 12:
        return out
    _, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", data[:12])
    if not flags & 0x8000:  # a query, not an answer
        return out
    off = 12

    def skip_name(o: int) -> int:
        while o < len(data):
            n = data[o]
            if n == 0:
                return o + 1
            if n & 0xC0 == 0xC0:
                return o + 2
            o += 1 + n
        return o

    for _ in range(qd):
        off = skip_name(off) + 4
    for _ in range(an + ns + ar):
        start = off
        off = skip_name(off)
        if off + 10 > len(data):
            break
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[off:off + 10])
        owner = data[start:off]
        off += 10
        if off + rdlen > len(data):  # truncated record: nothing more to trust
            break
        if rtype == 1 and rdlen == 4 and owner.lower() == qname.lower():
            out.add(socket.inet_ntoa(data[off:off + 4]))
        off += rdlen
    return out


class Listener:
    """A TCP port on this machine that records every connection (the egress probe's target)."""

    def __init__(self, host: str):
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.seen: list[str] = []
        self._stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, addr = self.sock.accept()
                self.seen.append(addr[0])
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def run_checks(box: Box, report: Report, *, lan_source: str, outside_source: str | None,
               key: str, model: str, expect_tpm: bool = True, expect_gpu: bool = False,
               check_mdns: bool = True, min_bound_ratio: float | None = 0.25) -> None:
    """The acceptance checks proper (the caller paired or logged in as an administrator).

    `min_bound_ratio`: the least share of the hardware's decoding bound the measured speed
    must reach (a production model on a real box gets 0.4–0.8 of it on the CPU); None only
    reports the ratio, for test models so small that per-token overheads, not memory, set
    their speed."""
    r = box.api("GET", "/health")
    report.add("API joignable depuis le réseau local (HTTPS, certificat de la box)",
               r.status_code == 200, f"/health → {r.status_code}")

    r = box.admin("GET", "/admin/system")
    facts = r.json() if r.status_code == 200 else {}
    report.facts = facts
    report.add("la box décrit son système (/admin/system)", r.status_code == 200, f"HTTP {r.status_code}")
    var = facts.get("var") or {}
    report.add("/var chiffré (LUKS2)", bool(var.get("luks2")),
               f"{var.get('source')} ({var.get('dm_name')}), ouvert par : {var.get('unlock_method') or 'inconnu'}")
    root = facts.get("root") or {}
    report.add("système en lecture seule protégé par dm-verity", bool(root.get("verity")) and bool(root.get("read_only")),
               f"{root.get('source')} ({root.get('fs_type')})")
    tpm = facts.get("tpm") or {}
    if expect_tpm:
        report.add("puce TPM 2.0 présente", bool(tpm.get("present")), f"{tpm}")
    report.add("démarrage sécurisé (Secure Boot) actif", facts.get("secure_boot") is True,
               f"secure_boot = {facts.get('secure_boot')}, lockdown = {(facts.get('kernel') or {}).get('lockdown')}")
    gpus = facts.get("gpu") or []
    if expect_gpu:
        report.add("GPU détecté", len(gpus) > 0, f"{gpus}")

    listening = facts.get("listening") or []
    tcp_ports = {s.get("port") for s in listening if s.get("protocol", "").startswith("tcp")
                 and not str(s.get("address", "")).startswith(("127.", "::1"))}
    udp_ports = {s.get("port") for s in listening if s.get("protocol", "").startswith("udp")
                 and not str(s.get("address", "")).startswith(("127.", "::1"))}
    report.add("sockets en écoute : exactement l'API et l'administration",
               tcp_ports == EXPECTED_TCP and udp_ports <= ALLOWED_UDP,
               f"TCP {sorted(tcp_ports)}, UDP {sorted(udp_ports)}")

    ports = list(range(1, 1025)) + [2049, 3000, 3306, 5000, 5432, 6379, 8000, 8080, 8443, 8888, 9000, 9090, 11434]
    found = scan_tcp(box.ip, ports)
    report.add("ports ouverts vus du réseau local : 443 et 8443 seulement", found == EXPECTED_TCP,
               f"ouverts : {sorted(found)}")
    if outside_source:
        reach = [p for p in sorted(EXPECTED_TCP) if tcp_open(box.ip, p, timeout=4, source=outside_source)]
        report.add("injoignable depuis une adresse hors des plages autorisées", not reach,
                   f"depuis {outside_source} : {reach or 'aucun port'}")

    if check_mdns and ":" not in box.ip:
        try:
            announced = mdns_lookup(SERVER_NAME, lan_source)
        except OSError as e:
            announced = {f"erreur : {e}"}
        report.add("la box s'annonce sur le réseau local (mDNS civia.local)", box.ip in announced,
                   f"civia.local → {sorted(announced) or 'pas de réponse'}")

    listener = Listener(lan_source)
    try:
        r = box.admin("POST", "/admin/system/egress-probe",
                      json={"address": f"{lan_source}:{listener.port}", "timeout_ms": 3000}, timeout=30)
        probe = r.json() if r.status_code == 200 else {}
        time.sleep(1)
        report.add("aucune connexion sortante possible (la box essaie, le pare-feu refuse)",
                   r.status_code == 200 and probe.get("connected") is False and not listener.seen,
                   f"HTTP {r.status_code} {probe}, connexions reçues : {len(listener.seen)}")
    finally:
        listener.close()

    client = box.openai_client(key)
    charter = box.api("GET", "/v1/charter", headers={"authorization": f"Bearer {key}"})
    if charter.status_code == 200 and charter.json().get("accepted_at") is None:
        box.api("POST", "/v1/charter/accept", headers={"authorization": f"Bearer {key}"},
                json={"version": charter.json()["version"]})
    t0 = time.monotonic()
    out = client.chat.completions.create(model=model, max_tokens=64, temperature=0,
                                         messages=[{"role": "user", "content": "Bonjour, rédigez une phrase."}])
    dt = time.monotonic() - t0
    n = out.usage.completion_tokens if out.usage else 0
    report.add("le modèle répond (client openai officiel)",
               out.choices[0].message.role == "assistant" and out.usage is not None and out.usage.prompt_tokens > 0,
               f"{n} jetons en {dt:.1f} s ({n / dt if dt else 0:.1f} jetons/s)")
    decode_rate(box, report, client, model, min_bound_ratio, expect_gpu)


def decode_rate(box: Box, report: Report, client: openai.OpenAI, model: str,
                min_ratio: float | None, expect_gpu: bool) -> None:
    """Decoding speed (streamed chunks after the first, so prompt evaluation and the network's
    first round trip are left out) against the box's bound for its hardware."""
    stamps: list[float] = []
    stream = client.chat.completions.create(
        model=model, max_tokens=128, temperature=0, stream=True,
        messages=[{"role": "user", "content": "Rédigez un court paragraphe sur la mairie."}])
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            stamps.append(time.monotonic())
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 2 and stamps[-1] > stamps[0] else 0.0
    r = box.admin("POST", "/admin/system/memory-bandwidth", timeout=120)
    b = r.json() if r.status_code == 200 else {}
    bound = b.get("decode_tokens_per_second_bound")
    mem = b.get("memory") or {}
    weights = (b.get("model") or {}).get("weights_bytes") or 0
    basis = (f"mémoire {mem.get('bytes_per_second', 0) / 1e9:.2f} Go/s ({mem.get('threads')} cœurs) "
             f"÷ poids {weights / 1e6:.1f} Mo")
    model_info = b.get("model") or {}
    devices = ", ".join(f"{d.get('name')} ({d.get('description')})" for d in model_info.get("devices") or [])
    if expect_gpu:
        report.add("le modèle tourne sur le GPU", b.get("device") == "gpu",
                   f"{model_info.get('gpu_layers', 0)} couches sur le GPU ; périphériques : {devices or 'inconnus'}")
    if r.status_code != 200:
        report.add("débit de génération comparé à la borne matérielle", False,
                   f"mesure de bande passante : HTTP {r.status_code} {r.text[:200]}")
    elif bound is None:
        # A GPU does the work: its memory is not measured by the box; the speed is reported.
        report.add("débit de génération mesuré (GPU : borne non mesurée par la box)", rate > 0,
                   f"{rate:.1f} jetons/s, {len(stamps)} jetons reçus en flux ; {b.get('device')}")
    else:
        ratio = rate / bound if bound else 0.0
        needed = f"≥ {min_ratio:.0%} exigé" if min_ratio is not None else "sans seuil (modèle de test)"
        report.add("débit de génération comparé à la borne matérielle",
                   rate > 0 and bound > 0 and (min_ratio is None or ratio >= min_ratio),
                   f"{rate:.1f} jetons/s pour une borne de {bound:.0f} jetons/s ({basis}) : "
                   f"{ratio:.1%} de la borne, {needed}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--box", required=True, help="IP address of the box")
    ap.add_argument("--source", required=True, help="this laptop's LAN address (egress probe target)")
    ap.add_argument("--outside-source", help="an address of this laptop outside the allowed ranges")
    ap.add_argument("--pairing-code")
    ap.add_argument("--user", default="technicien")
    ap.add_argument("--password")
    ap.add_argument("--ca", type=Path, help="the box CA (default: fetched from the box)")
    ap.add_argument("--gpu", action="store_true", help="the box must have a GPU")
    ap.add_argument("--min-bound-ratio", type=float, default=0.25,
                    help="least share of the hardware's decoding bound the model must reach (default 0.25)")
    ap.add_argument("--report", type=Path, default=Path("rapport-civia.md"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        box = Box(a.box, Path(d), ca=a.ca)
        password = a.password or box.pair(a.pairing_code, a.user)
        box.login(a.user, password)
        r = box.admin("POST", "/admin/keys", json={"user": a.user, "name": "recette"})
        r.raise_for_status()
        models = box.api("GET", "/v1/models", headers={"authorization": f"Bearer {r.json()['key']}"}).json()
        report = Report()
        run_checks(box, report, lan_source=a.source, outside_source=a.outside_source,
                   key=r.json()["key"], model=models["data"][0]["id"], expect_gpu=a.gpu,
                   min_bound_ratio=a.min_bound_ratio)
    a.report.write_text(report.markdown("Recette de la box Civia"))
    print(f"rapport : {a.report}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
