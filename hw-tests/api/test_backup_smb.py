"""Backups to the mairie's NAS over SMB (docs/backup.md), against a real Samba server (`smbd`)
in a network namespace this test creates: the NAS password given in the console is kept
encrypted (in no file of the state, never on smbclient's command line or in its environment),
a wrong password or a NAS that is down is a visible failure (status, /metrics, audit), archives
are written whole then renamed, kept to `keep` without touching another box's files, and
verify with the backup key. And the image's firewall, loaded in a namespace, opens exactly
the NAS's address and port, for civiad's user only."""

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import REPO, TINY, start_civiad
from test_audit import export
from test_backup import civia, config_for

PASSWORD = "Mot-de-passe NAS 2026 é!"


def sh(*args, check=True):
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 or not check, (args, p.stderr)
    return p


@pytest.fixture
def nas(tmp_path):
    """smbd serving `sauvegardes` (folder `civia` inside) at 10.77.<n>.2:445 in its own
    namespace, joined to this one by a veth pair; signing and SMB 3 required, one account."""
    for tool in ("smbd", "smbpasswd", "smbclient"):
        assert shutil.which(tool), f"{tool} is missing: run appliance/scripts/deps.sh"
    n = os.getpid() % 200 + 20
    ns, host_if, nas_if = f"civia-nas-{n}", f"cvnas{n}h", f"cvnas{n}n"
    here, there = f"10.77.{n}.1", f"10.77.{n}.2"
    root = tmp_path / "samba"
    share = root / "share"
    for d in ("private", "lock", "state", "cache", "pid"):
        (root / d).mkdir(parents=True)
    (share / "civia").mkdir(parents=True)
    conf = root / "smb.conf"
    conf.write_text(f"""[global]
server role = standalone server
interfaces = {there}/30
bind interfaces only = yes
private dir = {root}/private
lock directory = {root}/lock
state directory = {root}/state
cache directory = {root}/cache
pid directory = {root}/pid
passdb backend = tdbsam:{root}/private/passdb.tdb
server min protocol = SMB3
server signing = mandatory
disable netbios = yes
load printers = no
printing = bsd
printcap name = /dev/null
log file = {root}/log.%m
[sauvegardes]
path = {share}
read only = no
valid users = nobody
force user = root
""")
    p = subprocess.run(["smbpasswd", "-c", str(conf), "-s", "-a", "nobody"],
                       input=f"{PASSWORD}\n{PASSWORD}\n", capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    sh("ip", "netns", "del", ns, check=False)
    sh("ip", "link", "del", host_if, check=False)
    sh("ip", "netns", "add", ns)
    proc = None
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", nas_if, "netns", ns)
        sh("ip", "addr", "add", f"{here}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{there}/30", "dev", nas_if)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", nas_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        log = open(root / "smbd.out", "wb")
        # Its own session: smbd signals its process group when it stops.
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "smbd", "--foreground", "--no-process-group",
                                 "-s", str(conf), "--debug-stdout"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((there, 445), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (root / "smbd.out").read_text()
                assert time.monotonic() < deadline, "smbd did not listen"
                time.sleep(0.2)
        yield {"address": there, "share": share, "proc": proc, "root": root, "ns": ns}
    finally:
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        sh("ip", "link", "del", host_if, check=False)
        sh("ip", "netns", "del", ns, check=False)


def wait_done(server, admin):
    deadline = time.monotonic() + 120
    while (status := httpx.get(server.url + "/admin/backup", headers=admin).json())["running"]:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    return status


def watch_smbclient(seen, stop, status):
    """Collects the command lines and environments of the smbclient processes that run, and
    their /proc status (capabilities, no_new_privs)."""
    while not stop.is_set():
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() != "smbclient":
                    continue
                seen.append(Path(f"/proc/{pid}/cmdline").read_bytes()
                            + Path(f"/proc/{pid}/environ").read_bytes())
                status.append(Path(f"/proc/{pid}/status").read_text())
            except OSError:
                continue
        time.sleep(0.002)


def test_scheduled_backups_go_to_a_samba_share(civiad, nas, tmp_path):
    url = f"//{nas['address']}/sauvegardes/civia"
    server = civiad(model=TINY, embeddings=False, sections={
        "backup": {"smb": url, "smb_user": "nobody", "keep": 2, "max_age_hours": 1}})
    admin = server.headers()
    status = httpx.get(server.url + "/admin/backup", headers=admin).json()
    assert status["destination"] == url, status
    assert status["smb"] == {"user": "nobody", "domain": None, "encrypt": False,
                             "password_set": False}, status
    r = httpx.post(server.url + "/admin/backup/key", headers=admin)
    assert r.status_code == 201, r.text
    key_file = tmp_path / "cle.txt"
    key_file.write_text(r.json()["key"] + "\n")
    # A HEAD of the download makes no backup.
    r = httpx.head(server.url + "/admin/backup/download", headers=admin)
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert httpx.get(server.url + "/admin/backup", headers=admin).json()["last"] is None
    r = httpx.post(server.url + "/admin/backup", headers=admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "backup_no_smb_password", r.text
    # Empty, overlong, malformed: refused; an agent may not set it.
    for body in ({"password": ""}, {"password": "x" * 257}, {"mot": "x"}, [1],
                 {"password": "coupé\nici"}):
        r = httpx.put(server.url + "/admin/backup/smb-password", headers=admin, json=body)
        assert r.status_code == 400, (body, r.text)

    # A wrong password: the backup fails, visibly.
    r = httpx.put(server.url + "/admin/backup/smb-password", headers=admin,
                  json={"password": "pas le bon"})
    assert r.status_code == 204, r.text
    assert httpx.post(server.url + "/admin/backup", headers=admin).status_code == 202
    status = wait_done(server, admin)
    assert status["last"], (status, server.log.read_text()[-3000:])
    assert status["last"]["ok"] is False and "NT_STATUS_LOGON_FAILURE" in status["last"]["error"]
    assert "NT_STATUS_LOGON_FAILURE" in status["destination_error"], status
    metrics = httpx.get(server.url + "/metrics").text
    assert "civia_backups_failed_total 1" in metrics and "civia_backup_too_old 1" in metrics

    r = httpx.put(server.url + "/admin/backup/smb-password", headers=admin,
                  json={"password": PASSWORD})
    assert r.status_code == 204 and PASSWORD not in r.text
    state = server.log.parent / "state"
    assert not [p for p in state.rglob("*")
                if p.is_file() and PASSWORD.encode() in p.read_bytes()], "the password is in clear"
    assert httpx.get(server.url + "/admin/backup", headers=admin).json()["smb"]["password_set"]
    # The status answers at once and lists the NAS in the background: pending, then listed.
    deadline = time.monotonic() + 60
    while (status := httpx.get(server.url + "/admin/backup", headers=admin).json())["listing_pending"]:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert "destination_error" not in status and status["archives"] == [], status

    # Another box's archive and a file of the mairie's in the same folder: never touched.
    folder = nas["share"] / "civia"
    foreign = folder / "civia-0badc0de-20250101T020000Z.civia-backup"
    foreign.write_bytes(b"age-encryption.org/v1\nanother box")
    (folder / "compte-rendu.odt").write_bytes(b"mairie")
    seen, stop, proc_status = [], threading.Event(), []
    watcher = threading.Thread(target=watch_smbclient, args=(seen, stop, proc_status))
    watcher.start()
    names = []
    try:
        for _ in range(3):
            assert httpx.post(server.url + "/admin/backup", headers=admin).status_code == 202
            status = wait_done(server, admin)
            assert status["last"]["ok"], status
            names.append(status["last"]["archive"])
            time.sleep(1.1)  # names carry the second
    finally:
        stop.set()
        watcher.join()
    assert seen, "no smbclient seen at work"
    assert not [s for s in seen if PASSWORD.encode() in s], "the password on a command line"
    # smbclient parses what the NAS sends: it holds none of civiad's privileges (civiad runs
    # as root here, which makes the check stronger than on a box).
    for st in proc_status:
        fields = dict(line.split(":\t", 1) for line in st.splitlines() if ":\t" in line)
        if fields.get("Name") != "smbclient":
            continue
        for cap in ("CapPrm", "CapEff", "CapAmb", "CapInh"):
            assert int(fields[cap], 16) == 0, (cap, fields[cap])
        assert fields["NoNewPrivs"].strip() == "1"
    # keep = 2: the two newest of this box, whole, nothing partial left.
    ours = sorted(p.name for p in folder.iterdir() if p.name.startswith(names[0][:15]))
    assert ours == sorted(names[1:]), (ours, names)
    assert foreign.exists() and (folder / "compte-rendu.odt").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]
    status = httpx.get(server.url + "/admin/backup", headers=admin).json()
    assert [a["name"] for a in status["archives"]] == names[:0:-1], status
    assert status["too_old"] is False and "destination_error" not in status
    assert status["archives"][0]["bytes"] == (folder / names[-1]).stat().st_size
    metrics = httpx.get(server.url + "/metrics").text
    assert "civia_backups_succeeded_total 3" in metrics and "civia_backup_too_old 0" in metrics
    trail = export(server, admin)
    events = [e["event"] for e in trail]
    assert events.count("backup.smb_password_set") == 2 and events.count("backup.created") == 3
    assert PASSWORD not in str(trail)

    # The NAS goes down: the failure is told, the last good backup stays.
    nas["proc"].terminate()
    nas["proc"].wait(10)
    assert httpx.post(server.url + "/admin/backup", headers=admin).status_code == 202
    status = wait_done(server, admin)
    assert status["last"]["ok"] is False and status["last_success"]["archive"] == names[-1]
    assert status["destination_error"], status

    # A NAS that takes the connection and never answers: the console's status does not wait
    # for it (smbclient gives up after 30 s; the status answers from what it saw last).
    silent = subprocess.Popen(["ip", "netns", "exec", nas["ns"], "python3", "-c", (
        "import socket, time\ns = socket.socket()\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('{nas['address']}', 445))\ns.listen(8)\nheld = []\n"
        "while True:\n    held.append(s.accept())\n")])
    try:
        deadline = time.monotonic() + 10
        while True:  # the silent listener is the one answering
            try:
                socket.create_connection((nas["address"], 445), timeout=1).close()
                break
            except OSError:
                assert silent.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        r = httpx.put(server.url + "/admin/backup/smb-password", headers=admin,
                      json={"password": PASSWORD})
        assert r.status_code == 204
        for _ in range(3):
            r = httpx.get(server.url + "/admin/backup", headers=admin, timeout=15)
            assert r.status_code == 200 and r.json()["smb"]["password_set"], r.text
    finally:
        silent.kill()
    server.stop()

    # What the NAS holds opens with the backup key.
    for name in names[1:]:
        r = civia(server.config, "backup", "verify", folder / name, "--key-file", key_file)
        assert r.returncode == 0, r.stderr

    # The password follows the backup: a box restored from it opens it (same identity).
    fresh = tmp_path / "r"
    fresh.mkdir()
    target = config_for(server.config, fresh / "state", tmp_path / "r.toml")
    r = civia(target, "backup", "restore", folder / names[-1], "--key-file", key_file)
    assert r.returncode == 0, r.stderr
    box = start_civiad(fresh, model=TINY, embeddings=False, sections={
        "backup": {"smb": url, "smb_user": "nobody"}})
    try:
        status = httpx.get(box.url + "/admin/backup", headers=box.headers()).json()
        assert status["smb"]["password_set"] is True, status
    finally:
        box.stop()


FIREWALL_PROBE = """
import os, socket, sys
uid, addr, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if uid:
    os.setgid(uid)
    os.setuid(uid)
try:
    socket.create_connection((addr, port), timeout=3).close()
    print("open")
except OSError as e:
    print("closed", e)
"""

LISTENER = """
import socket, threading
def serve(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    while True:
        s.accept()[0].close()
for p in (445, 446):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
threading.Event().wait()
"""


def test_the_image_firewall_opens_exactly_the_nas_for_civiads_user(tmp_path):
    """image/build's nftables.conf (rendered by the build's own lines) in a box namespace, then
    `civia backup firewall` as civia-backup-egress.service applies it: civiad's uid (900)
    reaches the NAS's SMB port; another port, another uid (root, the workers') do not; without
    `[backup] smb`, nothing."""
    assert shutil.which("nft"), "nft is missing: run appliance/scripts/deps.sh"
    build = (REPO / "image" / "build").read_text()
    start = build.index("LAN4=() LAN6=()")
    end = build.index("\nEOF\n", build.index('cat > "$R/etc/nftables.conf"')) + 5
    n = os.getpid() % 200 + 20
    box, lan, box_if, lan_if = f"civia-fwbox-{n}", f"civia-fwlan-{n}", f"cvfw{n}b", f"cvfw{n}l"
    here, there = f"10.78.{n}.1", f"10.78.{n}.2"
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run(["bash", "-euc", build[start:end]], check=True, env={
        "PATH": os.environ["PATH"], "R": str(root), "LAN": f"10.78.{n}.0/30", "NTP": "",
        "VERSION": "test"})
    conf = root / "etc" / "nftables.conf"
    assert "@backup4" in conf.read_text()

    def config(backup):
        path = tmp_path / "civia.toml"
        path.write_text(f'state_dir = "{tmp_path / "state"}"\n[model]\npath = "/m.gguf"\n'
                        f"[backup]\n{backup}\n")
        rules = tmp_path / "rules.nft"
        r = civia(path, "backup", "firewall", "--output", rules)
        assert r.returncode == 0, r.stderr
        sh("ip", "netns", "exec", box, "nft", "-f", str(rules))
        return rules.read_text()

    def probe(uid, port, addr=there):
        # The system Python: the probe drops to another uid, which may not read a user's Python.
        return sh("ip", "netns", "exec", box, "/usr/bin/python3", "-c", FIREWALL_PROBE,
                  str(uid), addr, str(port), check=False).stdout.strip() or "error"

    for ns in (box, lan):
        sh("ip", "netns", "del", ns, check=False)
        sh("ip", "netns", "add", ns)
    listener = None
    try:
        sh("ip", "link", "add", box_if, "netns", box, "type", "veth", "peer", "name", lan_if,
           "netns", lan)
        for ns, dev, addr in ((box, box_if, here), (lan, lan_if, there)):
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "netns", "exec", ns, "ip", "link", "set", dev, "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        listener = subprocess.Popen(["ip", "netns", "exec", lan, "python3", "-c", LISTENER])
        sh("ip", "netns", "exec", box, "nft", "-f", str(conf))
        # Before the service runs: closed to all.
        assert probe(900, 445).startswith("closed")
        deadline = time.monotonic() + 10
        rules = config(f'smb = "//{there}/sauvegardes"\nsmb_user = "civia"')
        assert f"add element inet civia backup4 {{ {there} . 445 }}" in rules, rules
        while (seen := probe(900, 445)) != "open":
            assert time.monotonic() < deadline, seen
            time.sleep(0.2)
        for uid, port, addr in ((900, 446, there), (0, 445, there), (60600, 445, there),
                                (900, 445, f"10.78.{n}.3")):
            assert probe(uid, port, addr).startswith("closed"), (uid, port, addr)
        # Port and address as configured, and closed again without a NAS.
        rules = config(f'smb = "//{there}/sauvegardes"\nsmb_user = "civia"\nsmb_port = 446')
        assert probe(900, 446) == "open" and probe(900, 445).startswith("closed")
        config('keep = 3')
        assert probe(900, 446).startswith("closed")
    finally:
        if listener:
            listener.kill()
        for ns in (box, lan):
            sh("ip", "netns", "del", ns, check=False)


def test_a_full_destination_is_refused_before_writing(civiad, tmp_path):
    """A destination with less room than the archive needs: refused before anything is written
    (a half-written archive would fill the disk, then be removed), the failure told."""
    usb = tmp_path / "usb"
    usb.mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(usb))
    try:
        server = civiad(model=TINY, embeddings=False, sections={"backup": {"destination": str(usb)}})
        admin = server.headers()
        assert httpx.post(server.url + "/admin/backup/key", headers=admin).status_code == 201
        assert httpx.post(server.url + "/admin/backup", headers=admin).status_code == 202
        status = wait_done(server, admin)
        assert status["last"]["ok"] is False and "not enough space" in status["last"]["error"], status
        assert list(usb.iterdir()) == [], "something was written"
        trail = export(server, admin)
        failed = [e for e in trail if e["event"] == "backup.failed"]
        assert failed and failed[-1]["detail"]["reason"] == "no_space", failed
        server.stop()
    finally:
        sh("umount", str(usb), check=False)
