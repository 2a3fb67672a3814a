"""The audit trail on the running daemon: linked, fsynced events per model request with
hashes and never text, AI-generated marking, verification and export through the admin API
and the `civia` CLI, tamper detection, and a SIGKILL while eight clients stream.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from conftest import REPO, TINY, model_path, start_civiad
from test_updates import tool, user_key

SCHEMA = json.loads((REPO / "appliance" / "civia-audit" / "audit-entry.schema.json").read_text())


def chat_body(text: str, stream=False, max_tokens=6) -> bytes:
    return json.dumps({"model": TINY, "max_tokens": max_tokens, "stream": stream,
                       "messages": [{"role": "user", "content": text}]}).encode()


def export(server, headers) -> list[dict]:
    r = httpx.get(server.url + "/admin/audit/export", headers=headers,
                  params={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line]


def cli(server, *args):
    return subprocess.run([tool("civia"), "--config", server.config, *args],
                          capture_output=True, text=True, timeout=60)


def files_containing(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_requests_are_audited_marked_and_never_written_in_clear(civiad):
    server = civiad(model=TINY)
    agent = {**user_key(server, "agent", "agent"), "content-type": "application/json"}
    dpo = user_key(server, "dpo", "dpo")
    canary = f"CANARI-{uuid.uuid4().hex}"
    body = chat_body(f"Mon numéro secret est {canary}")
    r = httpx.post(server.url + "/v1/chat/completions", headers=agent, content=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["x-civia-ai-generated"] == "true"
    marking = r.json()["civia"]
    assert marking["ai_generated"] is True and marking["model"] == TINY and len(marking["model_sha256"]) == 64
    answer = r.json()["choices"][0]["message"]["content"]
    with httpx.stream("POST", server.url + "/v1/chat/completions", headers=agent, timeout=60,
                      content=chat_body(canary, stream=True)) as s:
        assert s.headers["x-civia-ai-generated"] == "true"
        chunks = [line[6:] for line in s.iter_lines() if line.startswith("data: ")]
    assert chunks[-1] == "[DONE]"
    assert any(json.loads(c).get("civia", {}).get("ai_generated") for c in chunks[:-1])

    # The DPO may not use the model: refused, and that refusal is audited too.
    r = httpx.post(server.url + "/v1/chat/completions", headers={**dpo, "content-type": "application/json"},
                   content=chat_body("x"))
    assert r.status_code == 403, r.text

    # An agent may not read the audit log; the DPO may, and that reading is itself audited.
    assert httpx.get(server.url + "/admin/audit/verify", headers=agent).status_code == 403
    entries = export(server, dpo)
    validator = Draft202012Validator(SCHEMA)
    for e in entries:
        errors = list(validator.iter_errors(e))
        assert not errors, (e, [x.message for x in errors])
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    first = [e for e in entries if e.get("prompt_sha256") == hashlib.sha256(body).hexdigest()]
    assert len(first) == 1, entries
    rid = first[0]["request_id"]
    linked = [e["event"] for e in entries if e.get("request_id") == rid]
    assert linked == ["request.received", "request.admitted", "request.completed"], linked
    done = first[0]
    assert done["event"] == "request.completed" and done["status"] == 200
    assert done["output_sha256"] == hashlib.sha256(answer.encode()).hexdigest()
    assert done["model_sha256"] == marking["model_sha256"] and done["role"] == "agent"
    assert len(done["user"]) == 32 and "agent" not in done["user"], "a pseudonym, not the name"
    refused = [e for e in entries if e["event"] == "request.refused"]
    assert [(e["role"], e["status"], e["detail"]["code"]) for e in refused] == [("dpo", 403, "permission_denied")]
    assert any(e["event"] == "audit.read" for e in export(server, dpo))

    # The canary is nowhere in the state directory (audit, store, keys) nor in the journal.
    state = server.log.parent / "state"
    assert files_containing(state, canary.encode()) == []
    assert canary not in server.log.read_text(errors="replace")

    r = cli(server, "audit", "verify")
    assert r.returncode == 0 and "verified" in r.stdout, r.stdout + r.stderr
    csv = cli(server, "audit", "export", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z", "--csv")
    assert csv.returncode == 0 and csv.stdout.splitlines()[0].startswith("seq,"), csv.stdout[:200]


def test_verify_names_an_edited_line(civiad):
    server = civiad(model=TINY)
    agent = {**user_key(server, "agent", "agent"), "content-type": "application/json"}
    for i in range(3):
        assert httpx.post(server.url + "/v1/chat/completions", headers=agent, content=chat_body(f"q{i}"),
                          timeout=60).status_code == 200
    segment = sorted((server.log.parent / "state" / "audit").glob("*.jsonl"))[-1]
    lines = segment.read_bytes().splitlines(keepends=True)
    tampered = lines[4].replace(b'"status":200', b'"status":201') if b'"status":200' in lines[4] else \
        lines[4].replace(b'"request.', b'"requesT.', 1)
    assert tampered != lines[4]
    segment.write_bytes(b"".join(lines[:4] + [tampered] + lines[5:]))
    try:
        r = cli(server, "audit", "verify")
        assert r.returncode == 1, r.stdout + r.stderr
        assert segment.name in r.stderr and ("line 5" in r.stderr or "line 6" in r.stderr), r.stderr
        assert "edited" in r.stderr, r.stderr
    finally:
        # Put the byte back in place (the daemon appended audit.read events meanwhile).
        segment.write_bytes(segment.read_bytes().replace(tampered, lines[4], 1))
    r = cli(server, "audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr


def test_sigkill_while_eight_clients_stream_keeps_every_completed_answer(tmp_path):
    work = tmp_path / "box"
    work.mkdir()
    # Eight streams of one agent at once: above the default of four requests in flight.
    quotas = {"requests_per_minute": 600, "tokens_per_day": 0, "concurrent_requests": 8}
    server = start_civiad(work, model=TINY, api={"max_tokens": 64}, sections={"quotas.agent": quotas})
    agent = {**user_key(server, "agent", "agent"), "content-type": "application/json"}
    completed: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n):
        i = 0
        while not stop.is_set():
            body = chat_body(f"client {n} question {i}", stream=True, max_tokens=48)
            i += 1
            try:
                with httpx.stream("POST", server.url + "/v1/chat/completions", headers=agent,
                                  content=body, timeout=30) as s:
                    data = [line for line in s.iter_lines() if line.startswith("data: ")]
                if data and data[-1] == "data: [DONE]":
                    with lock:
                        completed.append(body)
            except httpx.HTTPError:
                return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(completed) < 16 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(completed) >= 16, len(completed)

    # The same box comes back: a torn last line (if any) is cut off, the chain verifies, and
    # every answer a client saw end has its completion on disk.
    server = start_civiad(work, model=TINY)
    try:
        dpo = user_key(server, "dpo", "dpo")
        r = httpx.get(server.url + "/admin/audit/verify", headers=dpo)
        assert r.status_code == 200 and r.json()["ok"] is True, r.text
        done = {e.get("prompt_sha256") for e in export(server, dpo) if e["event"] == "request.completed"}
        missing = [b for b in completed if hashlib.sha256(b).hexdigest() not in done]
        assert not missing, f"{len(missing)} of {len(completed)} completed answers have no completion event"
    finally:
        server.stop()


def test_model_dossier_is_served_and_checked_against_the_weights(civiad, tmp_path):
    server = civiad(model=TINY)
    r = httpx.get(server.url + f"/v1/models/{TINY}/dossier", headers=server.headers())
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["verified"] is True and d["model"] == TINY
    assert d["measured"]["sha256"] == hashlib.sha256(model_path(TINY).read_bytes()).hexdigest()
    assert d["measured"]["parameters"] > 0 and d["measured"]["architecture"] == "llama"
    for field in ("name", "licence", "source", "training_data_summary", "intended_uses", "excluded_uses"):
        assert d["dossier"][field], field

    # A dossier describing other weights is refused; no dossier is a clear 404.
    other = tmp_path / "copie.gguf"
    shutil.copy(model_path(TINY), other)
    (tmp_path / "copie.dossier.json").write_text(json.dumps({"name": "autre", "sha256": "0" * 64}))
    server = civiad(model=str(other))
    r = httpx.get(server.url + "/v1/models/copie/dossier", headers=server.headers())
    assert r.status_code == 409 and r.json()["error"]["code"] == "dossier_mismatch", r.text
    bare = tmp_path / "sans-dossier.gguf"
    shutil.copy(model_path(TINY), bare)
    server = civiad(model=str(bare))
    r = httpx.get(server.url + "/v1/models/sans-dossier/dossier", headers=server.headers())
    assert r.status_code == 404 and r.json()["error"]["code"] == "dossier_not_found", r.text


def test_personal_data_in_a_prompt_warns_the_agent_and_audits_only_the_fact(civiad):
    server = civiad(model=TINY)
    agent = {**user_key(server, "agent", "agent"), "content-type": "application/json"}
    dpo = user_key(server, "dpo", "dpo")
    nir, mail = "1 84 12 76 451 089 46", "jeanne.martin@exemple.fr"
    r = httpx.post(server.url + "/v1/chat/completions", headers=agent, timeout=60,
                   content=chat_body(f"Courrier pour {mail}, NIR {nir}"))
    assert r.status_code == 200, r.text
    assert r.headers["x-civia-warning"] == "personal_data"
    warning = r.json()["civia"]["warnings"][0]
    assert warning["kinds"] == ["nir", "email"] and "(nir, email)" in warning["message"], warning
    r = httpx.post(server.url + "/v1/chat/completions", headers=agent, timeout=60,
                   content=chat_body("Rédige un courrier pour le conseil municipal."))
    assert "x-civia-warning" not in r.headers and "warnings" not in r.json()["civia"]
    done = [e for e in export(server, dpo) if e["event"] == "request.completed"]
    assert done[0]["detail"]["personal_data"] == ["nir", "email"]
    assert "personal_data" not in done[1]["detail"]
    state = server.log.parent / "state"
    for secret in (nir, mail, nir.replace(" ", "")):
        assert files_containing(state, secret.encode()) == [], secret


def test_administration_and_logins_are_audited_by_pseudonym(civiad):
    server = civiad(model=TINY)
    h = server.headers()
    r = httpx.post(server.url + "/admin/users", headers=h,
                   json={"name": "jeanne", "role": "agent", "password": "mot de passe correct"})
    assert r.status_code == 201, r.text
    assert httpx.post(server.url + "/admin/keys", headers=h, json={"user": "jeanne"}).status_code == 201
    assert httpx.put(server.url + "/admin/users/jeanne/quota", headers=h,
                     json={"requests_per_minute": 5, "tokens_per_day": None}).status_code == 200
    assert httpx.post(server.url + "/auth/login", json={"username": "jeanne", "password": "faux faux faux"}).status_code == 401
    assert httpx.post(server.url + "/auth/login", json={"username": "jeanne", "password": "mot de passe correct"}).status_code == 200
    assert httpx.delete(server.url + "/admin/users/jeanne", headers=h).status_code == 204
    events = [e for e in export(server, h) if e["event"].startswith(("admin.", "auth."))]
    names = [e["event"] for e in events]
    assert names == ["admin.user_created", "admin.key_created", "admin.quota_changed",
                     "auth.login_failed", "auth.login", "admin.user_deleted"], names
    target = events[0]["detail"]["target"]
    assert all(e["detail"].get("target", target) == target for e in events)
    assert events[4]["user"] == target and len(target) == 32
    state = server.log.parent / "state" / "audit"
    assert files_containing(state, b"jeanne") == [], "names never reach the audit log"
