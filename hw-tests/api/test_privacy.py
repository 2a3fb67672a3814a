"""The agents' data and the commune's obligations on the running daemon: the usage charter and
its register (AI Act art. 4), conversation history that only its owner reads (RGPD art. 5,
15, 17), data-subject requests by the DPO, a canary that leaves no trace once erased (audit,
usage table, log, journald copy, then the whole state directory), the output guard against
system-prompt leaks and the prompt limit (ANSSI GenAI R25), and the compliance documents.
"""

import csv
import io
import json
import socket
import sqlite3
import threading
import uuid
from pathlib import Path

import httpx
import openai
import pytest

from conftest import DEV_KEY, SMOL, TINY, start_civiad
from test_audit import cli, export, files_containing
from test_updates import accept_charter, user_key


def new_user(server, name, role):
    """A user with a key, who has not accepted the charter yet."""
    h = server.headers()
    assert httpx.post(server.url + "/admin/users", headers=h, json={"name": name, "role": role}).status_code == 201
    r = httpx.post(server.url + "/admin/keys", headers=h, json={"user": name})
    assert r.status_code == 201, r.text
    return {"authorization": f"Bearer {r.json()['key']}"}


def session_of(server, name, password) -> dict:
    """Headers of a web session (cookie sent by hand: the Secure cookie over loopback HTTP)."""
    r = httpx.post(server.url + "/auth/login", json={"username": name, "password": password})
    assert r.status_code == 200, r.text
    cookie = r.headers["set-cookie"].split(";", 1)[0]
    return {"cookie": cookie, "x-csrf-token": r.json()["csrf_token"]}


def own_key(server, name, role="agent") -> dict:
    """A user who chose their own password and made their own key with it: the credentials
    that reach their history (the administrator made neither)."""
    r = httpx.post(server.url + "/admin/users", headers=server.headers(), json={"name": name, "role": role})
    assert r.status_code == 201, r.text
    given = r.json()["password"]
    session = session_of(server, name, given)
    r = httpx.post(server.url + "/auth/password", headers=session,
                   json={"current_password": given, "new_password": f"mon propre secret {name}"})
    assert r.status_code == 200, r.text
    r = httpx.post(server.url + "/v1/me/keys", headers=session, json={"name": "client officiel"})
    assert r.status_code == 201 and r.json()["info"]["own"] is True, r.text
    auth = {"authorization": f"Bearer {r.json()['key']}"}
    accept_charter(server, auth)
    return auth


def client(server, auth) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=auth["authorization"].split()[1], max_retries=0)


def chat(server, auth, text, **civia):
    body = {"model": server.model_id, "max_tokens": 4, "messages": [{"role": "user", "content": text}]}
    if civia:
        body["civia"] = civia
    return httpx.post(server.url + "/v1/chat/completions", headers=auth, json=body, timeout=60)


class FakeJournald:
    """A datagram socket standing where journald's is: collects what civiad sends."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.datagrams: list[bytes] = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                self.datagrams.append(self.sock.recv(1 << 20))
            except socket.timeout:
                continue

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def test_charter_must_be_accepted_and_forms_the_register(civiad):
    server = civiad(model=TINY)
    agent = new_user(server, "agent.etat-civil", "agent")
    with pytest.raises(openai.PermissionDeniedError) as e:
        client(server, agent).chat.completions.create(model=TINY, max_tokens=2, messages=[{"role": "user", "content": "x"}])
    assert e.value.body["code"] == "charter_not_accepted"
    charter = httpx.get(server.url + "/v1/charter", headers=agent).json()
    assert charter["version"] == 1 and charter["required"] and charter["accepted_at"] is None
    assert "Usages interdits" in charter["text"] and "décision" in charter["text"]
    # Accepting another version than the current one is refused.
    r = httpx.post(server.url + "/v1/charter/accept", headers=agent, json={"version": 7})
    assert r.status_code == 409 and r.json()["error"]["code"] == "charter_changed", r.text
    for bad in ({"version": "un"}, {}, {"version": 1, "extra": True}):
        r = httpx.post(server.url + "/v1/charter/accept", headers=agent, json=bad)
        assert r.status_code == 400, r.text
    accept_charter(server, agent)
    assert chat(server, agent, "Bonjour").status_code == 200
    # A new version (admin) must be accepted again; agents cannot publish one.
    r = httpx.put(server.url + "/admin/charter", headers=agent, json={"text": "Ma charte"})
    assert r.status_code == 403
    for bad in ({"text": ""}, {"text": "x" * 20_001}, {"text": "a\u0000b"}):
        r = httpx.put(server.url + "/admin/charter", headers=server.headers(), json=bad)
        assert r.status_code == 400, r.text
    r = httpx.put(server.url + "/admin/charter", headers=server.headers(),
                  json={"text": "Charte v2 : relire chaque réponse.\nNe rien décider sur une personne."})
    assert r.status_code == 201 and r.json()["version"] == 2, r.text
    r = chat(server, agent, "Bonjour")
    assert r.status_code == 403 and r.json()["error"]["code"] == "charter_not_accepted"
    accept_charter(server, agent)
    assert chat(server, agent, "Bonjour").status_code == 200
    # A role without model access hears that first, charter or not.
    auditor = new_user(server, "controle", "dpo")
    r = chat(server, auditor, "Bonjour")
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied", r.text
    # The register (admin, dpo): JSON and CSV, the trial admin recorded with its channel.
    dpo = user_key(server, "dpo", "dpo")
    reg = httpx.get(server.url + "/admin/charter/register", headers=dpo).json()
    rows = {(d["user"], d["version"], d["channel"]) for d in reg["data"]}
    assert {("agent.etat-civil", 1, "api"), ("agent.etat-civil", 2, "api"), ("trial-admin", 1, "trial")} <= rows
    assert reg["current_version"] == 2 and reg["accepted_current"] == 2  # agent + dpo
    text = httpx.get(server.url + "/admin/charter/register", headers=dpo, params={"format": "csv"}).text
    table = list(csv.DictReader(io.StringIO(text)))
    assert any(r["utilisateur"] == "agent.etat-civil" and r["version"] == "2" and r["canal"] == "api"
               for r in table), table
    assert httpx.get(server.url + "/admin/charter/register", headers=agent).status_code == 403
    names = [e["event"] for e in export(server, server.headers())]
    assert names.count("charter.accepted") >= 3 and "admin.charter_published" in names


def test_history_is_private_exportable_and_erased_without_a_trace(civiad, tmp_path):
    journal = FakeJournald(tmp_path / "journal.socket")
    try:
        server = civiad(model=SMOL, sections={"audit": {"journal_socket": str(tmp_path / "journal.socket")}})
        state = server.log.parent / "state"
        canary = f"CANARI-{uuid.uuid4().hex}"
        alice = own_key(server, "alice")
        bob = own_key(server, "bob")
        dpo = user_key(server, "dpo", "dpo")
        admin = server.headers()

        # Alice keeps an exchange with the official client (extra_body), then continues it
        # streaming.
        c = client(server, alice)
        out = c.chat.completions.create(
            model=SMOL, max_tokens=8, messages=[{"role": "user", "content": f"Rédige un courrier. {canary}"}],
            extra_body={"civia": {"save": True, "title": "Courrier au syndic"}})
        conv = out.model_extra["civia"]["conversation_id"]
        assert conv.startswith("conv-")
        with httpx.stream("POST", server.url + "/v1/chat/completions", headers=alice, timeout=60, json={
                "model": SMOL, "max_tokens": 8, "stream": True,
                "messages": [{"role": "user", "content": "Premier message"},
                             {"role": "assistant", "content": out.choices[0].message.content or "…"},
                             {"role": "user", "content": f"Plus court. {canary}"}],
                "civia": {"conversation_id": conv}}) as r:
            assert r.status_code == 200 and r.headers["x-civia-conversation-id"] == conv
            events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
        assert events[-1]["civia"]["conversation_id"] == conv
        # A second conversation, and one not kept at all.
        other = chat(server, alice, f"Autre sujet {canary}", save=True).json()["civia"]["conversation_id"]
        assert "conversation_id" not in chat(server, alice, f"Pas gardé {canary}").json()["civia"]

        listing = httpx.get(server.url + "/v1/conversations", headers=alice).json()
        assert listing["retention_days"] == 30 and {d["id"] for d in listing["data"]} == {conv, other}
        first = next(d for d in listing["data"] if d["id"] == conv)
        assert first["title"] == "Courrier au syndic" and first["messages"] == 4
        assert first["expires_at"] - first["updated_at"] == 30 * 86400
        full = httpx.get(server.url + f"/v1/conversations/{conv}", headers=alice).json()
        assert [m["role"] for m in full["messages"]] == ["user", "assistant", "user", "assistant"]
        assert canary in full["messages"][0]["content"] and full["messages"][1]["model"] == SMOL

        # Nobody else reads it: another agent, the admin (404, as if it did not exist), the
        # DPO with the key an administrator made (403: no history at all with such a key).
        for who, status in ((bob, 404), (admin, 404), (dpo, 403)):
            assert httpx.get(server.url + f"/v1/conversations/{conv}", headers=who).status_code == status
            assert conv not in httpx.get(server.url + "/v1/conversations", headers=who).text
            assert httpx.delete(server.url + f"/v1/conversations/{conv}", headers=who).status_code == status
        r = chat(server, bob, "Je m'invite", conversation_id=conv)
        assert r.status_code == 404 and r.json()["error"]["code"] == "conversation_not_found", r.text
        for bad in ({"save": "oui"}, {"save": True, "colour": "red"}, {"conversation_id": 5}):
            assert chat(server, alice, "x", **bad).status_code == 400
        assert httpx.get(server.url + "/v1/conversations/conv-%2e%2e%2f", headers=alice).status_code == 404

        # Alice's own export; the DPO's export for a data-subject request (with a reason);
        # the admin role cannot run one.
        mine = httpx.get(server.url + "/v1/me/export", headers=alice)
        assert "attachment" in mine.headers["content-disposition"]
        data = mine.json()
        assert data["account"]["name"] == "alice" and len(data["conversations"]) == 2
        assert data["charter_acceptances"][0]["version"] == 1 and data["usage_by_day"][0]["requests"] >= 4
        assert len(data["audit"]["pseudonym"]) == 32
        assert httpx.get(server.url + "/admin/users/alice/data", headers=admin,
                         params={"reason": "demande"}).status_code == 403
        assert httpx.get(server.url + "/admin/users/alice/data", headers=dpo).status_code == 400
        r = httpx.get(server.url + "/admin/users/alice/data", headers=dpo, params={"reason": "Demande d'accès n° 12"})
        assert r.status_code == 200 and canary in r.text
        assert httpx.get(server.url + "/admin/users/nobody/data", headers=dpo,
                         params={"reason": "x"}).status_code == 404

        # The canary is in the history only: not in the audit trail, the usage table, the
        # daemon's log or its journald copy.
        audit_dir = state / "audit"
        assert files_containing(audit_dir, canary.encode()) == []
        db = sqlite3.connect(state / "civia.db")
        assert db.execute("SELECT COUNT(*) FROM usage").fetchone()[0] >= 4
        assert canary not in json.dumps(db.execute("SELECT * FROM usage").fetchall())
        db.close()
        assert canary not in server.log.read_text(errors="replace")
        fields = [dict(line.split("=", 1) for line in d.decode().splitlines() if "=" in line)
                  for d in journal.datagrams]
        assert any(f.get("CIVIA_AUDIT_EVENT") == "request.completed" and f.get("CIVIA_USER") for f in fields)
        assert all(canary.encode() not in d for d in journal.datagrams)

        # Erasure: one conversation by its owner, then everything by the DPO (data-subject
        # request); the canary is then nowhere in the state directory.
        assert httpx.delete(server.url + f"/v1/conversations/{other}", headers=alice).json()["deleted"] is True
        r = httpx.post(server.url + "/admin/users/alice/erase", headers=admin, json={"reason": "x"})
        assert r.status_code == 403
        r = httpx.post(server.url + "/admin/users/alice/erase", headers=dpo, json={"reason": ""})
        assert r.status_code == 400
        r = httpx.post(server.url + "/admin/users/alice/erase", headers=dpo, json={"reason": "Demande d'effacement n° 13"})
        assert r.json() == {"conversations_erased": 1, "account_deleted": False,
                            "collections_erased": [], "collections_handed_over": []}, r.text
        assert httpx.get(server.url + "/v1/conversations", headers=alice).json()["data"] == []
        assert files_containing(state, canary.encode()) == []
        # The audit keeps the metadata of the erasure, under pseudonyms.
        names = [e["event"] for e in export(server, dpo)]
        for ev in ("privacy.history_erased", "privacy.exported", "dsr.exported", "dsr.erased"):
            assert ev in names, names
        r = cli(server, "audit", "verify")
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        journal.close()


def test_history_off_and_dsr_account_deletion(civiad):
    server = civiad(model=TINY, sections={"history": {"enabled": False}})
    agent = own_key(server, "agent")
    r = chat(server, agent, "x", save=True)
    assert r.status_code == 409 and r.json()["error"]["code"] == "history_disabled"
    assert chat(server, agent, "x", save=False).status_code == 200
    assert httpx.get(server.url + "/v1/conversations", headers=agent).json()["enabled"] is False
    # The local admin socket (the `civia` CLI) handles data-subject requests too.
    r = cli(server, "dsr", "erase", "agent", "--reason", "Départ de l'agent", "--delete-account")
    assert r.returncode == 0, r.stdout + r.stderr
    assert httpx.get(server.url + "/v1/models", headers=agent).status_code == 401
    assert cli(server, "user", "show", "agent").returncode == 1


def test_output_guard_stops_a_system_prompt_leak(civiad):
    secret = "zulu yankee xray whiskey victor uniform tango sierra romeo quebec papa oscar"
    server = civiad(model=SMOL, sections={"guard": {"system_prompt": f"Consignes internes : {secret}.",
                                                    "max_prompt_chars": 2000}})
    agent = user_key(server, "agent", "agent")
    h = {**agent, "content-type": "application/json"}

    def complete(words, stream=False):
        prompt = "\n".join([words] * 6) + "\n"
        return httpx.post(server.url + "/v1/completions", headers=h, timeout=60, json={
            "model": SMOL, "prompt": prompt, "max_tokens": 40, "temperature": 0, "stream": stream})

    # The model repeats a pattern at temperature 0: harmless words come through...
    harmless = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima"
    r = complete(harmless)
    assert "bravo charlie delta" in r.json()["choices"][0]["text"], r.text
    assert "warnings" not in r.json()["civia"]
    # ...the words of the system prompt are stopped, streamed or not.
    r = complete(secret)
    body = r.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "content_filter", r.text
    assert "whiskey victor uniform tango" not in choice["text"]
    assert body["civia"]["warnings"][0]["code"] == "system_prompt_leak"
    with httpx.stream("POST", server.url + "/v1/completions", headers=h, timeout=60, json={
            "model": SMOL, "prompt": "\n".join([secret] * 6) + "\n", "max_tokens": 40,
            "temperature": 0, "stream": True}) as s:
        chunks = [json.loads(line[6:]) for line in s.iter_lines() if line.startswith("data: {")]
    streamed = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    assert chunks[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert "xray whiskey victor uniform tango sierra romeo quebec" not in streamed
    done = [e for e in export(server, server.headers()) if e["event"] == "request.completed"]
    assert sum(1 for e in done if e["detail"].get("output_guard") == ["system_prompt_leak"]) == 2
    # The prompt limit (characters, all messages).
    r = chat(server, agent, "x" * 2001)
    assert r.status_code == 400 and r.json()["error"]["code"] == "prompt_too_long", r.text
    assert r.json()["error"]["param"] == "messages"


def test_compliance_documents_follow_the_live_configuration(civiad):
    server = civiad(model=TINY, sections={"commune": {"name": "Commune de Saint-Exemple <b>", "dpo_contact": "dpo@exemple.fr"},
                                          "audit": {"retention_months": 12}})
    dpo = user_key(server, "dpo", "dpo")
    agent = new_user(server, "agent", "agent")
    reg = httpx.get(server.url + "/admin/compliance/register", headers=dpo)
    assert reg.status_code == 200 and reg.headers["content-type"].startswith("text/markdown")
    md = reg.text
    assert "Saint-Exemple" in md and "<b>" not in md and "12 mois" in md
    assert "non vérifi" in md  # disk encryption and TPM: not observable by the API
    doc = httpx.get(server.url + "/admin/compliance/checklist", headers=dpo, params={"format": "json"}).json()
    assert doc["kind"] == "checklist" and doc["commune"] == "Commune de Saint-Exemple <b>"
    checks = {i["id"]: i for s in doc["sections"] for i in s["items"] if i["type"] == "check"}
    assert checks["art50_transparency"]["state"] == "done"
    assert checks["art26_6_logs"]["state"] == "done"
    # One active user (the agent) has not accepted the charter: art. 4 is still to do.
    assert checks["art4_literacy"]["state"] == "todo"
    accept_charter(server, agent)
    doc = httpx.get(server.url + "/admin/compliance/checklist", headers=dpo, params={"format": "json"}).json()
    checks = {i["id"]: i for s in doc["sections"] for i in s["items"] if i["type"] == "check"}
    assert checks["art4_literacy"]["state"] == "done", checks["art4_literacy"]
    dpia = httpx.get(server.url + "/admin/compliance/dpia", headers=server.headers()).text
    assert "AIPD" in dpia or "analyse d'impact" in dpia.lower()
    assert httpx.get(server.url + "/admin/compliance/dpia", headers=agent).status_code == 403
    assert httpx.get(server.url + "/admin/compliance/autre", headers=dpo).status_code == 400
    assert httpx.get(server.url + "/admin/compliance/dpia", headers=dpo, params={"format": "pdf"}).status_code == 400
    r = cli(server, "compliance", "checklist")
    assert r.returncode == 0 and "art. 50" in r.stdout, r.stdout + r.stderr


def test_an_administrator_never_reaches_an_agents_history(civiad):
    """README: an agent's conversations are readable by the agent only. An administrator tries
    the two ways an account gives: a key made for the agent, and a password set for them."""
    server = civiad(model=SMOL)
    state = server.log.parent / "state"
    canary = f"CANARI-{uuid.uuid4().hex}"
    alice = own_key(server, "alice")
    conv = chat(server, alice, f"Mon dossier médical {canary}", save=True).json()["civia"]["conversation_id"]
    h = server.headers()

    # 1. A key an administrator makes for Alice (over HTTP, as `civia key create --user`
    # does on the socket) works for the model but never reaches her history,
    r = httpx.post(server.url + "/admin/keys", headers=h, json={"user": "alice"})
    assert r.status_code == 201, r.text
    made = {"authorization": f"Bearer {r.json()['key']}"}
    for path in ("/v1/conversations", f"/v1/conversations/{conv}", "/v1/me/export"):
        r = httpx.get(server.url + path, headers=made)
        assert r.status_code == 403 and r.json()["error"]["code"] == "own_credentials_required", r.text
        assert canary not in r.text
    assert httpx.delete(server.url + "/v1/conversations", headers=made).status_code == 403
    # cannot continue or add to her conversations,
    r = chat(server, made, "Suite", conversation_id=conv)
    assert r.status_code == 403 and r.json()["error"]["code"] == "own_credentials_required", r.text
    assert chat(server, made, "Bonjour").status_code == 200
    # and cannot mint a key that would.
    r = httpx.post(server.url + "/v1/me/keys", headers=made, json={})
    assert r.status_code == 201 and r.json()["info"]["own"] is False, r.text
    minted = {"authorization": f"Bearer {r.json()['key']}"}
    assert httpx.get(server.url + "/v1/conversations", headers=minted).status_code == 403
    listing = httpx.get(server.url + "/v1/conversations", headers=alice).json()["data"]
    assert [c["id"] for c in listing] == [conv], "her own key still reads it"

    # 2. A password the administrator sets erases the history first and ends every session
    # and key of hers: logging in with it, even choosing "her" password, finds nothing.
    r = httpx.patch(server.url + "/admin/users/alice", headers=h, json={"reset_password": True})
    assert r.status_code == 200, r.text
    known = r.json()["password"]
    r = httpx.get(server.url + "/v1/conversations", headers=alice)
    assert r.status_code == 401 and r.json()["error"]["code"] == "revoked_api_key", r.text
    session = session_of(server, "alice", known)
    r = httpx.get(server.url + "/v1/conversations", headers=session)
    assert r.status_code == 403 and r.json()["error"]["code"] == "own_credentials_required", r.text
    r = httpx.post(server.url + "/auth/password", headers=session,
                   json={"current_password": known, "new_password": "le secret de l'administrateur"})
    assert r.status_code == 200, r.text
    r = httpx.get(server.url + "/v1/conversations", headers=session)
    assert r.status_code == 200 and r.json()["data"] == [], r.text
    assert files_containing(state, canary.encode()) == []
    # A wrong current password changes nothing.
    r = httpx.post(server.url + "/auth/password", headers=session,
                   json={"current_password": "pas le bon mot de passe", "new_password": "un autre secret long"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "wrong_password", r.text
