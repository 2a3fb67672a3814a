"""The emulated box: a network namespace with a LAN bridge, DHCP and a packet capture, and a
QEMU (TCG) machine with OVMF and swtpm booting the Civia disk image.

Everything runs inside a network namespace this module creates (the harness re-executes
itself there), so the guest can reach nothing but the bridge: no route leaves the namespace.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

LAN_HOST = "192.168.77.1"  # the harness, inside the allowed LAN range
OUTSIDE_HOST = "203.0.113.1"  # TEST-NET-3: outside the allowed ranges, same wire
GUEST_MAC = "52:54:00:c1:71:a0"
# The firmware build with Secure Boot (needs SMM) and an empty variable store, into which
# the test enrols its own platform key, a key-exchange key and the integrator's db cert.
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
VIRT_FW_VARS = Path(sys.executable).parent / "virt-fw-vars"  # PyPI virt-firmware
OWNER_GUID = "6c1ce7d6-5bf4-4a40-9c3b-7a1c1d0fa1a0"  # owner of the enrolled test keys


class BootTimeout(AssertionError):
    pass


def sh(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, text=True, capture_output=True, **kw)


class Lan:
    """br0 in the current (fresh) network namespace: the harness's LAN and outside
    addresses, dnsmasq for DHCP (no DNS), tcpdump writing every frame to a capture file."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []
        self.leases = workdir / "dnsmasq.leases"
        self.pcap = workdir / "lan.pcap"

    def __enter__(self) -> "Lan":
        sh("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", "br0", "type", "bridge")
        sh("ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
        sh("ip", "link", "set", "tap0", "master", "br0")
        sh("ip", "addr", "add", f"{LAN_HOST}/24", "dev", "br0")
        sh("ip", "addr", "add", f"{OUTSIDE_HOST}/24", "dev", "br0")
        sh("ip", "link", "set", "tap0", "up")
        sh("ip", "link", "set", "br0", "up")
        self.leases.write_text("")
        self.procs.append(subprocess.Popen(
            ["tcpdump", "-i", "br0", "-U", "-n", "-w", str(self.pcap)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.procs.append(subprocess.Popen(
            ["dnsmasq", "--no-daemon", "--port=0", "--interface=br0", "--bind-interfaces",
             "--dhcp-range=192.168.77.50,192.168.77.99,12h", f"--dhcp-leasefile={self.leases}",
             "--dhcp-authoritative", "--no-resolv", "--no-hosts", "--log-dhcp"],
            stdout=open(self.workdir / "dnsmasq.log", "w"), stderr=subprocess.STDOUT))
        time.sleep(1)
        return self

    def guest_ip(self, timeout: float = 300) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            leases = [line.split() for line in self.leases.read_text().splitlines()]
            mine = [p for p in leases if len(p) >= 3 and p[1].lower() == GUEST_MAC and p[0].isdigit()]
            if mine:  # the newest lease (latest expiry)
                return max(mine, key=lambda p: int(p[0]))[2]
            time.sleep(1)
        raise BootTimeout("the box asked for no DHCP address")

    def __exit__(self, *exc) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


class Vm:
    """One box: a disk, firmware variables and a TPM state that persist across its boots."""

    def __init__(self, workdir: Path, disk_image: Path, log, db_cert: Path):
        self.dir = workdir
        self.log = log
        self.disk = workdir / "disk.img"
        self.vars = workdir / "OVMF_VARS.fd"
        self.tpm_dir = workdir / "tpm"
        self.qemu: subprocess.Popen | None = None
        self.swtpm: subprocess.Popen | None = None
        self.serial_sock: socket.socket | None = None
        self.console = ""  # everything the serial console printed during this boot
        self.boots = 0
        self._lock = threading.Lock()
        self.enrol_secure_boot(db_cert)
        self.tpm_dir.mkdir(exist_ok=True)
        # A sparse copy: the image stays untouched for the next run.
        sh("cp", "--sparse=always", str(disk_image), str(self.disk))

    def enrol_secure_boot(self, db_cert: Path) -> None:
        """Secure Boot in user mode: PK and KEK made here (the machine's owner), db = the
        integrator's certificate that signs systemd-boot and the UKIs. Nothing else is
        trusted: no Microsoft keys, so only what the integrator signed starts."""
        keys = self.dir / "sb-keys"
        keys.mkdir(exist_ok=True)
        for name in ("PK", "KEK"):
            sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
               "-subj", f"/CN=Civia emulated box {name}/", "-keyout", str(keys / f"{name}.key"),
               "-out", str(keys / f"{name}.crt"))
        sh(str(VIRT_FW_VARS), "--input", str(OVMF_VARS), "--output", str(self.vars),
           "--set-pk", OWNER_GUID, str(keys / "PK.crt"), "--add-kek", OWNER_GUID, str(keys / "KEK.crt"),
           "--add-db", OWNER_GUID, str(db_cert), "--secure-boot")

    # -- disk surgery between boots (the guest is off) ---------------------------------

    def partitions(self) -> dict[str, dict]:
        table = json.loads(sh("sfdisk", "--json", str(self.disk)).stdout)["partitiontable"]
        return {p["name"]: {"start": p["start"] * 512, "size": p["size"] * 512, "uuid": p["uuid"]}
                for p in table["partitions"]}

    def esp_spec(self) -> str:
        return f"{self.disk}@@{self.partitions()['esp']['start']}"

    def esp_list(self) -> list[str]:
        out = sh("mdir", "-b", "-i", self.esp_spec(), "::/EFI/Linux", env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout
        return sorted(Path(line.strip()).name for line in out.splitlines() if line.strip())

    def esp_put(self, src: Path, name: str) -> None:
        sh("mcopy", "-o", "-i", self.esp_spec(), str(src), f"::/EFI/Linux/{name}",
           env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})

    def esp_get(self, name: str, dst: Path) -> None:
        sh("mcopy", "-o", "-i", self.esp_spec(), f"::/EFI/Linux/{name}", str(dst),
           env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})

    def esp_del(self, name: str) -> None:
        sh("mdel", "-i", self.esp_spec(), f"::/EFI/Linux/{name}", env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})

    def set_partition_uuid(self, partition: str, uuid: str) -> str:
        """Writes a new GPT partition UUID for `partition`; returns the previous one."""
        table = json.loads(sh("sfdisk", "--json", str(self.disk)).stdout)["partitiontable"]
        number = next(i + 1 for i, p in enumerate(table["partitions"]) if p.get("name") == partition)
        old = table["partitions"][number - 1]["uuid"]
        sh("sfdisk", "-q", "--part-uuid", str(self.disk), str(number), uuid)
        return old

    def corrupt(self, partition: str, offset: int, length: int = 4096) -> None:
        part = self.partitions()[partition]
        with open(self.disk, "r+b") as f:
            f.seek(part["start"] + offset)
            data = bytearray(f.read(length))
            for i in range(len(data)):
                data[i] ^= 0x5A
            f.seek(part["start"] + offset)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    # -- running --------------------------------------------------------------------

    def start(self) -> None:
        assert self.qemu is None
        self.boots += 1
        sock = self.dir / "swtpm.sock"
        sock.unlink(missing_ok=True)
        self.swtpm = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", f"dir={self.tpm_dir}",
             "--ctrl", f"type=unixio,path={sock}", "--terminate"],
            stdout=subprocess.DEVNULL, stderr=open(self.dir / "swtpm.log", "a"))
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        serial = self.dir / "serial.sock"
        monitor = self.dir / "monitor.sock"
        for p in (serial, monitor):
            p.unlink(missing_ok=True)
        cmd = [
            "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-machine", "q35,smm=on",
            # Secure Boot variables are only writable from SMM: the OS cannot change them.
            "-global", "driver=cfi.pflash01,property=secure,value=on",
            "-global", "ICH9-LPC.disable_s3=1",
            "-m", "2048", "-smp", "2", "-display", "none", "-no-user-config", "-nodefaults",
            "-drive", f"if=pflash,format=raw,unit=0,file={OVMF_CODE},readonly=on",
            "-drive", f"if=pflash,format=raw,unit=1,file={self.vars}",
            "-drive", f"if=virtio,format=raw,file={self.disk},cache=unsafe",
            "-chardev", f"socket,id=chrtpm,path={sock}",
            "-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0",
            "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={GUEST_MAC}",
            "-chardev", f"socket,id=ser0,path={serial},server=on,wait=off",
            "-serial", "chardev:ser0",
            "-monitor", f"unix:{monitor},server=on,wait=off",
            "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0",
        ]
        self.qemu = subprocess.Popen(cmd, stdout=open(self.dir / "qemu.log", "a"), stderr=subprocess.STDOUT)
        # QEMU binds the socket before it listens: on a loaded machine a connection can come in
        # between and be refused. Retry until QEMU listens (or has exited: its log says why).
        self.console = ""
        deadline = time.monotonic() + 30
        while True:
            self.serial_sock = socket.socket(socket.AF_UNIX)
            try:
                self.serial_sock.connect(str(serial))
                break
            except (FileNotFoundError, ConnectionRefusedError) as e:
                self.serial_sock.close()
                if self.qemu.poll() is not None or time.monotonic() > deadline:
                    log = (self.dir / "qemu.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"QEMU's serial console did not open ({e}); qemu.log:\n{log}") from e
                time.sleep(0.05)
        threading.Thread(target=self._read_serial, args=(self.serial_sock,), daemon=True).start()
        self.log(f"boot #{self.boots} started")

    def _read_serial(self, s: socket.socket) -> None:
        """Appends what the serial console prints to console.log (raw bytes) and to
        `self.console` (text). The decoder is incremental: a multi-byte character split across
        two reads (« é » at a read's end) is decoded whole once its last byte arrives, instead
        of becoming two U+FFFD that no pattern matches."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with open(self.dir / "console.log", "ab") as out:
            while True:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    # Bytes of a character the console never finished become U+FFFD.
                    tail = decoder.decode(b"", final=True)
                    if tail:
                        with self._lock:
                            self.console += tail
                    return
                out.write(data)
                out.flush()
                text = decoder.decode(data)
                with self._lock:
                    self.console += text

    def wait_console(self, pattern: str, timeout: float, since: int = 0, fail: str | None = None) -> re.Match:
        """Waits until the console printed `pattern` (regex) after offset `since`."""
        rx = re.compile(pattern)
        bad = re.compile(fail) if fail else None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                text = self.console[since:]
            m = rx.search(strip_ansi(text))
            if m:
                return m
            if bad and (b := bad.search(strip_ansi(text))):
                raise AssertionError(f"console: {b.group(0)!r} while waiting for {pattern!r}")
            if self.qemu and self.qemu.poll() is not None:
                raise BootTimeout(f"QEMU stopped while waiting for {pattern!r}")
            time.sleep(0.5)
        raise BootTimeout(f"console did not show {pattern!r} within {timeout:.0f} s")

    def console_text(self) -> str:
        with self._lock:
            return strip_ansi(self.console)

    def type(self, text: str) -> None:
        assert self.serial_sock is not None
        for ch in text:
            self.serial_sock.sendall(ch.encode())
            time.sleep(0.02)

    def monitor(self, command: str) -> None:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        try:
            s.connect(str(self.dir / "monitor.sock"))
            s.sendall((command + "\n").encode())
            time.sleep(0.5)
        finally:
            s.close()

    def wait_stopped(self, timeout: float) -> bool:
        assert self.qemu is not None
        try:
            self.qemu.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self, timeout: float = 180) -> None:
        """ACPI power button (a clean shutdown), then the plug after `timeout`."""
        if self.qemu is None:
            return
        if self.qemu.poll() is None:
            try:
                self.monitor("system_powerdown")
            except OSError:
                pass
            if not self.wait_stopped(timeout):
                self.log("the guest did not power off: pulling the plug")
                self.kill()
                return
        self._reap()

    def kill(self) -> None:
        if self.qemu is not None and self.qemu.poll() is None:
            self.qemu.send_signal(signal.SIGKILL)
            self.qemu.wait()
        self._reap()

    def _reap(self) -> None:
        if self.serial_sock is not None:
            self.serial_sock.close()
            self.serial_sock = None
        self.qemu = None
        if self.swtpm is not None:
            try:
                self.swtpm.wait(10)
            except subprocess.TimeoutExpired:
                self.swtpm.kill()
                self.swtpm.wait()
            self.swtpm = None


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][AB0-9]|\r")


def strip_ansi(s: str) -> str:
    return ANSI.sub("", s)
