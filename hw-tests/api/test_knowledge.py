"""The commune's documents as knowledge (issue 20), against a real civiad: OpenGateLLM's
shapes (`/v1/collections`, `/v1/documents` multipart, `/v1/chunks/{document}`, `/v1/search`),
need-to-know access checked before retrieval (another service, another agent's private
collection, `civia user set-service` followed at query time), deletion without trace in the
state directory, audit events without text, and hostile uploads and requests."""

import json
import time

import httpx
import pytest

from conftest import TINY, english_error
from test_audit import cli, files_containing
from test_updates import user_key

CANTINE = (
    "Délibération n° 2026-041 du conseil municipal\n\n"
    "Tarifs du restaurant scolaire\n\n"
    "Le prix du repas au restaurant scolaire est fixé à 3,20 euros pour les enfants domiciliés "
    "dans la commune à compter du 1er septembre 2026. Mot témoin : {canary}.\n"
)


@pytest.fixture(scope="module")
def box(civiad):
    server = civiad(model=TINY)
    agents = {name: user_key(server, name, "agent") for name in ("alice", "bob", "carol")}
    admin = user_key(server, "chef", "admin")
    for name, service in (("alice", "Enfance"), ("bob", "Enfance"), ("carol", "Urbanisme")):
        r = cli(server, "user", "set-service", name, service)
        assert r.returncode == 0, r.stderr
    return server, agents, admin


def create(server, auth, name, visibility="private"):
    return httpx.post(server.url + "/v1/collections", headers=auth,
                      json={"name": name, "visibility": visibility})


def upload(server, auth, collection, name, data: bytes, **kw):
    return httpx.post(server.url + "/v1/documents", headers=auth,
                      files={"file": (name, data)}, data={"collection": str(collection)}, **kw)


def wait_indexed(server, auth, doc_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        d = httpx.get(f"{server.url}/v1/documents/{doc_id}", headers=auth).json()
        if d["status"] in ("indexed", "failed"):
            return d
        assert time.monotonic() < deadline, d
        time.sleep(0.2)


def search(server, auth, prompt, collections=(), method="lexical", k=5):
    return httpx.post(server.url + "/v1/search", headers=auth,
                      json={"prompt": prompt, "collections": list(collections), "k": k, "method": method})


def test_collections_documents_and_search_in_opengatellm_shapes(box):
    server, agents, _ = box
    alice = agents["alice"]
    r = create(server, alice, "Délibérations 2026")
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["object"] == "collection" and c["owner"] == "alice" and c["visibility"] == "private"
    r = upload(server, alice, c["id"], "deliberation-cantine.txt", CANTINE.format(canary="x").encode())
    assert r.status_code == 202, r.text
    doc = r.json()
    assert doc["object"] == "document" and doc["status"] in ("queued", "indexing", "indexed")
    doc = wait_indexed(server, alice, doc["id"])
    assert doc["status"] == "indexed" and doc["chunks"] >= 1 and doc["format"] == "TXT", doc
    r = search(server, alice, "combien coûte un repas à la cantine scolaire ?", [c["id"]])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["data"], body
    hit = body["data"][0]
    assert hit["method"] == "lexical" and isinstance(hit["score"], float)
    chunk = hit["chunk"]
    assert chunk["object"] == "chunk" and "3,20 euros" in chunk["content"]
    meta = chunk["metadata"]
    assert meta["document_id"] == doc["id"] and meta["collection_id"] == c["id"]
    assert meta["document_name"] == "deliberation-cantine.txt" and "page" in meta
    chunks = httpx.get(f"{server.url}/v1/chunks/{doc['id']}", headers=alice).json()
    assert chunks["object"] == "list" and chunks["data"][0]["object"] == "chunk"
    listed = httpx.get(server.url + "/v1/documents", headers=alice, params={"collection": c["id"]}).json()
    assert [d["id"] for d in listed["data"]] == [doc["id"]]
    # The same file again: the existing document, not a second copy.
    r = upload(server, alice, c["id"], "copie.txt", CANTINE.format(canary="x").encode())
    assert r.status_code == 200 and r.json()["id"] == doc["id"], r.text
    # The old extraction endpoint lives on as /v1/parse.
    r = httpx.post(server.url + "/v1/parse", headers={**alice, "content-type": "text/plain"},
                   content="Bonjour".encode())
    assert r.status_code == 200 and r.json()["text"] == "Bonjour", r.text


def test_need_to_know_is_checked_before_retrieval(box):
    server, agents, admin = box
    alice, bob, carol = agents["alice"], agents["bob"], agents["carol"]
    private = create(server, alice, "Notes d'Alice").json()
    service = create(server, alice, "Enfance", "service").json()
    words = {private["id"]: "privatissime", service["id"]: "servicissime"}
    for cid, word in words.items():
        r = upload(server, alice, cid, f"{word}.txt", f"Compte rendu {word} du budget.".encode())
        assert wait_indexed(server, alice, r.json()["id"])["status"] == "indexed"
    # Only an administrator publishes for the whole commune.
    assert create(server, alice, "Pour tous", "public").status_code == 403
    r = httpx.patch(f"{server.url}/v1/collections/{service['id']}", headers=bob, json={"visibility": "public"})
    assert r.status_code == 403, r.text
    assert create(server, admin, "Règlements", "public").status_code == 201

    def seen(auth, prompt, collections=()):
        r = search(server, auth, prompt, collections)
        assert r.status_code == 200, r.text
        return {h["chunk"]["metadata"]["collection_id"] for h in r.json()["data"]}

    assert seen(alice, "privatissime servicissime budget") >= {private["id"], service["id"]}
    assert seen(bob, "privatissime servicissime budget") == {service["id"]}
    assert seen(carol, "privatissime servicissime budget") == set()
    # Naming a collection one may not see is "not found", like an absent one.
    for auth, cid in ((bob, private["id"]), (carol, private["id"]), (carol, service["id"]), (alice, 999999)):
        r = search(server, auth, "budget", [cid])
        assert r.status_code == 404 and r.json()["error"]["code"] == "collection_not_found", r.text
        assert httpx.get(f"{server.url}/v1/collections/{cid}", headers=auth).status_code == 404
    docs = httpx.get(server.url + "/v1/documents", headers=carol).json()["data"]
    assert all(d["collection_id"] not in words for d in docs)
    for d in httpx.get(server.url + "/v1/documents", headers=alice, params={"collection": private["id"]}).json()["data"]:
        for auth in (bob, carol):
            assert httpx.get(f"{server.url}/v1/documents/{d['id']}", headers=auth).status_code == 404
            assert httpx.get(f"{server.url}/v1/chunks/{d['id']}", headers=auth).status_code == 404
            assert httpx.delete(f"{server.url}/v1/documents/{d['id']}", headers=auth).status_code == 404
    assert httpx.delete(f"{server.url}/v1/collections/{service['id']}", headers=carol).status_code == 404
    # The service is read at query time: Carol moves to Enfance and sees its collection,
    # Bob leaves it and no longer does.
    assert cli(server, "user", "set-service", "carol", "Enfance").returncode == 0
    assert cli(server, "user", "set-service", "bob", "Urbanisme").returncode == 0
    try:
        assert seen(carol, "servicissime") == {service["id"]}
        assert seen(bob, "servicissime") == set()
    finally:
        cli(server, "user", "set-service", "carol", "Urbanisme")
        cli(server, "user", "set-service", "bob", "Enfance")


def test_deletion_leaves_no_trace_and_audit_keeps_no_text(box):
    server, agents, _ = box
    alice = agents["alice"]
    canary = "Zyxwvutqa"
    c = create(server, alice, "Temporaire").json()
    r = upload(server, alice, c["id"], "canari.txt", CANTINE.format(canary=canary).encode())
    doc = wait_indexed(server, alice, r.json()["id"])
    assert doc["status"] == "indexed"
    assert search(server, alice, canary, [c["id"]]).json()["data"]
    state = server.config.parent / "state"
    assert httpx.delete(f"{server.url}/v1/documents/{doc['id']}", headers=alice).status_code == 204
    assert httpx.delete(f"{server.url}/v1/collections/{c['id']}", headers=alice).status_code == 204
    assert httpx.get(f"{server.url}/v1/collections/{c['id']}", headers=alice).status_code == 404
    # Compaction runs in the background after a deletion.
    deadline = time.monotonic() + 30
    while True:
        found = files_containing(state, canary.encode()) + files_containing(state, canary.lower().encode())
        if not found:
            break
        assert time.monotonic() < deadline, f"the canary is still in {found}"
        time.sleep(0.5)
    # The audit trail recorded the ingestion, the search and the deletions, without text.
    assert not files_containing(state / "audit", b"restaurant scolaire")


def test_hostile_uploads_and_requests_get_clear_errors(box):
    server, agents, _ = box
    alice = agents["alice"]
    c = create(server, alice, "Essais").json()
    url = server.url + "/v1/documents"
    # Missing parts, bad collection, not multipart at all.
    r = httpx.post(url, headers=alice, files={"collection": (None, str(c["id"]))})
    assert r.status_code == 400 and "file" in r.text, r.text
    r = httpx.post(url, headers=alice, files={"file": ("a.txt", b"x")})
    assert r.status_code == 400 and "collection" in r.text
    r = upload(server, alice, "abc", "a.txt", b"x")
    assert r.status_code == 400
    r = upload(server, alice, 999999, "a.txt", b"texte")
    assert r.status_code == 404
    r = httpx.post(url, headers={**alice, "content-type": "application/json"}, content=b"{}")
    assert r.status_code == 400
    r = httpx.post(url, headers={**alice, "content-type": "multipart/form-data; boundary=zz"},
                   content=b"--zz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc")
    assert r.status_code == 400
    r = upload(server, alice, c["id"], "vide.txt", b"")
    assert r.status_code == 400
    # Larger than [knowledge] max_file_mb (50 MiB by default).
    r = upload(server, alice, c["id"], "gros.txt", b"a" * (51 * 1024 * 1024), timeout=120)
    assert r.status_code == 413, r.text
    # Unreadable bytes: accepted, then failed with a French reason; nothing indexed.
    r = upload(server, alice, c["id"], "image.bin", bytes(range(256)) * 64)
    d = wait_indexed(server, alice, r.json()["id"])
    assert d["status"] == "failed" and d["error"] and d["chunks"] == 0, d
    spool = server.config.parent / "state" / "knowledge" / "spool"
    assert list(spool.iterdir()) == []
    # Search requests.
    for body in ({}, {"prompt": ""}, {"prompt": "x", "k": 0}, {"prompt": "x", "k": 1000},
                 {"prompt": "x", "method": "magic"}, {"prompt": "x", "collections": ["a"]},
                 {"prompt": "x", "web_search": True}, {"prompt": "x", "unknown": 1},
                 {"prompt": "x" * 5000}, {"prompt": "x", "score_threshold": 2}):
        r = httpx.post(server.url + "/v1/search", headers=alice, json=body)
        assert r.status_code in (400, 422) and r.json()["error"]["message"], (body, r.text)
    for body in ({"name": ""}, {"name": "x", "visibility": "secret"}, {"name": "x" * 500}, {"nom": "x"}):
        r = httpx.post(server.url + "/v1/collections", headers=alice, json=body)
        assert r.status_code == 400, (body, r.text)
    assert httpx.get(server.url + "/v1/collections").status_code == 401


def test_chat_answers_grounded_on_the_collections_with_sources(box):
    """OpenGateLLM's `search: true` + `search_args`: the answer comes with `search_results`
    (document, page), streamed or not; the same need-to-know applies."""
    server, agents, _ = box
    alice, carol = agents["alice"], agents["carol"]
    c = create(server, alice, "Salle des fêtes").json()
    text = "Règlement de la salle des fêtes\n\nLa caution demandée pour la location est de 500 euros.\n"
    r = upload(server, alice, c["id"], "reglement-salle.txt", text.encode())
    assert wait_indexed(server, alice, r.json()["id"])["status"] == "indexed"
    body = {"model": server.model_id, "max_tokens": 8,
            "messages": [{"role": "user", "content": "Quel est le montant de la caution de la salle des fêtes ?"}],
            "search": True, "search_args": {"collections": [c["id"]], "k": 3, "method": "lexical"}}
    r = httpx.post(server.url + "/v1/chat/completions", headers=alice, json=body, timeout=120)
    assert r.status_code == 200, r.text
    results = r.json()["search_results"]
    assert results and results[0]["chunk"]["metadata"]["document_name"] == "reglement-salle.txt"
    assert "500 euros" in results[0]["chunk"]["content"]
    with httpx.stream("POST", server.url + "/v1/chat/completions", headers=alice,
                      json={**body, "stream": True}, timeout=120) as s:
        first = next(line for line in s.iter_lines() if line.startswith("data: "))
    assert '"search_results"' in first and "reglement-salle.txt" in first
    # Another service's agent: the collection does not exist for her.
    r = httpx.post(server.url + "/v1/chat/completions", headers=carol, json=body, timeout=120)
    assert r.status_code == 404 and r.json()["error"]["code"] == "collection_not_found", r.text
    r = httpx.post(server.url + "/v1/chat/completions", headers=carol,
                   json={**body, "search_args": {"k": 3, "method": "lexical"}}, timeout=120)
    assert r.status_code == 200 and r.json()["search_results"] == [], r.text
    # Bad search arguments.
    r = httpx.post(server.url + "/v1/chat/completions", headers=alice,
                   json={**body, "search_args": None}, timeout=60)
    assert r.status_code == 200 and r.json()["search_results"], r.text
    for args in ({"template": "sans espace réservé"}, {"method": "web"}, {"web_search": True}, {"k": 0}):
        r = httpx.post(server.url + "/v1/chat/completions", headers=alice,
                       json={**body, "search_args": args}, timeout=60)
        assert r.status_code == 400, (args, r.text)


FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[2] / "appliance/civia-documents/tests/fixtures"


def test_scans_are_read_by_ocr_and_pages_are_cited(box):
    """A PDF whose second page is a scan, and a scanned TIFF: OCR in French, pages kept."""
    server, agents, _ = box
    alice = agents["alice"]
    c = create(server, alice, "Archives scannées").json()
    ids = {}
    for name in ("mixed-scan.pdf", "scan-two-pages.tif"):
        r = upload(server, alice, c["id"], name, (FIXTURES / name).read_bytes())
        assert r.status_code == 202, r.text
        ids[name] = r.json()["id"]
    for name, doc_id in ids.items():
        d = wait_indexed(server, alice, doc_id, timeout=300)
        assert d["status"] == "indexed" and d["ocr_pages"] >= 1, d
    chunks = httpx.get(f"{server.url}/v1/chunks/{ids['mixed-scan.pdf']}", headers=alice).json()["data"]
    pages = {ch["metadata"]["page"] for ch in chunks}
    assert pages == {1, 2, 3}, chunks
    scanned = " ".join(ch["content"] for ch in chunks if ch["metadata"]["page"] == 2)
    assert "délibération" in scanned.lower() or "conseil" in scanned.lower(), scanned


def test_documents_are_dated_and_searches_filter_on_dates(box):
    server, agents, _ = box
    alice = agents["alice"]
    c = create(server, alice, "Arrêtés datés").json()
    ids = {}
    for year in ("2019", "2024"):
        r = httpx.post(
            server.url + "/v1/documents", headers=alice,
            files={"file": (f"arrete-{year}.txt",
                            f"Arrêté de fermeture de la rue des Tilleuls pour travaux ({year}).".encode())},
            data={"collection": str(c["id"]), "metadata": f'{{"date": "{year}-06-15"}}'})
        assert r.status_code == 202, r.text
        assert r.json()["date"] == f"{year}-06-15"
        ids[year] = wait_indexed(server, alice, r.json()["id"])["id"]
    r = httpx.post(server.url + "/v1/documents", headers=alice,
                   files={"file": ("x.txt", b"texte")},
                   data={"collection": str(c["id"]), "metadata": '{"date": "15/06/2024"}'})
    assert r.status_code == 400, r.text
    assert english_error(r.json())["details"] == {"reason": "date_format"}, r.text

    def found(**dates):
        r = httpx.post(server.url + "/v1/search", headers=alice, json={
            "prompt": "fermeture de la rue des Tilleuls", "collections": [c["id"]], "k": 10,
            "method": "hybrid", **dates})
        assert r.status_code == 200, r.text
        return {h["chunk"]["metadata"]["document_id"] for h in r.json()["data"]}

    assert found() == {ids["2019"], ids["2024"]}
    assert found(date_from="2020-01-01") == {ids["2024"]}
    assert found(date_to="2019-12-31") == {ids["2019"]}
    assert found(date_from="2025-01-01") == set()
    assert found(date_from="2024-12-31", date_to="2024-01-01") == set()
    for bad in ({"date_from": "2024-02-30"}, {"date_to": "hier"}):
        r = httpx.post(server.url + "/v1/search", headers=alice,
                       json={"prompt": "rue", "collections": [c["id"]], **bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"]["param"] in ("date_from", "date_to"), r.text
    r = httpx.post(server.url + "/v1/search", headers=alice,
                   json={"prompt": "rue", "documents": list(range(1, 1002))})
    assert r.status_code == 400, r.text


def test_the_integrator_imports_a_folder_into_a_shared_collection(box, tmp_path):
    server, agents, admin = box
    public = create(server, admin, "Archives de la mairie", "public").json()
    private = create(server, agents["alice"], "Notes d'Alice").json()
    folder = tmp_path / "clé USB"
    (folder / "Urbanisme" / "PLU").mkdir(parents=True)
    (folder / "Urbanisme" / "PLU" / "règlement.md").write_text(
        "# Zone UA\n\nLa hauteur maximale des clôtures est de 1,60 mètre.\n")
    (folder / "salle-des-fetes.html").write_text(
        "<html><body><h1>Salle des fêtes</h1><p>La caution est de 450 euros.</p></body></html>")
    (folder / ".DS_Store").write_bytes(b"\0\1junk")
    (folder / "setup.exe").write_bytes(b"MZ\x90\x00")
    (folder / "Thumbs.db").write_bytes(b"junk")
    (folder / "lien.txt").symlink_to("/etc/passwd")
    r = cli(server, "knowledge", "collections")
    assert r.returncode == 0, r.stderr
    assert "Archives de la mairie" in r.stdout and "Notes d'Alice" not in r.stdout, r.stdout
    r = cli(server, "knowledge", "import", str(folder), "--collection", str(public["id"]),
            "--date", "2023-05-04")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 imported, 0 already there, 0 refused, 4 skipped" in r.stdout, r.stdout
    docs = httpx.get(server.url + "/v1/documents", headers=agents["carol"],
                     params={"collection": public["id"]}).json()["data"]
    assert sorted(d["name"] for d in docs) == ["règlement.md", "salle-des-fetes.html"], docs
    for d in docs:
        d = wait_indexed(server, agents["carol"], d["id"])
        assert d["status"] == "indexed" and d["date"] == "2023-05-04", d
    hits = search(server, agents["carol"], "quel est le montant de la caution de la salle des fêtes ?",
                  [public["id"]]).json()["data"]
    assert hits and "450 euros" in hits[0]["chunk"]["content"], hits
    # Run again (an interrupted import): nothing is sent twice.
    r = cli(server, "knowledge", "import", str(folder), "--collection", str(public["id"]))
    assert r.returncode == 0 and "0 imported, 2 already there" in r.stdout, r.stdout + r.stderr
    # An agent's private collection is not the administration's to fill.
    r = cli(server, "knowledge", "import", str(folder), "--collection", str(private["id"]))
    assert r.returncode == 1 and "collection_not_found" in r.stderr, r.stdout + r.stderr
    assert httpx.get(server.url + f"/v1/collections/{private['id']}",
                     headers=agents["alice"]).json()["documents"] == 0
    # Agents cannot use the route, with their own key.
    r = httpx.post(server.url + f"/admin/knowledge/collections/{public['id']}/documents",
                   headers=agents["carol"], params={"name": "x.txt"}, content=b"x")
    assert r.status_code == 403, r.text
    r = cli(server, "audit", "export", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T00:00:00Z")
    assert r.returncode == 0 and "knowledge.document_imported" in r.stdout, r.stderr
    assert "450 euros" not in r.stdout


def test_a_departing_agent_leaves_no_private_collection_and_no_orphan(box):
    server, agents, _ = box
    carol = agents["carol"]
    erin = user_key(server, "erin", "agent")
    assert cli(server, "user", "set-service", "erin", "Urbanisme").returncode == 0
    canaries = {"mine": f"Privatum{time.time_ns()}", "shared": f"Partagium{time.time_ns()}"}
    mine = create(server, erin, "Brouillons d'Erin").json()
    shared = create(server, erin, "Urbanisme partagé", "service").json()
    for key, c in (("mine", mine), ("shared", shared)):
        r = upload(server, erin, c["id"], f"note-{c['id']}.txt",
                   CANTINE.format(canary=canaries[key]).encode())
        assert r.status_code == 202, r.text
        assert wait_indexed(server, erin, r.json()["id"])["status"] == "indexed"
    r = cli(server, "--json", "dsr", "export", "erin", "--reason", "Demande n° 12")
    assert r.returncode == 0, r.stderr
    exported = json.loads(r.stdout)["collections"]
    assert {c["name"] for c in exported} == {"Brouillons d'Erin", "Urbanisme partagé"}, r.stdout
    assert all(len(c["documents"]) == 1 for c in exported), r.stdout
    r = cli(server, "--json", "dsr", "erase", "erin", "--reason", "Départ", "--delete-account")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["collections_erased"] == [mine["id"]], out
    assert out["collections_handed_over"] == [shared["id"]], out
    # Carol, of the same service, now owns the shared collection and still finds its text.
    c = httpx.get(server.url + f"/v1/collections/{shared['id']}", headers=carol).json()
    assert c["owner"] == "carol", c
    assert search(server, carol, canaries["shared"], [shared["id"]]).json()["data"]
    # The private collection is gone, and its text from the state directory once compacted.
    assert httpx.get(server.url + f"/v1/collections/{mine['id']}", headers=carol).status_code == 404
    state = server.config.parent / "state"
    deadline = time.monotonic() + 30
    while found := files_containing(state, canaries["mine"].encode()) + files_containing(
            state, canaries["mine"].lower().encode()):
        assert time.monotonic() < deadline, f"the erased text is still in {found}"
        time.sleep(0.5)
