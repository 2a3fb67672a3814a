"""Encrypted backup and restore (docs/backup.md): a box with users, keys, a kept history and
its audit trail is backed up with `civia backup`, restored onto a fresh state directory and
serves the same agent with the same history; its audit trail verifies. Tampered, truncated
and foreign-key archives are refused with nothing written."""

import os
import re
import subprocess
import threading
import time

import httpx

from conftest import TINY, start_civiad
from test_audit import export
from test_privacy import chat, own_key
from test_updates import tool


def civia(config, *args):
    return subprocess.run([tool("civia"), "--config", str(config), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def config_for(template, state, path):
    """`template`'s configuration with another state directory."""
    text = re.sub(r'^state_dir = ".*"$', f'state_dir = "{state}"', template.read_text(), flags=re.M)
    path.write_text(text)
    return path


def test_a_box_is_restored_onto_a_fresh_state_and_serves_the_same_agents(civiad, tmp_path):
    server = civiad(model=TINY)
    alice = own_key(server, "alice")
    r = chat(server, alice, "Rédige un courrier au syndic CANARI-SAUVEGARDE", save=True)
    assert r.status_code == 200, r.text
    conv = r.json()["civia"]["conversation_id"]
    server.stop()

    # The key: printed once (last line), never again; the box keeps the public half only.
    k = civia(server.config, "backup", "key")
    assert k.returncode == 0, k.stderr
    secret = k.stdout.strip().splitlines()[-1]
    assert secret.startswith("AGE-SECRET-KEY-1"), k.stdout
    again = civia(server.config, "backup", "key")
    assert again.returncode == 1 and "shown once" in again.stderr and secret not in again.stdout
    state = server.log.parent / "state"
    assert not [p for p in state.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    key_file = tmp_path / "cle-sauvegarde.txt"
    key_file.write_text(secret + "\n")

    archive = tmp_path / "mairie.civia-backup"
    made = civia(server.config, "backup", "create", "--output", archive)
    assert made.returncode == 0, made.stderr
    raw = archive.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1") and b"alice" not in raw and b"CANARI" not in raw
    assert civia(server.config, "backup", "verify", archive, "--key-file", key_file).returncode == 0
    listed = civia(server.config, "backup", "list", tmp_path)
    assert listed.returncode == 0 and "mairie.civia-backup" in listed.stdout, listed

    # Refusals: nothing written, not even the target directory.
    target_dir = tmp_path / "nouvelle-box"
    target_dir.mkdir()
    target = config_for(server.config, target_dir / "state", tmp_path / "target.toml")
    not_a_key = tmp_path / "pas-une-cle.txt"
    not_a_key.write_text("AGE-SECRET-KEY-1" + "Q" * 58 + "\n")
    tampered = tmp_path / "modifiee.civia-backup"
    middle = len(raw) // 2
    tampered.write_bytes(raw[:middle] + bytes([raw[middle] ^ 1]) + raw[middle + 1:])
    truncated = tmp_path / "tronquee.civia-backup"
    truncated.write_bytes(raw[:-100])
    # An archive of another box (another backup key).
    (tmp_path / "autre").mkdir()
    other = config_for(server.config, tmp_path / "autre", tmp_path / "autre.toml")
    assert civia(other, "backup", "key").returncode == 0
    foreign = tmp_path / "autre.civia-backup"
    assert civia(other, "backup", "create", "--output", foreign).returncode == 0
    for path, key, why in [(tampered, key_file, "damaged"), (truncated, key_file, "damaged"),
                           (foreign, key_file, "not encrypted to this backup key"),
                           (archive, not_a_key, "not a backup key")]:
        r = civia(target, "backup", "restore", path, "--key-file", key)
        assert r.returncode == 1 and why in r.stderr, (path, r.stderr)
        assert not (target_dir / "state").exists(), path

    restored = civia(target, "backup", "restore", archive, "--key-file", key_file)
    assert restored.returncode == 0, restored.stderr
    box = start_civiad(target_dir, model=TINY)
    try:
        # The same agent, with the same key, finds the same history.
        listing = httpx.get(box.url + "/v1/conversations", headers=alice)
        assert listing.status_code == 200 and conv in listing.text, listing.text
        full = httpx.get(box.url + f"/v1/conversations/{conv}", headers=alice).json()
        assert "CANARI-SAUVEGARDE" in str(full)
        assert chat(box, alice, "Et la suite ?").status_code == 200
        audit = civia(box.config, "audit", "verify")
        assert audit.returncode == 0, audit.stdout + audit.stderr
        # The restore is in the restored trail, chained to its head.
        events = [e for e in export(box, box.headers()) if e["event"] == "backup.restored"]
        assert len(events) == 1 and events[0]["detail"]["files"] > 0, events
        # Not onto a running box, not onto a used state without --force.
        r = civia(box.config, "backup", "restore", archive, "--key-file", key_file, "--force")
        assert r.returncode == 1 and "civiad is running" in r.stderr, r.stderr
    finally:
        box.stop()
    r = civia(box.config, "backup", "restore", archive, "--key-file", key_file)
    assert r.returncode == 1 and "not empty" in r.stderr, r.stderr


def test_a_running_box_is_backed_up_while_agents_work_and_restores(civiad, tmp_path):
    """The admin plane's backups (docs/backup.md): the key shown once, a download streamed while
    eight agents chat and keep their history, a backup to the configured destination followed
    to its end; both restore onto a fresh state whose audit trail verifies."""
    nas = tmp_path / "nas"
    nas.mkdir()
    server = civiad(model=TINY, embeddings=False,
                    sections={"backup": {"destination": str(nas), "keep": 1, "max_age_hours": 1}})
    admin = server.headers()
    status = httpx.get(server.url + "/admin/backup", headers=admin).json()
    assert status["key"] is False and status["too_old"] is True and status["last_success"] is None
    assert status["destination"] == str(nas) and status["next_run"] is None
    assert "civia_backup_too_old 1" in httpx.get(server.url + "/metrics").text
    for method, path in [("POST", "/admin/backup"), ("GET", "/admin/backup/download")]:
        r = httpx.request(method, server.url + path, headers=admin)
        assert r.status_code == 409 and r.json()["error"]["code"] == "backup_no_key", r.text
    agents = [own_key(server, f"agent{i}") for i in range(8)]
    # Not an agent's business.
    for method, path in [("GET", "/admin/backup"), ("POST", "/admin/backup/key"),
                         ("GET", "/admin/backup/download"), ("POST", "/admin/backup")]:
        assert httpx.request(method, server.url + path, headers=agents[0]).status_code == 403, path
    r = httpx.post(server.url + "/admin/backup/key", headers=admin)
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store", r.text
    secret = r.json()["key"]
    assert secret.startswith("AGE-SECRET-KEY-1")
    r = httpx.post(server.url + "/admin/backup/key", headers=admin)
    assert r.status_code == 409 and secret not in r.text
    assert r.json()["error"]["code"] == "backup_key_exists"
    # The box keeps the public half only: the secret is in no file of its state.
    state = server.log.parent / "state"
    assert not [p for p in state.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    key_file = tmp_path / "cle.txt"
    key_file.write_text(secret + "\n")
    r = chat(server, agents[0], "Courrier CANARI-EN-LIGNE pour le syndic", save=True)
    assert r.status_code == 200, r.text
    conv = r.json()["civia"]["conversation_id"]

    # Eight agents chat and keep their history while the download is written.
    stop = threading.Event()
    done, refused = [], []

    def work(auth, i):
        n = 0
        while not stop.is_set():
            r = chat(server, auth, f"Question {i}-{n}", save=True)
            if r.status_code != 200:
                refused.append(r.text)
                return
            done.append(r.json()["civia"]["conversation_id"])
            n += 1

    threads = [threading.Thread(target=work, args=(a, i)) for i, a in enumerate(agents)]
    for t in threads:
        t.start()
    time.sleep(1)
    download = tmp_path / "telechargee.civia-backup"
    with httpx.stream("GET", server.url + "/admin/backup/download", headers=admin, timeout=120) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"] == "application/octet-stream"
        assert re.fullmatch(r'attachment; filename="civia-[0-9a-f]{8}-\d{8}T\d{6}Z\.civia-backup"',
                            r.headers["content-disposition"])
        with open(download, "wb") as f:
            for chunk in r.iter_bytes():
                f.write(chunk)
    stop.set()
    for t in threads:
        t.join()
    assert done and not refused, ("no agent finished a request meanwhile", refused)
    raw = download.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1") and b"CANARI-EN-LIGNE" not in raw
    assert civia(server.config, "backup", "verify", download, "--key-file", key_file).returncode == 0

    # To the destination: started, followed to its end.
    r = httpx.post(server.url + "/admin/backup", headers=admin)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while (status := httpx.get(server.url + "/admin/backup", headers=admin).json())["running"]:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    last = status["last_success"]
    assert status["last"] == last and last["ok"] and last["to"] == "destination", status
    assert status["too_old"] is False and status["next_run"]
    # keep = 1: only the newest of this box's archives stays.
    assert [a["name"] for a in status["archives"]] == [last["archive"]]
    assert [p.name for p in nas.iterdir()] == [last["archive"]]
    metrics = httpx.get(server.url + "/metrics").text
    assert "civia_backup_too_old 0" in metrics and "civia_backups_succeeded_total 2" in metrics
    trail = [e["event"] for e in export(server, admin)]
    assert {"backup.key_created", "backup.created"} <= set(trail)
    assert trail.count("backup.created") == 2
    server.stop()

    for n, archive in enumerate((download, nas / last["archive"])):
        # Short: the admin socket's path must fit in sun_path.
        fresh = tmp_path / f"r{n}"
        fresh.mkdir()
        target = config_for(server.config, fresh / "state", tmp_path / f"r{n}.toml")
        r = civia(target, "backup", "restore", archive, "--key-file", key_file)
        assert r.returncode == 0, r.stderr
        box = start_civiad(fresh, model=TINY, embeddings=False)
        try:
            audit = civia(box.config, "audit", "verify")
            assert audit.returncode == 0, audit.stdout + audit.stderr
            full = httpx.get(box.url + f"/v1/conversations/{conv}", headers=agents[0])
            assert full.status_code == 200 and "CANARI-EN-LIGNE" in full.text, full.text
            assert chat(box, agents[3], "Et ensuite ?").status_code == 200
        finally:
            box.stop()


def test_a_backup_killed_midway_leaves_no_archive_and_the_next_one_cleans_up(civiad, tmp_path):
    """SIGKILL while a backup is written to the destination: no archive appears there, only
    this box's `.partial`, which the next backup removes; the snapshot's database copies are
    gone from the state directory; the next backup restores."""
    nas = tmp_path / "nas"
    nas.mkdir()
    sections = {"backup": {"destination": str(nas)}}
    server = civiad(model=TINY, embeddings=False, sections=sections)
    admin = server.headers()
    assert httpx.post(server.url + "/admin/backup/key", headers=admin).status_code == 201
    # A large file of the commune's (a scanned register) makes the backup take a while.
    state = server.log.parent / "state"
    big = state / "knowledge" / "registre-numerise.bin"
    big.parent.mkdir(exist_ok=True)
    with open(big, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 22))
    r = httpx.post(server.url + "/admin/backup", headers=admin)
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while True:
        running = httpx.get(server.url + "/admin/backup", headers=admin).json()["running"]
        assert running and time.monotonic() < deadline, "the backup ended before it could be killed"
        if running["progress"]["bytes_done"] > 0:
            break
        time.sleep(0.01)
    server.proc.kill()
    server.proc.wait()
    left = [p.name for p in nas.iterdir()]
    assert len(left) == 1 and left[0].endswith(".civia-backup.partial"), left

    # As if the kill had come while a database was being copied.
    (state / "backup" / "snapshot").mkdir(exist_ok=True)
    (state / "backup" / "snapshot" / "3.db").write_bytes(b"SQLite format 3\0 copy")
    again = start_civiad(server.log.parent, model=TINY, embeddings=False, sections=sections)
    try:
        # The killed snapshot's database copies are gone at start (they may hold what agents
        # erase later).
        assert not list((state / "backup" / "snapshot").glob("*"))
        status = httpx.get(again.url + "/admin/backup", headers=admin).json()
        assert status["last_success"] is None and status["too_old"] and status["archives"] == []
        assert httpx.post(again.url + "/admin/backup", headers=admin).status_code == 202
        deadline = time.monotonic() + 120
        while (status := httpx.get(again.url + "/admin/backup", headers=admin).json())["running"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["last"]["ok"], status
        assert [p.name for p in nas.iterdir()] == [status["last"]["archive"]]
        assert not list((state / "backup" / "snapshot").iterdir())
    finally:
        again.stop()
