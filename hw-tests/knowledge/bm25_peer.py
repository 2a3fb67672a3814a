#!/usr/bin/env python3
"""The BM25 peer: what an off-the-shelf lexical search from PyPI finds in the evaluation corpus.

Usage: bm25_peer.py [--corpus DIR] [--questions FILE] [--chunk-chars 1000]
                    [--tokens alnum|letters] [--details FILE] [--ocr-diagnostic]

Text per page with ordinary libraries and no OCR: pypdf for PDF, python-docx's XML for DOCX
(explicit page breaks), the ODF XML for ODT (paragraph styles that break the page), form feeds
for TXT, the whole file for Markdown, html.parser for HTML. Scanned documents (image-only PDFs,
PNG, JPEG, TIFF) give no text: a BM25 library does no OCR, so the peer cannot find them.
Pages are cut into chunks of about --chunk-chars characters (a chunk never spans two pages),
tokenized simply (lowercase, split on whatever is not a letter or, by default, a digit; no
stemming, no stop words) and ranked with rank-bm25's BM25Okapi and with bm25s (Lucene variant).

Prints the metrics of evalset.py as JSON on stdout, and a table on stderr.
--ocr-diagnostic is not the peer: it reads the scanned pages with the tesseract command, to
show how much of the gap OCR alone closes.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evalset  # noqa: E402

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


# ---------------------------------------------------------------------------------------
# Text per page
# ---------------------------------------------------------------------------------------
def pdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    out = []
    for page in reader.pages:
        try:
            out.append(page.extract_text() or "")
        except Exception as e:  # a broken page yields no text, as in a plain pipeline
            print(f"bm25_peer: {path.name}: page unreadable: {e}", file=sys.stderr)
            out.append("")
    return out


W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def docx_pages(path: Path) -> list[str]:
    import docx

    body = docx.Document(str(path)).element.body
    pages: list[list[str]] = [[]]
    for el in body.iter():
        tag = el.tag
        if tag == W + "p":
            ppr = el.find(W + "pPr")
            if ppr is not None and ppr.find(W + "pageBreakBefore") is not None:
                pages.append([])
            pages[-1].append("\n")
        elif tag == W + "t" and el.text:
            pages[-1].append(el.text)
        elif tag == W + "tab" or tag == W + "tc":
            pages[-1].append(" ")
        elif tag == W + "br":
            if el.get(W + "type") == "page":
                pages.append([])
            else:
                pages[-1].append("\n")
    return ["".join(p) for p in pages]


TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
FO = "{urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0}"
OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"


def odt_pages(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        content = ET.fromstring(z.read("content.xml"))
        styles = ET.fromstring(z.read("styles.xml")) if "styles.xml" in z.namelist() else None
    breaking = set()
    for root in (content, styles):
        if root is None:
            continue
        for st in root.iter(STYLE + "style"):
            pp = st.find(STYLE + "paragraph-properties")
            if pp is not None and pp.get(FO + "break-before") == "page":
                breaking.add(st.get(STYLE + "name"))
    pages: list[list[str]] = [[]]

    def text_of(el) -> str:
        parts = [el.text or ""]
        for child in el:
            if child.tag == TEXT + "s":
                parts.append(" " * int(child.get(TEXT + "c", "1")))
            elif child.tag in (TEXT + "tab", TEXT + "line-break"):
                parts.append(" " if child.tag == TEXT + "tab" else "\n")
            else:
                parts.append(text_of(child))
            parts.append(child.tail or "")
        return "".join(parts)

    def walk(el) -> None:
        for child in el:
            if child.tag in (TEXT + "p", TEXT + "h"):
                if child.get(TEXT + "style-name") in breaking and any(
                        s.strip() for s in pages[-1]):
                    pages.append([])
                pages[-1].append(text_of(child) + "\n")
            elif child.tag == TEXT + "soft-page-break":
                pages.append([])
            else:
                walk(child)

    office_text = content.find(f"{OFFICE}body/{OFFICE}text")
    walk(office_text if office_text is not None else content)
    return ["".join(p) for p in pages]


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in ("p", "li", "tr", "br", "h1", "h2", "h3", "div", "td", "th"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_pages(path: Path) -> list[str]:
    p = _HtmlText()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    p.close()
    return ["".join(p.parts)]


def ocr_pages(path: Path) -> list[str] | None:
    """Text of a scanned file with the tesseract command (French), one string per page, or
    None when the file has a text layer. Diagnostic only: the peer itself does no OCR."""
    import subprocess
    from PIL import Image

    ext = path.suffix.lower()
    if ext in IMAGE_EXT:
        images = [Image.open(path)]
    elif ext == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        if any((p.extract_text() or "").strip() for p in reader.pages):
            return None
        images = [p.images[0].image if p.images else None for p in reader.pages]
    else:
        return None
    out = []
    for im in images:
        if im is None:
            out.append("")
            continue
        buf = io.BytesIO()
        im.convert("L").save(buf, "PNG")
        r = subprocess.run(["tesseract", "-", "-", "-l", "fra"], input=buf.getvalue(),
                           capture_output=True, check=True)
        out.append(r.stdout.decode("utf-8", errors="replace"))
    return out


def page_texts(path: Path, ocr: bool = False) -> list[str]:
    ext = path.suffix.lower()
    if ocr:
        texts = ocr_pages(path)
        if texts is not None:
            return texts
    if ext == ".pdf":
        return pdf_pages(path)
    if ext == ".docx":
        return docx_pages(path)
    if ext == ".odt":
        return odt_pages(path)
    if ext == ".txt":
        return path.read_text(encoding="utf-8", errors="replace").split("\f")
    if ext == ".md":
        return [path.read_text(encoding="utf-8", errors="replace")]
    if ext in (".html", ".htm"):
        return html_pages(path)
    if ext in IMAGE_EXT:
        return [""]  # no OCR
    raise ValueError(f"unsupported file {path.name}")


# ---------------------------------------------------------------------------------------
# Chunks and tokens
# ---------------------------------------------------------------------------------------
def chunk_page(text: str, size: int) -> list[str]:
    """Cuts a page into pieces of at most about `size` characters, at a sentence end or a
    blank when one lies in the second half of the window."""
    text = re.sub(r"[ \t\u00a0\u202f]+", " ", text)
    text = re.sub(r"\s*\n\s*", "\n", text).strip()
    out = []
    while text:
        if len(text) <= size:
            out.append(text)
            break
        window = text[:size]
        cut = max(window.rfind(". "), window.rfind(".\n"), window.rfind("\n"))
        if cut < size // 2:
            cut = window.rfind(" ")
        if cut < size // 2:
            cut = size - 1
        out.append(text[:cut + 1].strip())
        text = text[cut + 1:].strip()
    return [c for c in out if c]


def tokenizer(kind: str):
    pat = re.compile(r"[^\W\d_]+" if kind == "letters" else r"[^\W_]+")

    def tok(s: str) -> list[str]:
        return pat.findall(s.lower())
    return tok


# ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="BM25 peer for the knowledge evaluation set")
    ap.add_argument("--corpus", type=Path, default=evalset.DEFAULT_CORPUS)
    ap.add_argument("--questions", type=Path, default=evalset.QUESTIONS)
    ap.add_argument("--chunk-chars", type=int, default=1000)
    ap.add_argument("--tokens", choices=("alnum", "letters"), default="alnum",
                    help="split on non-alphanumerics (default) or on non-letters")
    ap.add_argument("--details", type=Path, help="write per-question ranks (JSON) here")
    ap.add_argument("--ocr-diagnostic", action="store_true",
                    help="NOT the peer: read scanned pages with the tesseract command (French "
                         "data), to see how much of the gap OCR alone would close")
    args = ap.parse_args(argv)
    if args.ocr_diagnostic:
        import shutil

        if not shutil.which("tesseract"):
            ap.error("--ocr-diagnostic needs the tesseract command (Debian: tesseract-ocr "
                     "tesseract-ocr-fra)")

    manifest = evalset.load_manifest(args.corpus)
    questions = evalset.load_questions(args.questions)
    evalset.check_questions_against(manifest, questions)
    tok = tokenizer(args.tokens)

    t0 = time.monotonic()
    chunks: list[tuple[str, int, str]] = []
    pages = empty_pages = 0
    empty_docs = []
    for name, entry in manifest.items():
        texts = page_texts(args.corpus / name, ocr=args.ocr_diagnostic)
        if len(texts) != entry["pages"]:
            print(f"bm25_peer: {name}: {len(texts)} pages extracted, manifest says "
                  f"{entry['pages']}", file=sys.stderr)
        pages += len(texts)
        doc_empty = True
        for i, t in enumerate(texts, 1):
            pieces = chunk_page(t, args.chunk_chars)
            if not pieces:
                empty_pages += 1
            else:
                doc_empty = False
            chunks.extend((name, i, c) for c in pieces)
        if doc_empty:
            empty_docs.append(name)
    extract_s = time.monotonic() - t0
    tokenized = [tok(c[2]) for c in chunks]

    from rank_bm25 import BM25Okapi

    rankings: dict[str, dict[str, list]] = {"bm25okapi": {}, "bm25s": {}}
    scores_top: dict[str, list[float]] = {"answerable": [], "unanswerable": []}
    okapi = BM25Okapi(tokenized)
    for q in questions:
        s = okapi.get_scores(tok(q["question"]))
        order = sorted(range(len(chunks)), key=lambda i: (-s[i], i))[:10]
        rankings["bm25okapi"][q["id"]] = [(chunks[i][0], chunks[i][1]) for i in order]
        scores_top["unanswerable" if q.get("unanswerable") else "answerable"].append(
            float(s[order[0]]))

    try:
        import bm25s
    except ImportError:
        bm25s = None
        del rankings["bm25s"]
    if bm25s is not None:
        retriever = bm25s.BM25()
        retriever.index(tokenized, show_progress=False)
        for q in questions:
            qt = tok(q["question"])
            docs, _ = retriever.retrieve([qt], k=10, show_progress=False)
            rankings["bm25s"][q["id"]] = [(chunks[i][0], chunks[i][1]) for i in docs[0]]

    results = {m: evalset.evaluate(questions, r, manifest) for m, r in rankings.items()}
    scanned_docs = [n for n, e in manifest.items() if e["scanned"]]
    median = lambda v: sorted(v)[len(v) // 2] if v else None  # noqa: E731
    report = {
        "peer": "rank-bm25 BM25Okapi (k1=1.5, b=0.75) and bm25s (Lucene) over page chunks",
        "ocr": "tesseract (diagnostic run, not the peer)" if args.ocr_diagnostic else False,
        "note": ("Diagnostic: scanned pages read by tesseract; the peer proper does no OCR."
                 if args.ocr_diagnostic else
                 "No OCR: the scanned documents (image-only PDFs, PNG, JPEG, TIFF) give no "
                 "text to a BM25 library, so their questions cannot be answered by the peer."),
        "tokenizer": f"lowercase, split on non-{'letters' if args.tokens == 'letters' else 'alphanumerics'}, no stemming, no stop words",
        "chunk_chars": args.chunk_chars,
        "corpus": {
            "dir": str(args.corpus), "documents": len(manifest), "pages": pages,
            "pages_without_text": empty_pages, "documents_without_text": len(empty_docs),
            "scanned_documents": len(scanned_docs),
            "scanned_pages": sum(manifest[n]["pages"] for n in scanned_docs),
            "chunks": len(chunks), "extract_seconds": round(extract_s, 2),
        },
        "questions": {
            "answerable": sum(1 for q in questions if not q.get("unanswerable")),
            "scanned": sum(1 for q in questions if q.get("scanned")),
            "unanswerable": sum(1 for q in questions if q.get("unanswerable")),
        },
        "results": results,
        "bm25okapi_top1_score_median": {k: median(v) for k, v in scores_top.items()},
    }
    if args.details:
        args.details.write_text(json.dumps(
            {m: evalset.per_question(questions, r, manifest) for m, r in rankings.items()},
            ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    json.dump(report, sys.stdout, ensure_ascii=False, indent=1)
    print()
    c = report["corpus"]
    print(f"BM25 {'with tesseract OCR (diagnostic)' if args.ocr_diagnostic else 'peer'} — {c['documents']} documents, {c['pages']} pages "
          f"({c['pages_without_text']} without text), {c['chunks']} chunks of "
          f"≤{args.chunk_chars} characters; {report['questions']['answerable']} answerable "
          f"questions ({report['questions']['scanned']} on scanned pages)", file=sys.stderr)
    print(evalset.table(results), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
