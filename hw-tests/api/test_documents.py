"""Documents for the agents' tasks on the running daemon: text extraction from uploaded files
(nothing stored, clear French refusals for anything else), drafts exported as DOCX, ODT and
text that carry the AI marking, tables exported as ODS and CSV that LibreOffice reads back typed,
and the web application's pages with their security headers.
"""

import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import httpx

from conftest import TINY, english_error
from test_updates import user_key


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with one line of Helvetica text and a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def upload(server, auth, data: bytes, name: str, ctype="application/octet-stream"):
    return httpx.post(server.url + "/v1/parse", headers={**auth, "content-type": ctype,
                                                             "x-civia-filename": name},
                      content=data, timeout=60)


def test_documents_are_extracted_and_drafts_exported_with_the_ai_marking(civiad):
    server = civiad(model=TINY)
    agent = user_key(server, "agent", "agent")
    # A draft exported as DOCX carries the marking in its metadata and on its first line…
    body = "Madame, Monsieur,\n\nNous accusons réception de votre demande « permis ».\n\nCordialement."
    r = httpx.post(server.url + "/v1/exports/docx", headers=agent,
                   json={"title": "Réponse à Mme Durand", "text": body}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.headers["x-civia-ai-generated"] == "true"
    assert "filename*=UTF-8''R%C3%A9ponse-%C3%A0-Mme-Durand.docx" in r.headers["content-disposition"]
    docx = r.content
    with zipfile.ZipFile(io.BytesIO(docx)) as z:
        custom = z.read("docProps/custom.xml").decode()
        core = z.read("docProps/core.xml").decode()
    assert "civia_ai_generated" in custom and TINY in custom
    assert "Réponse à Mme Durand" in core
    # …and the agent can upload it back: the text comes out.
    r = upload(server, agent, docx, "r%C3%A9ponse.docx")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["format"] == "docx" and "accusons réception" in doc["text"]
    assert "Brouillon IA" in doc["text"] and doc["characters"] == len(doc["text"])
    r = httpx.post(server.url + "/v1/exports/odt", headers=agent, json={"title": "x", "text": body, "notice": False})
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert z.namelist()[0] == "mimetype" and "civia_model" in z.read("meta.xml").decode()
        assert "Brouillon IA" not in z.read("content.xml").decode()
    r = httpx.post(server.url + "/v1/exports/txt", headers=agent, json={"title": "x", "text": "Bonjour"})
    assert r.text.startswith("Brouillon IA") and r.text.rstrip().endswith("Bonjour")
    # A PDF and a text file.
    r = upload(server, agent, minimal_pdf("Compte rendu du conseil municipal"), "cr.pdf", "application/pdf")
    assert r.status_code == 200 and "conseil municipal" in r.json()["text"] and r.json()["pages"] == 1, r.text
    r = upload(server, agent, "Ordre du jour : budget, voirie.".encode(), "odj.txt", "text/plain")
    assert r.json()["format"] == "txt" and "voirie" in r.json()["text"]


def test_bad_documents_get_a_clear_refusal_and_the_box_carries_on(civiad):
    server = civiad(model=TINY)
    agent = user_key(server, "agent", "agent")
    pdf = minimal_pdf("texte")
    cases = [
        (pdf[: len(pdf) // 3] + b"\x00garbage", "abime.pdf", "document_invalid", "corrupt"),
        (b"MZ\x90\x00" + b"\x00" * 200, "programme.exe", "document_unsupported", "unsupported"),
        (b"", "vide.txt", "document_unsupported", "empty"),
        (b"PK\x03\x04" + b"\x00" * 100, "faux.docx", "document_invalid", "corrupt"),
    ]
    for data, name, code, reason in cases:
        r = upload(server, agent, data, name)
        assert r.status_code == 400, (name, r.text)
        err = english_error(r.json())
        assert err["code"] == code, (name, err)
        assert err["details"]["reason"] == reason, (name, err)
    # 50 MB: refused with the limit named, the connection cut early, the daemon fine.
    r = upload(server, agent, b"a" * (50 * 1024 * 1024), "enorme.txt", "text/plain")
    assert r.status_code == 413, r.text[:300]
    assert english_error(r.json())["details"] == {"reason": "too_large", "max_bytes": 20 * 1024 * 1024}
    assert httpx.get(server.url + "/health").status_code == 200
    # Only the roles that use the model; unknown export formats; bad export bodies.
    dpo = user_key(server, "dpo", "dpo")
    assert upload(server, dpo, pdf, "x.pdf").status_code == 403
    assert httpx.post(server.url + "/v1/exports/pdf", headers=agent, json={"title": "x", "text": "y"}).status_code == 404
    for bad in ({"title": "x"}, {"title": "a\nb", "text": "y"}, {"title": "x" * 201, "text": "y"},
                {"title": "x", "text": "y", "evil": 1}):
        assert httpx.post(server.url + "/v1/exports/docx", headers=agent, json=bad).status_code == 400, bad


def test_the_web_application_is_served_with_strict_headers(civiad):
    server = civiad(model=TINY)
    r = httpx.get(server.url + "/", follow_redirects=False)
    assert r.status_code in (301, 302, 303, 307, 308) and r.headers["location"] == "/app/"
    page = httpx.get(server.url + "/app/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'lang="fr"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    js = httpx.get(server.url + "/app/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    for path in ("/app/nope.js", "/app/../Cargo.toml", "/app/%2e%2e/Cargo.toml"):
        assert httpx.get(server.url + path).status_code == 404, path


def test_extraction_is_metered_bounded_in_time_and_parallelism(civiad, tmp_path):
    """`/v1/parse` is a model request (audited, charter and quotas), and each extraction
    runs in a child process with a wall clock: a parser that hangs or balloons (stood for by an
    extractor program that sleeps or allocates) is stopped with a clear refusal, a second
    extraction meanwhile gets 503 documents_busy, and the box carries on."""
    import json
    import threading
    import time
    hang = tmp_path / "hang.sh"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    server = civiad(model=TINY, sections={"documents": {
        "extractor": str(hang), "timeout_secs": 2, "max_parallel": 1}})
    agent = user_key(server, "agent", "agent")
    box = {}
    t = threading.Thread(target=lambda: box.update(r=upload(server, agent, b"Bonjour", "a.txt", "text/plain")))
    t0 = time.monotonic()
    t.start()
    time.sleep(0.5)
    busy = upload(server, agent, b"Bonjour", "b.txt", "text/plain")
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "documents_busy", busy.text
    assert busy.headers["retry-after"]
    t.join()
    r = box["r"]
    assert r.status_code == 422 and r.json()["error"]["code"] == "document_too_complex", r.text
    assert english_error(r.json())["details"] == {"reason": "exhausted"}
    assert time.monotonic() - t0 < 50, "the hanging extraction was not stopped"
    # Every extraction is in the audit trail as a model request, refused or not.
    r = httpx.get(server.url + "/admin/audit/export", headers=server.headers(),
                  params={"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"})
    events = [json.loads(line)["event"] for line in r.text.splitlines()]
    assert events.count("request.received") >= 2, events
    # An agent who has not accepted the charter cannot use it either.
    h = server.headers()
    httpx.post(server.url + "/admin/users", headers=h, json={"name": "nouvelle", "role": "agent"})
    k = httpx.post(server.url + "/admin/keys", headers=h, json={"user": "nouvelle"}).json()["key"]
    r = upload(server, {"authorization": f"Bearer {k}"}, b"Bonjour", "c.txt", "text/plain")
    assert r.status_code == 403 and r.json()["error"]["code"] == "charter_not_accepted", r.text
    assert httpx.get(server.url + "/health").status_code == 200


TABLE = {
    "columns": ["Valeur demandée", "Valeur trouvée", "Unité", "Source"],
    "rows": [
        ["Puissance installée", 36.5, "kWc", "page 2; « annexe »"],
        ["Date de mise en service", "2024-03-01", None, "page 1"],
        ["Conforme à la norme", True, None, None],
        ["Coût HT", 1200000, "€", "ligne 1\nligne 2"],
        ["Référence", "=HYPERLINK(\"http://exemple.invalid\")", None, None],
    ],
}


def soffice_to_fods(path: Path, infilter: str | None = None) -> ET.Element:
    """LibreOffice Calc (headless) opens `path` and saves it as flat OpenDocument XML."""
    soffice = shutil.which("soffice")
    assert soffice, "LibreOffice is missing: appliance/scripts/deps.sh installs libreoffice-calc-nogui"
    profile = path.parent / "lo-profile"
    cmd = [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "fods",
           "--outdir", str(path.parent / "out"), str(path)]
    if infilter:
        cmd.insert(3, f"--infilter={infilter}")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out = path.parent / "out" / (path.stem + ".fods")
    assert r.returncode == 0 and out.exists(), r.stdout + r.stderr
    return ET.parse(out).getroot()


NS = {"table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
      "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
      "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0"}


def sheet_cells(root: ET.Element) -> list[list[tuple[str | None, str | None, str]]]:
    """(value type, typed value, text) of each cell, row by row, as LibreOffice read them."""
    o = "{%s}" % NS["office"]
    rows = []
    for row in root.iterfind(".//table:table-row", NS):
        cells = []
        for cell in row.iterfind("table:table-cell", NS):
            repeat = int(cell.get("{%s}number-columns-repeated" % NS["table"], "1"))
            text = "\n".join("".join(p.itertext()) for p in cell.iterfind("text:p", NS))
            value = cell.get(o + "value") or cell.get(o + "date-value") or cell.get(o + "boolean-value")
            cells += [(cell.get(o + "value-type"), value, text)] * min(repeat, 8)
        rows.append(cells)
    return rows


def test_tables_are_exported_and_libreoffice_reads_them_typed(civiad, tmp_path):
    server = civiad(model=TINY)
    agent = user_key(server, "agent", "agent")
    r = httpx.post(server.url + "/v1/exports/tables/ods", headers=agent, timeout=60,
                   json={"title": "Données extraites — rapport", "table": TABLE})
    assert r.status_code == 200, r.text
    assert r.headers["x-civia-ai-generated"] == "true"
    assert r.headers["content-type"] == "application/vnd.oasis.opendocument.spreadsheet"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert "civia_ai_generated" in z.read("meta.xml").decode()
    (tmp_path / "t.ods").write_bytes(r.content)
    rows = sheet_cells(soffice_to_fods(tmp_path / "t.ods"))
    assert rows[0][0][2].startswith("Brouillon IA — à vérifier"), rows[0]
    assert [c[2] for c in rows[1][:4]] == TABLE["columns"]
    assert rows[2][1][:2] == ("float", "36.5") and rows[2][3][2] == "page 2; « annexe »"
    assert rows[3][1][:2] == ("date", "2024-03-01")
    assert rows[4][1][:2] == ("boolean", "true")
    assert rows[5][1][:2] == ("float", "1200000") and rows[5][3][2] == "ligne 1\nligne 2"
    # A formula-looking text stays text: nothing is computed or followed.
    assert rows[6][1] == ("string", None, TABLE["rows"][4][1])
    # CSV: French conventions, and LibreOffice reads the same cells back.
    r = httpx.post(server.url + "/v1/exports/tables/csv", headers=agent, timeout=60,
                   json={"title": "Données", "table": TABLE, "notice": False})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text
    assert r.content.startswith("\ufeffValeur demandée;".encode())
    assert "Puissance installée;36,5;kWc;" in r.text and "01/03/2024" in r.text
    (tmp_path / "t.csv").write_bytes(r.content)
    rows = sheet_cells(soffice_to_fods(tmp_path / "t.csv", "CSV:59,34,76,1,,1036"))
    assert [c[2] for c in rows[0][:4]] == TABLE["columns"]
    # Read as a French spreadsheet reads it: the decimal comma is a number, the day a date.
    assert rows[1][1][:2] == ("float", "36.5") and rows[2][1][:2] == ("date", "2024-03-01")
    assert rows[4][3][2] == "ligne 1\nligne 2"
    # Hostile tables: a clear 400 each, the daemon answering.
    assert "Référence;\"'=HYPERLINK(" in r.text, "a formula stays inert text"
    for bad in ({"columns": [], "rows": []}, {"columns": ["a"], "rows": [[1] * 65]},
                {"columns": ["a"], "rows": [], "style": "x"},
                {"columns": ["a"] * 65, "rows": []}, {"columns": ["a"], "rows": [[{"x": 1}]]},
                {"columns": ["a"], "rows": [["x" * 10_001]]}, {"columns": "a", "rows": []}):
        r = httpx.post(server.url + "/v1/exports/tables/ods", headers=agent, json={"title": "x", "table": bad})
        assert r.status_code == 400, (bad, r.text)
    for path, body in (("/v1/exports/tables/xlsx", {"title": "x", "table": TABLE}),
                       ("/v1/exports/tables/csv", {"title": "x", "text": "y"}),
                       ("/v1/exports/tables/csv", {"title": "a\nb", "table": TABLE})):
        r = httpx.post(server.url + path, headers=agent, json=body)
        assert r.status_code in (400, 404), (path, r.text)
    assert httpx.post(server.url + "/v1/exports/tables/ods", headers=user_key(server, "dpo2", "dpo"),
                      json={"title": "x", "table": TABLE}).status_code == 403
