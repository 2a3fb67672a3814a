"""Signed updates through the daemon: the integrator uploads model and system bundles built
and signed with the real `civia-bundle` tool; the local admin installs from a path with the
`civia` CLI. A model that does not load is rolled back while the box keeps serving; a system
bundle lands on the inactive slot (plain files standing for the partitions, a directory for
the ESP) and the next boot on it is blessed once the model loads.
"""

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import DEV_KEY, MODEL_DIR, REPO, TINY, model_path, start_civiad

COMPATIBLE = "civia-test-box"
BIN_DIR = Path(os.environ.get("CIVIAD_BIN", REPO / "target" / "release" / "civiad")).parent


def tool(name: str) -> Path:
    path = BIN_DIR / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: build the workspace (cargo build --release --workspace)", pytrace=False)
    return path


def run(*args, cwd=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    bundle = tool("civia-bundle")
    for name in ("root", "sign", "stranger"):
        run(bundle, "keygen", d / name)
    run(bundle, "root-new", "--version", "1", "--root-key", d / "root.pub", "--root-threshold", "1",
        "--bundle-key", d / "sign.pub", "--bundle-threshold", "1", "-o", d / "root.json")
    run(bundle, "root-sign", "--key", d / "root.key", d / "root.json")
    return d


def model_bundle(keys, out: Path, version: str, gguf: Path, model_id=TINY, key="sign") -> Path:
    bundle = tool("civia-bundle")
    dossier = out.parent / "dossier.json"
    dossier.write_text('{"name": "test model", "licence": "Apache-2.0"}')
    run(bundle, "build", "--kind", "model", "--compatible", COMPATIBLE, "--version", version,
        "--floor", "0.0.0", "--model-id", model_id, "--model", gguf, "--dossier", dossier, "-o", out)
    run(bundle, "sign", "--key", keys / f"{key}.key", out)
    return out


def update_section(keys, **extra) -> dict:
    return {"image_root": str(keys / "root.json"), "compatible": COMPATIBLE, **extra}


def user_key(server, name, role) -> dict:
    h = server.headers()
    r = httpx.post(server.url + "/admin/users", headers=h, json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    r = httpx.post(server.url + "/admin/keys", headers=h, json={"user": name})
    assert r.status_code == 201, r.text
    auth = {"authorization": f"Bearer {r.json()['key']}"}
    accept_charter(server, auth)
    return auth


def accept_charter(server, auth: dict) -> None:
    """The user reads the current charter and accepts it (needed before using the model)."""
    version = httpx.get(server.url + "/v1/charter", headers=auth).json()["version"]
    r = httpx.post(server.url + "/v1/charter/accept", headers=auth, json={"version": version})
    assert r.status_code == 200, r.text


def upload(server, kind, path, headers):
    with open(path, "rb") as f:
        return httpx.post(f"{server.url}/admin/updates/{kind}", headers=headers, content=f, timeout=120)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def loaded_sha(server) -> str:
    for _ in range(200):
        h = httpx.get(server.url + "/health").json()
        if h["model"]["loaded"]:
            return h["model"]["sha256"]
        time.sleep(0.1)
    pytest.fail(f"model never loaded: {h}")


def chat_ok(server):
    r = httpx.post(server.url + "/v1/chat/completions", headers=server.headers(), timeout=60,
                   json={"model": TINY, "max_tokens": 2, "messages": [{"role": "user", "content": "Bonjour"}]})
    assert r.status_code == 200, r.text


def test_model_bundles_install_switch_and_roll_back(civiad, keys, tmp_path):
    server = civiad(model=TINY, update=update_section(keys, booted_slot="a", running_version="1.0.0"))
    presta = user_key(server, "presta", "integrator")
    agent = user_key(server, "agent", "agent")
    new_gguf = model_path("tiny-mistral-notemplate")
    good = model_bundle(keys, tmp_path / "m-1.0.0.civia", "1.0.0", new_gguf)

    # Only the integrator installs; refused bundles change nothing.
    r = upload(server, "model", good, agent)
    assert r.status_code == 403, r.text
    tampered = tmp_path / "tampered.civia"
    data = bytearray(good.read_bytes())
    data[-100] ^= 0x01
    tampered.write_bytes(bytes(data))
    r = upload(server, "model", tampered, presta)
    assert r.status_code == 400 and r.json()["error"]["code"] == "hash_mismatch", r.text
    stranger = model_bundle(keys, tmp_path / "stranger.civia", "1.0.0", new_gguf, key="stranger")
    r = upload(server, "model", stranger, presta)
    assert r.status_code == 400 and r.json()["error"]["code"] in ("unknown_key", "below_threshold"), r.text
    other = model_bundle(keys, tmp_path / "other.civia", "1.0.0", new_gguf, model_id="autre-modele")
    r = upload(server, "model", other, presta)
    assert r.status_code == 409 and r.json()["error"]["code"] == "model_mismatch", r.text
    assert loaded_sha(server) == sha256(model_path(TINY))

    # A good bundle: installed, loaded by a new worker, confirmed.
    r = upload(server, "model", good, presta)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "1.0.0" and r.json()["sha256"] == sha256(new_gguf)
    assert loaded_sha(server) == sha256(new_gguf)
    chat_ok(server)

    # A signed bundle whose model does not load: rolled back, the box keeps serving 1.0.0.
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(4096))
    r = upload(server, "model", model_bundle(keys, tmp_path / "m-1.1.0.civia", "1.1.0", broken), presta)
    assert r.status_code == 422 and r.json()["error"]["code"] == "model_load_failed", r.text
    assert loaded_sha(server) == sha256(new_gguf)
    chat_ok(server)
    status = httpx.get(server.url + "/admin/updates", headers=presta).json()
    assert status["model"]["current"] == "1.0.0", status
    assert status["system"]["enabled"] is True and status["system"]["booted_slot"] == "a"

    # Replaying an old bundle is refused.
    r = upload(server, "model", good, presta)
    assert r.status_code == 400 and r.json()["error"]["code"] in ("not_newer", "below_floor"), r.text

    # The local admin installs from a path (USB stick) with the CLI.
    v12 = model_bundle(keys, tmp_path / "m-1.2.0.civia", "1.2.0", model_path(TINY))
    cli = subprocess.run([tool("civia"), "--config", server.config, "update", "install", "--model", v12],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert loaded_sha(server) == sha256(model_path(TINY))
    # Over the network nobody may name a path on the box.
    r = httpx.post(server.url + "/admin/updates/install-path", headers=presta,
                   json={"kind": "model", "path": str(v12)})
    assert r.status_code == 403, r.text

    # Every step is in the audit trail.
    r = httpx.get(server.url + "/admin/audit/export", headers=server.headers(),
                  params={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})
    names = {json.loads(line)["event"] for line in r.text.splitlines()}
    assert {"update.refused", "update.model_installed", "update.model_confirmed",
            "update.model_rolled_back"} <= names, names


def test_system_bundle_goes_to_the_inactive_slot_and_the_trial_boot_is_blessed(keys, tmp_path):
    parts = tmp_path / "disk"
    parts.mkdir()
    for name in ("usr-a", "usr-a-verity", "usr-b", "usr-b-verity"):
        (parts / name).write_bytes(bytes(4 << 20))
    esp = tmp_path / "esp"
    esp.mkdir()
    usr = tmp_path / "usr.img"
    usr.write_bytes(os.urandom(1 << 20))
    out = run("veritysetup", "format", usr, tmp_path / "usr.verity")
    root_hash = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Root hash"))
    uki = tmp_path / "civia.efi"
    uki.write_bytes(b"MZ" + os.urandom(64 << 10))
    bundle_path = tmp_path / "civia-1.1.0.civia"
    run(tool("civia-bundle"), "build", "--kind", "system", "--compatible", COMPATIBLE, "--version", "1.1.0",
        "--floor", "1.0.0", "--usr", usr, "--verity", tmp_path / "usr.verity", "--root-hash", root_hash,
        "--uki", uki, "-o", bundle_path)
    run(tool("civia-bundle"), "sign", "--key", keys / "sign.key", bundle_path)
    slots = {"esp": str(esp), "slot_a_usr": str(parts / "usr-a"), "slot_a_verity": str(parts / "usr-a-verity"),
             "slot_b_usr": str(parts / "usr-b"), "slot_b_verity": str(parts / "usr-b-verity")}
    work = tmp_path / "box"
    work.mkdir()
    server = start_civiad(work, model=TINY, update=update_section(keys, booted_slot="a", running_version="1.0.0", **slots))
    try:
        presta = user_key(server, "presta", "integrator")
        before = {n: sha256(parts / n) for n in ("usr-a", "usr-a-verity")}
        r = upload(server, "system", bundle_path, presta)
        assert r.status_code == 200, r.text
        assert r.json() == {"kind": "system", "version": "1.1.0", "slot": "b", "reboot_required": True}
        assert (parts / "usr-b").read_bytes()[: 1 << 20] == usr.read_bytes()
        assert {n: sha256(parts / n) for n in ("usr-a", "usr-a-verity")} == before, "the running slot is untouched"
        status = httpx.get(server.url + "/admin/updates", headers=presta).json()["system"]
        assert status["pending"] == {"slot": "b", "version": "1.1.0"}, status
        ukis = sorted(p.name for p in esp.rglob("*.efi"))
        assert any("+3" in n for n in ukis), ukis
    finally:
        server.stop()

    # "Reboot": systemd-boot picks the new entry (slot b); the daemon's health check blesses it.
    server = start_civiad(work, model=TINY, update=update_section(keys, booted_slot="b", running_version="1.1.0", **slots))
    try:
        presta = {"authorization": f"Bearer {DEV_KEY}"}
        for _ in range(100):
            status = httpx.get(server.url + "/admin/updates", headers=presta).json()["system"]
            if status["pending"] is None:
                break
            time.sleep(0.1)
        assert status["last_outcome"]["result"] == "blessed", status
        assert status["floor"] == "1.0.0", status
        ukis = sorted(p.name for p in esp.rglob("*.efi"))
        assert not any("+" in n for n in ukis), f"boot counter dropped when blessed: {ukis}"
    finally:
        server.stop()


def test_oversized_uploads_and_boxes_without_root_metadata(civiad, keys, tmp_path):
    bundle = model_bundle(keys, tmp_path / "m.civia", "1.0.0", model_path(TINY))
    small = civiad(model=TINY, update=update_section(keys, max_upload_bytes=4096))
    r = upload(small, "model", bundle, user_key(small, "presta", "integrator"))
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large", r.text
    chat_ok(small)
    bare = civiad(model=TINY, update={"image_root": str(tmp_path / "absent.json")})
    presta = user_key(bare, "presta", "integrator")
    for kind in ("model", "system"):
        r = upload(bare, kind, bundle, presta)
        assert r.status_code == 409 and r.json()["error"]["code"] == "updates_off", r.text
    status = httpx.get(bare.url + "/admin/updates", headers=presta).json()
    assert status["system"]["enabled"] is False and "absent.json" in status["system"]["reason"]


def test_an_install_finishes_and_keeps_its_lock_when_the_client_hangs_up(civiad, keys, tmp_path):
    """The integrator's connection drops right after the upload: the install goes on to the
    end (the new model is loaded and confirmed, not left half-activated) and holds the
    update lock the whole time (a second upload meanwhile is refused, never interleaved)."""
    import socket
    from urllib.parse import urlsplit
    server = civiad(model=TINY, update=update_section(keys, booted_slot="a", running_version="1.0.0"))
    presta = user_key(server, "presta", "integrator")
    new_gguf = model_path("tiny-mistral-notemplate")
    good = model_bundle(keys, tmp_path / "m-1.0.0.civia", "1.0.0", new_gguf)
    body = good.read_bytes()
    u = urlsplit(server.url)
    s = socket.create_connection((u.hostname, u.port))
    s.sendall((f"POST /admin/updates/model HTTP/1.1\r\nHost: {u.hostname}\r\n"
               f"Authorization: {presta['authorization']}\r\nContent-Length: {len(body)}\r\n"
               "Content-Type: application/octet-stream\r\n\r\n").encode() + body)
    s.close()  # hang up before the answer
    # A second upload while the first is still at work is refused with `update_in_progress`
    # (or, once the first is done, as a replay); never a second install at the same time.
    second = upload(server, "model", good, presta)
    assert second.status_code in (400, 409), second.text
    assert second.json()["error"]["code"] in ("update_in_progress", "not_newer", "below_floor"), second.text
    # The first install went to its end: the new model is loaded, and confirmed.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = httpx.get(server.url + "/admin/updates", headers=presta).json()
        if status["model"]["current"] == "1.0.0" and loaded_sha(server) == sha256(new_gguf):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the install stopped with the client: {status}, loaded {loaded_sha(server)}")
    chat_ok(server)
    r = httpx.get(server.url + "/admin/audit/export", headers=server.headers(),
                  params={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})
    names = [json.loads(line)["event"] for line in r.text.splitlines()]
    assert "update.model_confirmed" in names, names
