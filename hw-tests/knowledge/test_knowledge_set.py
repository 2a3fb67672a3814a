"""Checks of the knowledge evaluation set: the corpus generator, the questions, the BM25 peer's
extraction and the Civia harness against an in-process fake of the API contract.

Run: .cache/venv/bin/python -m pytest hw-tests/knowledge -q   (about 20 s, no daemon needed)
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bm25_peer  # noqa: E402
import eval_civia  # noqa: E402
import evalset  # noqa: E402
import make_corpus  # noqa: E402
from corpus_docs import DOCS  # noqa: E402

BY_NAME = {d.file: d for d in DOCS}


def norm(t: str) -> str:
    t = t.replace("\u2019", "'").replace("\u00a0", " ").replace("\u202f", " ").lower()
    return re.sub(r"\s+", " ", t)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("knowledge-corpus")
    assert make_corpus.main(["--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return evalset.load_questions()


# ---------------------------------------------------------------------------------------
def test_corpus_shape(corpus):
    manifest = evalset.load_manifest(corpus)
    assert 30 <= len(manifest) <= 40
    formats = {e["format"] for e in manifest.values()}
    assert formats >= {"pdf", "docx", "odt", "txt", "md", "html", "scan-pdf", "png", "jpg",
                       "tiff"}
    scanned = [e for e in manifest.values() if e["scanned"]]
    assert len(scanned) >= 6
    assert any(e["pages"] >= 2 for e in scanned if e["format"] == "scan-pdf")
    assert max(e["pages"] for e in manifest.values()) >= 6


def test_page_counts_and_text(corpus):
    """Every file has the manifest's page count; text formats give text on every page, scanned
    ones none (no text layer)."""
    from PIL import Image
    from pypdf import PdfReader

    for name, e in evalset.load_manifest(corpus).items():
        path = corpus / name
        if e["format"] in ("png", "jpg", "tiff"):
            with Image.open(path) as im:
                assert round(im.info["dpi"][0]) == make_corpus.SCAN_DPI, name
            continue
        if e["format"] == "scan-pdf":
            r = PdfReader(str(path))
            assert len(r.pages) == e["pages"], name
            assert all(not (p.extract_text() or "").strip() for p in r.pages), name
            continue
        pages = bm25_peer.page_texts(path)
        assert len(pages) == e["pages"], name
        assert all(p.strip() for p in pages), name


def test_french_characters_survive(corpus):
    pdf = bm25_peer.page_texts(corpus / "deliberation_2024-018_tarifs_restauration_scolaire.pdf")
    assert "l’État" in pdf[1] and "Délibération" in pdf[0] and "€" in pdf[1]
    odt = bm25_peer.page_texts(corpus / "reglement_interieur_salle_des_fetes.odt")
    assert "d’un piano de cuisson" in odt[0] and "320 m²" in odt[0]
    html = bm25_peer.page_texts(corpus / "marche_de_noel_2024_programme.html")[0]
    assert "« Les Voix de Saint-Aubin »" in html and "l’église" in html
    raw = (corpus / "marche_de_noel_2024_programme.html").read_text(encoding="utf-8")
    assert "&laquo;" in raw  # entities in the file, decoded by the parser
    docx = bm25_peer.page_texts(corpus / "compte_rendu_conseil_municipal_2024-06-27.docx")
    assert "Restos du cœur" in docx[2]
    txt = (corpus / "tarifs_salles_municipales_2023.txt").read_text(encoding="utf-8")
    assert "\f" in txt and "Écoles" in txt


def test_deterministic(tmp_path):
    """One document of each format, written twice, gives the same bytes."""
    seen = set()
    for d in DOCS:
        if d.fmt in seen:
            continue
        seen.add(d.fmt)
        a, b = tmp_path / ("a-" + d.file), tmp_path / ("b-" + d.file)
        make_corpus.WRITERS[d.fmt](d, a)
        make_corpus.WRITERS[d.fmt](d, b)
        assert a.read_bytes() == b.read_bytes(), d.file


def test_questions_shape(questions):
    answerable = [q for q in questions if not q.get("unanswerable")]
    assert 60 <= len(questions) <= 80
    assert sum(1 for q in questions if q.get("scanned")) >= 12
    assert sum(1 for q in questions if q.get("unanswerable")) >= 5
    for q in questions:
        assert q["question"].strip().endswith("?"), q["id"]
        if q.get("unanswerable"):
            assert q["answers"] == [] and q["answer"] is None
            continue
        for a in q["answers"]:
            d = BY_NAME[a["document"]]
            assert 1 <= a["page"] <= len(d.pages), q["id"]
            assert q["scanned"] == d.scanned, q["id"]
    assert len({q["question"] for q in answerable}) == len(answerable)


def test_answers_are_on_their_pages(questions, corpus):
    """The expected answer appears on every acceptable page: in the source text, and in the
    text the BM25 peer extracts from the file when the page is not scanned."""
    for q in questions:
        for a in q["answers"]:
            d = BY_NAME[a["document"]]
            src = make_corpus.page_plain_text(d, a["page"] - 1)
            assert norm(q["answer"]) in norm(src), (q["id"], a)
            if not d.scanned:
                got = bm25_peer.page_texts(corpus / d.file)[a["page"] - 1]
                assert norm(q["answer"]) in norm(got), (q["id"], a)


def test_questions_do_not_copy_long_phrases(questions):
    """No question shares a run of 6 words with its answer page (paraphrased questions)."""
    for q in questions:
        words = re.findall(r"\w+", norm(q["question"]))
        grams = {" ".join(words[i:i + 6]) for i in range(len(words) - 5)}
        for a in q["answers"]:
            page = " ".join(re.findall(r"\w+", norm(
                make_corpus.page_plain_text(BY_NAME[a["document"]], a["page"] - 1))))
            assert not [g for g in grams if g in page], q["id"]


def test_metrics():
    manifest = {"a.pdf": {"pages": 3}, "b.md": {"pages": 1}}
    qs = [{"id": "1", "answers": [{"document": "a.pdf", "page": 2}], "scanned": False},
          {"id": "2", "answers": [{"document": "b.md", "page": 1}], "scanned": True},
          {"id": "3", "answers": [], "unanswerable": True}]
    r = evalset.evaluate(qs, {"1": [("a.pdf", 1), ("a.pdf", 2)], "2": [("b.md", None)]},
                         manifest)
    assert r["page"]["all"]["recall@1"] == 0.5 and r["page"]["all"]["recall@5"] == 1.0
    assert r["page"]["all"]["mrr@10"] == 0.75
    assert r["document"]["all"]["recall@1"] == 1.0
    assert r["page"]["scanned"]["n"] == 1


def test_peer_runs(corpus, capsys):
    assert bm25_peer.main(["--corpus", str(corpus)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ocr"] is False and out["corpus"]["pages_without_text"] >= 12
    r = out["results"]["bm25okapi"]["page"]
    assert r["scanned"]["recall@5"] == 0.0  # no OCR, no text
    assert 0.3 < r["not_scanned"]["recall@5"] <= 1.0


# ---------------------------------------------------------------------------------------
# A fake of the collections / documents / search contract, with BM25 as its "search"
class Fake:
    def __init__(self, key: str, tmp: Path, bad_search: bool = False) -> None:
        self.key, self.tmp, self.bad_search = key, tmp, bad_search
        self.collections: dict[int, str] = {}
        self.docs: dict[int, dict] = {}
        self.chunks: list[tuple[int, int, str, int | None, str]] = []
        self.next = 1
        self.deleted: list[int] = []
        self.lock = threading.Lock()

    def new_id(self) -> int:
        with self.lock:
            self.next += 1
            return self.next


def make_handler(fake: Fake):
    tok = bm25_peer.tokenizer("alnum")

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, status: int, body=None):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorized(self) -> bool:
            if self.headers.get("authorization") != f"Bearer {fake.key}":
                self.reply(401, {"detail": "invalid key"})
                return False
            return True

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("content-length", 0)))

        def do_POST(self):
            if not self.authorized():
                return
            if self.path == "/v1/collections":
                req = json.loads(self.body())
                assert req["visibility"] == "private"
                cid = fake.new_id()
                fake.collections[cid] = req["name"]
                return self.reply(201, {"id": cid})
            if self.path == "/v1/documents":
                raw = (b"Content-Type: " + self.headers["content-type"].encode() + b"\r\n\r\n"
                       + self.body())
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
                fields, fname, content = {}, None, b""
                for part in msg.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    if name == "file":
                        fname, content = part.get_filename(), part.get_payload(decode=True)
                    else:
                        fields[name] = part.get_payload(decode=True).decode()
                cid = int(fields["collection"])
                did = fake.new_id()
                path = fake.tmp / fname
                path.write_bytes(content)
                pages = bm25_peer.page_texts(path)
                n = 0
                for i, t in enumerate(pages, 1):
                    for c in bm25_peer.chunk_page(t, 1000):
                        # one-page documents: the page is left unknown, as an HTML page has none
                        fake.chunks.append((fake.new_id(), did, fname,
                                            None if len(pages) == 1 else i, c))
                        n += 1
                fake.docs[did] = {"name": fname, "collection": cid, "polls": 0, "chunks": n}
                return self.reply(202, {"id": did})
            if self.path == "/v1/search":
                req = json.loads(self.body())
                if fake.bad_search:
                    return self.reply(200, {"data": []})
                from rank_bm25 import BM25Okapi
                cands = [c for c in fake.chunks
                         if fake.docs[c[1]]["collection"] in req["collections"]]
                s = BM25Okapi([tok(c[4]) for c in cands]).get_scores(tok(req["prompt"]))
                order = sorted(range(len(cands)), key=lambda i: (-s[i], i))[:req["k"]]
                return self.reply(200, {"object": "list", "data": [{
                    "method": req["method"], "score": float(s[i]),
                    "chunk": {"object": "chunk", "id": cands[i][0], "content": cands[i][4],
                              "metadata": {"document_id": cands[i][1],
                                           "document_name": cands[i][2], "page": cands[i][3],
                                           "collection_id": req["collections"][0]}}}
                    for i in order]})
            self.reply(404, {"detail": "not found"})

        def do_GET(self):
            if not self.authorized():
                return
            m = re.fullmatch(r"/v1/documents/(\d+)", self.path)
            if not m or int(m.group(1)) not in fake.docs:
                return self.reply(404, {"detail": "not found"})
            did = int(m.group(1))
            d = fake.docs[did]
            d["polls"] += 1
            status = "queued" if d["polls"] == 1 else "indexed"
            self.reply(200, {"object": "document", "id": did, "name": d["name"],
                             "collection_id": d["collection"], "created_at": 1733130000,
                             "chunks": d["chunks"] if status == "indexed" else None,
                             "status": status, "error": None})

        def do_DELETE(self):
            if not self.authorized():
                return
            m = re.fullmatch(r"/v1/collections/(\d+)", self.path)
            if not m or int(m.group(1)) not in fake.collections:
                return self.reply(404, {"detail": "not found"})
            fake.deleted.append(int(m.group(1)))
            self.reply(204)

    return H


@pytest.fixture
def server(tmp_path):
    servers = []

    def start(**kw):
        fake = Fake("k" * 20, tmp_path, **kw)
        srv = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return fake, f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()


def test_harness_against_fake(server, corpus, capsys):
    fake, url = server()
    rc = eval_civia.main(["--base-url", url, "--api-key", fake.key, "--corpus", str(corpus),
                          "--methods", "lexical,hybrid", "--poll-interval", "0.01",
                          "--require-recall5", "lexical=0.1"])
    out = capsys.readouterr().out
    assert rc == 0
    rep = json.loads(out)
    assert fake.deleted == [rep["collection"]["id"]]
    assert rep["ingest"]["documents_indexed"] == len(DOCS)
    assert rep["ingest"]["pages_indexed"] == sum(len(d.pages) for d in DOCS)
    # The fake searches like the peer: the scores must be the peer's.
    assert rep["results"]["lexical"] == rep["peer_bm25okapi"]
    assert rep["latency"]["hybrid"]["p95_ms"] >= rep["latency"]["hybrid"]["p50_ms"]
    # Failing thresholds exit 1, after a complete run.
    fake2, url2 = server()
    assert eval_civia.main(["--base-url", url2, "--api-key", fake2.key, "--corpus",
                            str(corpus), "--methods", "lexical", "--poll-interval", "0.01",
                            "--require-margin", "0.15"]) == 1


def test_harness_protocol_errors(server, corpus, capsys):
    fake, url = server()
    assert eval_civia.main(["--base-url", url, "--api-key", "wrong-key-wrong-key",
                            "--corpus", str(corpus)]) == 3
    assert "authentication refused" in capsys.readouterr().err
    fake, url = server(bad_search=True)
    assert eval_civia.main(["--base-url", url, "--api-key", fake.key, "--corpus",
                            str(corpus), "--poll-interval", "0.01"]) == 3
    assert 'expected {"object": "list"' in capsys.readouterr().err
    assert fake.deleted  # the collection is removed even after a protocol error
    assert eval_civia.main(["--base-url", "http://127.0.0.1:9", "--api-key", "x" * 20,
                            "--corpus", str(corpus)]) == 3
    assert "cannot reach" in capsys.readouterr().err
