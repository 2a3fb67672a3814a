"""The emulated-box scenarios (entry point: hw-tests/emulated).

Outside the namespace: prepares what the scenarios need from image/build's output (the
update bundles, a boot image signed with another key), then re-executes itself inside a
fresh network namespace where the box, its LAN and the checks run. One line per scenario:
`PASS name (seconds)`, `FAIL name: why` or `SKIP name: why`; exit status 1 unless all pass.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "acceptance"))

from vm import LAN_HOST, OUTSIDE_HOST, BootTimeout, Lan, Vm, sh  # noqa: E402

CORE = ["first-boot", "perimeter", "reboot-tpm-unlock", "boot-chain-change", "unsigned-boot-refused",
        "update-a-to-b", "downgrade-refused", "initrd-failure-poweroff", "verity-corruption"]
# Every scenario: the core ones plus the long rollback (about 5 minutes), before the last,
# destructive one.
FULL = CORE[:-1] + ["update-unhealthy-rollback", CORE[-1]]
BOOT_TIMEOUT = float(os.environ.get("CIVIA_EMU_BOOT_TIMEOUT", "1200"))


def log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def bump(version: str, patch: int) -> str:
    major, minor, p = (int(x) for x in version.split("."))
    return f"{major}.{minor}.{p + patch}"


# ---- preparation (host namespace) ------------------------------------------------------

def prepare(work: Path, image: dict, names: list[str]) -> dict:
    """Builds the artefacts the scenarios use; returns their paths."""
    out = Path(image["disk"]).parent
    keys = Path(image["keys"])
    bundle_tool = REPO / "target" / "release" / "civia-bundle"
    env = {**os.environ, "CIVIA_IMAGE_OUT": str(out)}
    arts: dict = {"image": image}

    # A signed update: the same sources, the next version.
    if {"update-a-to-b", "downgrade-refused", "update-unhealthy-rollback"} & set(names):
        v2 = bump(image["version"], 1)
        log(f"building update bundle {v2}")
        sh(str(REPO / "image" / "build"), "--no-cargo", "--bundle-only", "--version", v2, env=env)
        arts["update"] = json.loads((out / f"civia-{v2}.json").read_text())

    if "update-unhealthy-rollback" in names:
        # A release whose model cannot load: its health check fails on the box.
        v3 = bump(image["version"], 2)
        broken = work / "broken-model.gguf"
        data = Path(REPO / ".cache/models/tiny-mistral.gguf").read_bytes()
        broken.write_bytes(data[: len(data) // 3])
        log(f"building update bundle {v3} with a broken model")
        sh(str(REPO / "image" / "build"), "--no-cargo", "--bundle-only", "--version", v3,
           "--model", str(broken), env=env)
        arts["unhealthy"] = json.loads((out / f"civia-{v3}.json").read_text())

    # A downgrade: validly signed, older than what runs.
    parts = Path(image["parts"])
    down = work / "downgrade.civia"
    sh(str(bundle_tool), "build", "--kind", "system", "--compatible", image["compatible"],
       "--version", "0.0.1", "--floor", "0.0.1", "--usr", str(parts / "root.img"),
       "--verity", str(parts / "root.verity"), "--root-hash", image["roothash"],
       "--uki", str(parts / "civia.efi"), "-o", str(down))
    for k in sorted(keys.glob("sign*.key")):
        sh(str(bundle_tool), "sign", "--key", str(k), str(down))
    arts["downgrade"] = str(down)

    # A boot image the integrator did not sign: same kernel and initrd, a command line that
    # differs (so PCR 11 differs), its PCR 11 signature made with a key made here.
    tools = Path(image["tools"])
    other = work / "other-key"
    other.mkdir()
    sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
       "-out", str(other / "pcr.key"))
    sh("openssl", "pkey", "-in", str(other / "pcr.key"), "-pubout", "-out", str(other / "pcr.pub.pem"))
    for name in ("vmlinuz", "initrd.img", "cmdline"):
        shutil.copy(parts / name, other / name)
    cmdline = (parts / "cmdline").read_text().strip() + " civia.modified=1"
    (other / "os-release").write_text(
        f'ID=civia\nIMAGE_VERSION={image["version"]}\nPRETTY_NAME="Civia (modified)"\n')
    with bound_in(tools, other, "emu-work"), bound_in(tools, keys, "emu-keys", read_only=True):
        sh("chroot", str(tools), "ukify", "build", "--linux", "/emu-work/vmlinuz",
           "--initrd", "/emu-work/initrd.img", "--cmdline", cmdline, "--os-release", "@/emu-work/os-release",
           "--pcr-private-key", "/emu-work/pcr.key", "--pcr-public-key", "/emu-work/pcr.pub.pem",
           "--output", "/emu-work/tampered.efi")
        # Unsigned, it is what an intruder with the disk in hand could write: the firmware
        # must refuse it. Signed with the integrator's db key (a signed release with another
        # boot chain), Secure Boot lets it start and the TPM's PCR 11 policy must refuse.
        sh("chroot", str(tools), "sbsign", "--key", "/emu-keys/db.key", "--cert", "/emu-keys/db.crt",
           "--output", "/emu-work/tampered-signed.efi", "/emu-work/tampered.efi")
    arts["tampered_uki"] = str(other / "tampered-signed.efi")
    arts["unsigned_uki"] = str(other / "tampered.efi")
    return arts


@contextmanager
def bound_in(tools: Path, src: Path, name: str, *, read_only: bool = False):
    """`src` bind-mounted at /`name` of the tools tree, for a command chrooted there."""
    mnt = tools / name
    mnt.mkdir(exist_ok=True)
    sh("mount", "--bind", *(["-o", "ro"] if read_only else []), str(src), str(mnt))
    try:
        yield
    finally:
        sh("umount", str(mnt), check=False)
        mnt.rmdir()


# ---- the scenarios (inside the namespace) ----------------------------------------------

class Run:
    def __init__(self, work: Path, arts: dict):
        self.work = work
        self.arts = arts
        self.image = arts["image"]
        self.vm = Vm(work, Path(self.image["disk"]), log, Path(self.image["keys"]) / "db.crt")
        self.lan: Lan | None = None
        self.ip = ""
        self.recovery_key = ""
        self.known_slot = "a"  # the booted slot, when the box is off
        self.pairing_code = ""
        self.admin_pw = ""
        self.box = None

    # helpers

    def boot_until_api(self, *, allow_prompt: bool = False) -> None:
        """Boots and waits until the API answers; a passphrase prompt fails unless allowed."""
        self.vm.start()
        self.wait_api(allow_prompt=allow_prompt)

    def wait_api(self, *, allow_prompt: bool = False) -> None:
        end = time.monotonic() + BOOT_TIMEOUT
        from civia_acceptance import tcp_open
        while time.monotonic() < end:
            text = self.vm.console_text()
            if not allow_prompt and "Please enter" in text:
                raise AssertionError("the box asked for a passphrase: " + last_line(text, "Please enter"))
            if self.vm.qemu and self.vm.qemu.poll() is not None:
                raise BootTimeout("the machine stopped")
            self.ip = self.lan.guest_ip(BOOT_TIMEOUT)  # the newest lease
            if tcp_open(self.ip, 443, timeout=2, source=LAN_HOST):
                self.wait_health(end)
                return
            time.sleep(3)
        raise BootTimeout(f"the API did not answer within {BOOT_TIMEOUT:.0f} s")

    def wait_health(self, end: float) -> None:
        import httpx
        from civia_acceptance import Box
        last = ""
        while time.monotonic() < end:
            try:
                if self.box is None:
                    self.box = Box(self.ip, self.work, source=LAN_HOST)
                else:
                    self.box.ip = self.ip
                r = self.box.api("GET", "/health", timeout=10)
                if r.status_code == 200 and r.json().get("status") in ("ok", "ready", None) \
                        and r.json().get("model", {}).get("state", "ready") in ("ready", "loaded", None):
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except (httpx.HTTPError, OSError, ValueError) as e:
                last = repr(e)
            time.sleep(3)
        raise BootTimeout(f"/health not ready: {last}")

    def login(self) -> None:
        self.box.cookies.clear()
        self.box.csrf = None
        self.box.login("technicien", self.admin_pw)

    def key_for(self, user: str, role: str) -> str:
        r = self.box.admin("POST", "/admin/users", json={"name": user, "role": role})
        assert r.status_code in (201, 409), r.text
        r = self.box.admin("POST", "/admin/keys", json={"user": user, "name": "emulated"})
        assert r.status_code == 201, r.text
        return r.json()["key"]

    def upload(self, bundle: str) -> "httpx.Response":  # noqa: F821
        import httpx
        from civia_acceptance import ADMIN_PORT, SERVER_NAME
        key = self.key_for("prestataire", "integrator")
        # The integrator's key alone (no admin session cookie): updates need that role.
        transport = httpx.HTTPTransport(verify=str(self.box.ca), local_address=LAN_HOST)
        with open(bundle, "rb") as f, httpx.Client(transport=transport, timeout=1800) as c:
            return c.post(self.box.url(ADMIN_PORT, "/admin/updates/system"), content=f,
                          headers={"authorization": f"Bearer {key}"},
                          extensions={"sni_hostname": SERVER_NAME})

    def updates(self) -> dict:
        r = self.box.admin("GET", "/admin/updates")
        assert r.status_code == 200, r.text
        return r.json()["system"]

    # scenarios

    def s_first_boot(self) -> str:
        self.vm.start()
        m = self.vm.wait_console(r"Clé de récupération : ([a-z]{8}(?:-[a-z]{8}){7})", BOOT_TIMEOUT,
                                 fail=r"Please enter|ERREUR")
        self.recovery_key = m.group(1)
        m = self.vm.wait_console(r"pairing code: ([A-Za-z0-9-]+)", BOOT_TIMEOUT)
        self.pairing_code = m.group(1)
        self.ip = self.lan.guest_ip()
        self.wait_health(time.monotonic() + BOOT_TIMEOUT)
        self.admin_pw = self.box.pair(self.pairing_code, "technicien")
        self.login()
        r = self.box.admin("GET", "/admin/system")
        assert r.status_code == 200, r.text
        facts = r.json()
        assert facts["var"]["luks2"], facts["var"]
        assert facts["root"]["verity"], facts["root"]
        assert facts["tpm"]["present"], facts["tpm"]
        assert facts["var"]["unlock_method"] == "tpm2", facts["var"]
        assert facts["secure_boot"] is True, facts
        return f"box {self.ip}, recovery key shown on the console, paired, Secure Boot on"

    def s_perimeter(self) -> str:
        from civia_acceptance import Report, run_checks
        key = self.key_for("agent.accueil", "agent")
        report = Report()
        # The image's test model is 0.7 MB: per-token overheads, not memory, set its speed,
        # so its share of the memory bound is reported without a threshold.
        run_checks(self.box, report, lan_source=LAN_HOST, outside_source=OUTSIDE_HOST,
                   key=key, model=self.image["model"], min_bound_ratio=None)
        (self.work / "rapport-recette.md").write_text(report.markdown("Recette de la box Civia (émulée)"))
        failed = [c.name for c in report.checks if not c.ok]
        assert not failed, f"acceptance checks failed: {failed}"
        return f"{len(report.checks)} acceptance checks, report {self.work / 'rapport-recette.md'}"

    def s_reboot(self) -> str:
        self.vm.stop()
        self.boot_until_api()
        self.login()
        facts = self.box.admin("GET", "/admin/system").json()
        assert facts["var"]["luks2"], facts["var"]
        assert facts["var"]["unlock_method"] == "tpm2", facts["var"]
        return "/var unlocked by the TPM, no prompt, same accounts"

    @contextmanager
    def uki_replaced(self, replacement: str):
        """The box off, its boot image swapped for `replacement`; on exit the box is off
        again and the original image back."""
        self.vm.stop()
        uki = next(e for e in self.vm.esp_list() if e.startswith("civia-"))
        saved = self.work / "saved-uki.efi"
        self.vm.esp_get(uki, saved)
        self.vm.esp_put(Path(replacement), uki)
        try:
            yield
        finally:
            self.vm.stop()
            self.vm.esp_put(saved, uki)

    def s_boot_chain(self) -> str:
        with self.uki_replaced(self.arts["tampered_uki"]):
            self.vm.start()
            self.vm.wait_console(r"Please enter .*civia-var", BOOT_TIMEOUT)
            refusal = last_line(self.vm.console_text(), "TPM2").split("]: ")[-1]
            self.vm.type(self.recovery_key + "\r")
            self.wait_api(allow_prompt=True)
            self.login()
            facts = self.box.admin("GET", "/admin/system").json()
            assert facts["var"]["luks2"], facts["var"]
            assert facts["var"]["unlock_method"] == "recovery-key", facts["var"]
        return f"TPM refused (\"{refusal.strip()[:90]}\"); the recovery key typed at the console opened /var"

    def s_unsigned(self) -> str:
        with self.uki_replaced(self.arts["unsigned_uki"]):
            self.vm.start()
            try:
                # systemd-boot's LoadImage() of the UKI: the firmware checks it against db.
                m = self.vm.wait_console(r"Error loading \S+\.efi: (Access denied|Security [Vv]iolation)",
                                         BOOT_TIMEOUT, fail=r"Please enter|pairing code")
            finally:
                self.vm.kill()  # nothing to shut down cleanly: no system ever started
        return f"Secure Boot refused the unsigned UKI (systemd-boot: \"{m.group(0).strip()[:100]}\")"

    def s_update(self) -> str:
        self.boot_until_api()
        self.login()
        before = self.updates()
        assert before["booted_slot"] == "a", before
        r = self.upload(self.arts["update"]["bundle"])
        assert r.status_code in (200, 201, 202), f"{r.status_code} {r.text[:300]}"
        self.vm.stop()
        self.boot_until_api()
        self.login()
        after = self.updates()
        v2 = self.arts["update"]["version"]
        assert after["booted_slot"] == "b" and after["running_version"] == v2, after
        # Blessed once the model loaded (the health check).
        end = time.monotonic() + 300
        while self.updates().get("pending") and time.monotonic() < end:
            time.sleep(5)
        after = self.updates()
        assert not after.get("pending"), after
        return f"{before['running_version']} (a) → {v2} (b), blessed, /var unlocked by the TPM"

    def s_downgrade(self) -> str:
        r = self.upload(self.arts["downgrade"])
        body = r.text
        assert r.status_code in (400, 403, 409, 422) and ("not_newer" in body or "below_floor" in body), \
            f"{r.status_code} {body[:300]}"
        return f"refused: HTTP {r.status_code} {json.loads(body)['error']['code']}"

    def s_unhealthy(self) -> str:
        bad = self.arts["unhealthy"]
        r = self.upload(bad["bundle"])
        assert r.status_code in (200, 201, 202), f"{r.status_code} {r.text[:300]}"
        self.vm.stop()
        self.vm.start()
        # The new slot boots, fails its health check, civiad marks it bad and the box reboots.
        self.vm.wait_console(r"redémarrage sur la version précédente|reboot: Restarting system", BOOT_TIMEOUT)
        end = time.monotonic() + BOOT_TIMEOUT
        since = len(self.vm.console)
        self.vm.wait_console(r"pairing code|Reached target.*[Mm]ulti-[Uu]ser|login", BOOT_TIMEOUT, since=since)
        self.wait_health(end)
        self.login()
        st = self.updates()
        assert st["running_version"] == self.arts["update"]["version"] and st["booted_slot"] == "b", st
        outcome = st.get("last_outcome") or {}
        assert outcome.get("version") == bad["version"] and outcome.get("result") != "installed", st
        return f"{bad['version']} failed its health check; back on {st['running_version']} by itself"

    def s_initrd_failure(self) -> str:
        """An initrd that cannot find its root (the booted slot's GPT partition UUID changed
        offline, as a thief with the disk could do) must power the machine off: a shell there
        would run in the boot phase where the TPM may release /var's key."""
        slot = "a"
        try:
            slot = self.updates()["booted_slot"]
        except Exception:  # noqa: BLE001 — the box may be off after a failed scenario
            pass
        self.vm.stop()
        self.known_slot = slot  # the box stays off: verity-corruption needs the slot
        part = f"usr-{slot}"
        old = self.vm.set_partition_uuid(part, "0badc0de-0000-4000-8000-000000000019")
        shell = (r"Entering emergency mode|Give root password|Press Enter for maintenance"
                 r"|emergency shell|dracut:/#|sh-\d\.\d#")
        t0 = time.monotonic()
        try:
            self.vm.start()
            end = time.monotonic() + BOOT_TIMEOUT
            while time.monotonic() < end and self.vm.qemu.poll() is None:
                text = self.vm.console_text()
                if m := re.search(shell, text):
                    # Show what it gives: a root shell in the initrd.
                    time.sleep(5)
                    self.vm.type("\r")
                    time.sleep(5)
                    self.vm.type("id\r")
                    got = ""
                    try:
                        got = self.vm.wait_console(r"uid=\d+\([a-z]+\)[^\n]*", 120).group(0)
                    except BootTimeout:
                        pass
                    locked = "root account is locked" in self.vm.console_text()
                    raise AssertionError(
                        f"the initrd entered emergency mode and started a shell login ({m.group(0)!r}); "
                        + (f"`id` in it: {got!r}" if got else
                           "sulogin refused (root locked)" if locked else "no answer to `id`"))
                time.sleep(1)
            if self.vm.qemu.poll() is None:
                raise AssertionError(f"the machine neither powered off nor offered a shell within {BOOT_TIMEOUT:.0f} s")
            text = self.vm.console_text()
            assert "Power down" in text or "Powering off" in text, "QEMU stopped, but not by a power-off"
            why = last_line(text, "Timed out") or last_line(text, "failed") or last_line(text, "Boot has failed")
        finally:
            self.vm.kill()
            self.vm.set_partition_uuid(part, old)
        return (f"{part} UUID changed: the initrd failed and powered off after "
                f"{time.monotonic() - t0:.0f} s, no shell (\"{why.strip()[:90]}\")")

    def s_verity(self) -> str:
        slot = self.known_slot
        try:
            slot = self.updates()["booted_slot"]
        except Exception:  # noqa: BLE001 — the box may be off after a failed scenario
            pass
        self.vm.stop()
        # The erofs superblock (first 4 KiB): read by the initrd at mount time.
        self.vm.corrupt(f"usr-{slot}", 0, 4096)
        self.vm.start()
        m = self.vm.wait_console(r"verity.*(corrupt|[Ee]rror)[^\n]*", BOOT_TIMEOUT)
        self.vm.kill()
        return f"usr-{slot}: {m.group(0).strip()[:120]}"


SCENARIOS = {
    "first-boot": ("Run.s_first_boot", []),
    "perimeter": ("Run.s_perimeter", ["first-boot"]),
    "reboot-tpm-unlock": ("Run.s_reboot", ["first-boot"]),
    "boot-chain-change": ("Run.s_boot_chain", ["first-boot"]),
    "unsigned-boot-refused": ("Run.s_unsigned", []),
    "update-a-to-b": ("Run.s_update", ["first-boot"]),
    "downgrade-refused": ("Run.s_downgrade", ["update-a-to-b"]),
    "update-unhealthy-rollback": ("Run.s_unhealthy", ["update-a-to-b"]),
    "initrd-failure-poweroff": ("Run.s_initrd_failure", []),
    "verity-corruption": ("Run.s_verity", []),
}


def egress_from_capture(pcap: Path, guest_mac: str) -> list[str]:
    """Connections the guest started: TCP SYNs and UDP other than DHCP/mDNS/NTP, from its MAC."""
    mac = bytes.fromhex(guest_mac.replace(":", ""))
    bad: list[str] = []
    data = pcap.read_bytes() if pcap.exists() else b""
    if len(data) < 24:
        return bad
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16: off + 16 + incl]
        off += 16 + incl
        if len(frame) < 14 or frame[6:12] != mac:
            continue
        etype = struct.unpack(">H", frame[12:14])[0]
        if etype == 0x0800 and len(frame) >= 34:
            ihl = (frame[14] & 0x0F) * 4
            proto, dst = frame[23], ".".join(str(b) for b in frame[30:34])
            l4 = frame[14 + ihl:]
            if proto == 6 and len(l4) >= 14:
                sport, dport = struct.unpack(">HH", l4[:4])
                flags = l4[13]
                if flags & 0x02 and not flags & 0x10:  # SYN without ACK: a new connection
                    bad.append(f"TCP {dst}:{dport}")
            elif proto == 17 and len(l4) >= 4:
                sport, dport = struct.unpack(">HH", l4[:4])
                if dport not in (67, 5353, 123) and sport not in (5353,):
                    bad.append(f"UDP {dst}:{dport}")
        elif etype == 0x86DD and len(frame) >= 54:
            nxt = frame[20]
            l4 = frame[54:]
            if nxt == 6 and len(l4) >= 14 and l4[13] & 0x02 and not l4[13] & 0x10:
                bad.append(f"TCP6 port {struct.unpack('>H', l4[2:4])[0]}")
            elif nxt == 17 and len(l4) >= 4:
                sport, dport = struct.unpack(">HH", l4[:4])
                if dport not in (547, 5353, 123) and sport != 5353:
                    bad.append(f"UDP6 port {dport}")
    return bad


def inside(work: Path, arts: dict, names: list[str]) -> int:
    results: dict[str, bool] = {}
    failed = 0
    with Lan(work) as lan:
        run = Run(work, arts)
        run.lan = lan
        try:
            for name in names:
                method, deps = SCENARIOS[name]
                missing = [d for d in deps if not results.get(d)]
                if missing:
                    print(f"SKIP {name}: needs {', '.join(missing)}", flush=True)
                    results[name] = False
                    failed += 1
                    continue
                t0 = time.monotonic()
                try:
                    detail = getattr(run, method.split(".")[1])()
                    results[name] = True
                    print(f"PASS {name} ({time.monotonic() - t0:.0f} s): {detail}", flush=True)
                except Exception as e:  # noqa: BLE001 — one line per scenario, go on
                    results[name] = False
                    failed += 1
                    print(f"FAIL {name} ({time.monotonic() - t0:.0f} s): {e}", flush=True)
                    traceback.print_exc(file=sys.stderr)
                    tail = run.vm.console_text()[-3000:]
                    print("  --- console (end) ---\n" + "\n".join("  " + l for l in tail.splitlines()[-40:]),
                          file=sys.stderr)
                    run.vm.kill()
        finally:
            run.vm.kill()
    out = egress_from_capture(work / "lan.pcap", "52:54:00:c1:71:a0")
    name = "no-egress-observed"
    if out:
        failed += 1
        print(f"FAIL {name}: the guest started {len(out)} connection(s): {sorted(set(out))[:10]}", flush=True)
    else:
        print(f"PASS {name}: no connection started by the box on the wire (whole run captured)", flush=True)
    return 1 if failed else 0


def last_line(text: str, needle: str) -> str:
    return next((l for l in reversed(text.splitlines()) if needle in l), "")


def main() -> int:
    ap = argparse.ArgumentParser(prog="hw-tests/emulated")
    ap.add_argument("--all", action="store_true", help="every scenario (CI runs the core ones)")
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--inside", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.inside:
        work = Path(a.inside)
        spec = json.loads((work / "run.json").read_text())
        return inside(work, spec["arts"], spec["names"])

    image_json = REPO / "image" / "out" / "image.json"
    if not image_json.exists():
        print("hw-tests/emulated: no image: run image/build first", file=sys.stderr)
        return 2
    image = json.loads(image_json.read_text())
    names = a.only.split(",") if a.only else (FULL if a.all else CORE)
    for n in names:
        if n not in SCENARIOS:
            print(f"hw-tests/emulated: unknown scenario {n}", file=sys.stderr)
            return 2
    base = REPO / ".cache" / "emulated"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    ns = f"civia-emu-{os.getpid()}"
    # Namespaces left by a run that was killed (its process is gone).
    for line in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith("civia-emu-") and name[10:].isdigit() and not Path(f"/proc/{name[10:]}").exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    try:
        arts = prepare(work, image, names)
        (work / "run.json").write_text(json.dumps({"arts": arts, "names": names}))
        sh("ip", "netns", "add", ns)
        rc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, "--inside", str(work)]).returncode
        return rc
    finally:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", "-9", pid], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if a.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
