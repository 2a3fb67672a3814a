#!/usr/bin/env python3
"""Writes the French retrieval evaluation corpus (a fictional commune's documents).

Usage: make_corpus.py [--out DIR]      (default: .cache/knowledge-corpus/ under the repository)

The documents are defined in corpus_docs.py; this script renders them into text PDFs (fpdf2),
DOCX (python-docx, explicit page breaks), ODT (written by hand: a zip of ODF XML, page breaks as
paragraph styles with fo:break-before="page"), TXT (pages separated by form feeds), Markdown and
HTML (one page each), and scanned pages: images drawn with Pillow and a DejaVu TrueType font at
200 dpi, then greyed, noised, speckled and slightly rotated, saved as image-only PDFs (one JPEG
per page) or as single PNG, JPEG and bilevel TIFF files.

Everything is deterministic: fixed seeds, fixed dates in the metadata, fixed zip timestamps; two
runs with the same library versions write the same bytes. manifest.json lists every file with its
format, page count, scanned flag and SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import os
import re
import sys
import textwrap
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_docs import COMMUNE, DOCS, Doc  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / ".cache" / "knowledge-corpus"
FONT_DIRS = [
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts/dejavu"),
]
FIXED_DT = datetime(2024, 12, 2, 9, 0, 0, tzinfo=timezone.utc)
ZIP_DT = (2024, 12, 2, 9, 0, 0)
AUTHOR = f"Mairie de {COMMUNE}"
SCAN_DPI = 200
GENERATOR_VERSION = 1


# ---------------------------------------------------------------------------------------
# The page markup
# ---------------------------------------------------------------------------------------
def parse_page(text: str) -> list[tuple]:
    """Blocks of a page: ("h", level, text), ("p", text), ("li", text), ("sig", text),
    ("table", rows)."""
    blocks: list[tuple] = []
    table: list[list[str]] = []
    for raw in text.strip("\n").split("\n"):
        line = raw.strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                continue  # Markdown header separator
            table.append([strip_md(c) for c in cells])
            continue
        if table:
            blocks.append(("table", table))
            table = []
        if not line:
            continue
        m = re.match(r"(#{1,3}) (.*)", line)
        if m:
            blocks.append(("h", len(m.group(1)), strip_md(m.group(2))))
        elif line.startswith("- "):
            blocks.append(("li", strip_md(line[2:])))
        elif line.startswith("> "):
            blocks.append(("sig", strip_md(line[2:])))
        else:
            blocks.append(("p", strip_md(line)))
    if table:
        blocks.append(("table", table))
    return blocks


def strip_md(s: str) -> str:
    s = re.sub(r"\*\*(.+?)\*\*", r"\1", s)
    return re.sub(r"(?<![\w*])\*(\S.*?\S)\*(?![\w*])", r"\1", s)


def page_plain_text(doc: Doc, index: int) -> str:
    """The text of one page as a reader sees it (used by the tests to check the answers)."""
    out = []
    for b in parse_page(doc.pages[index]):
        if b[0] == "table":
            out.extend(" | ".join(r) for r in b[1])
        else:
            out.append(b[-1])
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Fonts
# ---------------------------------------------------------------------------------------
def font_path(name: str) -> Path:
    for d in FONT_DIRS:
        p = d / name
        if p.is_file():
            return p
    sys.exit(
        f"make_corpus: font {name} not found in {', '.join(map(str, FONT_DIRS))}; "
        "install the Debian package fonts-dejavu-core"
    )


# ---------------------------------------------------------------------------------------
# Text PDF (fpdf2)
# ---------------------------------------------------------------------------------------
def write_pdf(doc: Doc, path: Path) -> None:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos
    from fpdf.fonts import FontFace

    class Pdf(FPDF):
        def header(self):
            self.set_font("Sans", "", 7.5)
            self.set_text_color(110)
            self.cell(0, 4, f"Commune de {COMMUNE}", align="L")
            self.ln(7)
            self.set_text_color(0)

        def footer(self):
            self.set_y(-12)
            self.set_font("Sans", "", 7.5)
            self.set_text_color(110)
            self.cell(0, 5, f"{doc.title} — page {self.page_no()}/{{nb}}", align="C")
            self.set_text_color(0)

    pdf = Pdf(format="A4")
    pdf.set_margins(20, 14, 20)
    pdf.set_auto_page_break(True, 16)
    pdf.add_font("Serif", "", font_path("DejaVuSerif.ttf"))
    pdf.add_font("Serif", "B", font_path("DejaVuSerif-Bold.ttf"))
    pdf.add_font("Sans", "", font_path("DejaVuSans.ttf"))
    pdf.add_font("Sans", "B", font_path("DejaVuSans-Bold.ttf"))
    pdf.set_creation_date(FIXED_DT)
    pdf.set_title(doc.title)
    pdf.set_author(AUTHOR)
    pdf.set_creator("Civia evaluation corpus (make_corpus.py)")
    pdf.set_lang("fr-FR")
    nl = dict(new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for page in doc.pages:
        pdf.add_page()
        for b in parse_page(page):
            kind = b[0]
            if kind == "h":
                size = {1: 14, 2: 12, 3: 11}[b[1]]
                pdf.ln(2)
                pdf.set_font("Sans", "B", size)
                pdf.multi_cell(0, size * 0.5, b[2], **nl)
                pdf.ln(1.5)
            elif kind == "p":
                pdf.set_font("Serif", "", 10)
                pdf.multi_cell(0, 5, b[1], **nl)
                pdf.ln(1.5)
            elif kind == "li":
                pdf.set_font("Serif", "", 10)
                pdf.set_x(pdf.l_margin + 5)
                pdf.multi_cell(pdf.epw - 5, 5, "• " + b[1], **nl)
                pdf.ln(0.5)
            elif kind == "sig":
                pdf.ln(2)
                pdf.set_font("Serif", "B", 10)
                pdf.multi_cell(0, 5, b[1], align="R", **nl)
                pdf.ln(2)
            elif kind == "table":
                rows = b[1]
                pdf.set_font("Sans", "", 8.5)
                widths = col_weights(rows)
                with pdf.table(col_widths=widths, line_height=4.6, text_align="LEFT",
                               headings_style=FontFace(emphasis="BOLD")) as t:
                    for row in rows:
                        r = t.row()
                        for cell in row:
                            r.cell(cell)
                pdf.ln(2)
    if pdf.page_no() != len(doc.pages):
        sys.exit(f"make_corpus: {doc.file}: {pdf.page_no()} PDF pages for "
                 f"{len(doc.pages)} logical pages (a page overflows)")
    pdf.output(str(path))


def col_weights(rows: list[list[str]]) -> tuple[int, ...]:
    n = max(len(r) for r in rows)
    w = [max(6, min(60, max(len(r[i]) if i < len(r) else 0 for r in rows))) for i in range(n)]
    return tuple(w)


# ---------------------------------------------------------------------------------------
# DOCX (python-docx)
# ---------------------------------------------------------------------------------------
def write_docx(doc: Doc, path: Path) -> None:
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    d = docx.Document()
    cp = d.core_properties
    cp.title = doc.title
    cp.author = AUTHOR
    cp.last_modified_by = AUTHOR
    cp.created = FIXED_DT.replace(tzinfo=None)
    cp.modified = FIXED_DT.replace(tzinfo=None)
    cp.last_printed = FIXED_DT.replace(tzinfo=None)
    cp.revision = 1
    cp.language = "fr-FR"
    cp.comments = ""
    for i, page in enumerate(doc.pages):
        if i:
            d.add_page_break()
        for b in parse_page(page):
            kind = b[0]
            if kind == "h":
                d.add_heading(b[2], level=b[1])
            elif kind == "p":
                d.add_paragraph(b[1])
            elif kind == "li":
                d.add_paragraph(b[1], style="List Bullet")
            elif kind == "sig":
                p = d.add_paragraph(b[1])
                p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
            elif kind == "table":
                rows = b[1]
                n = max(len(r) for r in rows)
                t = d.add_table(rows=len(rows), cols=n)
                t.style = "Table Grid"
                for ri, row in enumerate(rows):
                    for ci, cell in enumerate(row):
                        t.cell(ri, ci).text = cell
                        if ri == 0:
                            for run in t.cell(ri, ci).paragraphs[0].runs:
                                run.bold = True
    buf = io.BytesIO()
    d.save(buf)
    path.write_bytes(normalized_zip(buf.getvalue()))


def normalized_zip(data: bytes) -> bytes:
    """The same zip with fixed timestamps (python-docx stamps entries with the current time)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=ZIP_DT)
            zi.compress_type = info.compress_type
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()


# ---------------------------------------------------------------------------------------
# ODT (hand-written ODF 1.2)
# ---------------------------------------------------------------------------------------
NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"'
)


def write_odt(doc: Doc, path: Path) -> None:
    x = xml_escape
    body: list[str] = []
    tables = 0
    for i, page in enumerate(doc.pages):
        blocks = parse_page(page)
        brk = i > 0  # the first paragraph of this page must carry the page break
        if brk and blocks[0][0] in ("table", "li"):
            body.append('<text:p text:style-name="PBreak"/>')
            brk = False
        j = 0
        while j < len(blocks):
            b = blocks[j]
            kind = b[0]
            if kind == "h":
                style = f"H{b[1]}Break" if brk else f"Heading_20_{b[1]}"
                body.append(f'<text:h text:style-name="{style}" text:outline-level="{b[1]}">'
                            f"{x(b[2])}</text:h>")
            elif kind in ("p", "sig"):
                style = "PBreak" if brk else ("Signature" if kind == "sig" else "Text_20_body")
                body.append(f'<text:p text:style-name="{style}">{x(b[1])}</text:p>')
            elif kind == "li":
                items = []
                while j < len(blocks) and blocks[j][0] == "li":
                    items.append(f'<text:list-item><text:p text:style-name="List_20_Item">'
                                 f"{x(blocks[j][1])}</text:p></text:list-item>")
                    j += 1
                body.append('<text:list text:style-name="Bullets">' + "".join(items)
                            + "</text:list>")
                brk = False
                continue
            elif kind == "table":
                tables += 1
                rows = b[1]
                n = max(len(r) for r in rows)
                t = [f'<table:table table:name="Tableau{tables}" table:style-name="Tbl">',
                     f'<table:table-column table:number-columns-repeated="{n}"/>']
                for ri, row in enumerate(rows):
                    t.append("<table:table-row>")
                    for cell in row + [""] * (n - len(row)):
                        ps = "Table_20_Heading" if ri == 0 else "Table_20_Contents"
                        t.append('<table:table-cell office:value-type="string">'
                                 f'<text:p text:style-name="{ps}">{x(cell)}</text:p>'
                                 "</table:table-cell>")
                    t.append("</table:table-row>")
                t.append("</table:table>")
                body.append("".join(t))
            brk = False
            j += 1
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<office:document-content {NS} office:version="1.2">'
        "<office:automatic-styles>"
        '<style:style style:name="PBreak" style:family="paragraph" '
        'style:parent-style-name="Text_20_body"><style:paragraph-properties '
        'fo:break-before="page"/></style:style>'
        + "".join(
            f'<style:style style:name="H{n}Break" style:family="paragraph" '
            f'style:parent-style-name="Heading_20_{n}"><style:paragraph-properties '
            'fo:break-before="page"/></style:style>'
            for n in (1, 2, 3)
        )
        + '<style:style style:name="Tbl" style:family="table"><style:table-properties '
        'style:width="17cm" table:align="margins"/></style:style>'
        "</office:automatic-styles>"
        "<office:body><office:text>" + "".join(body) + "</office:text></office:body>"
        "</office:document-content>"
    )
    heading_styles = "".join(
        f'<style:style style:name="Heading_20_{n}" style:display-name="Heading {n}" '
        'style:family="paragraph" style:parent-style-name="Standard" '
        f'style:next-style-name="Text_20_body" style:default-outline-level="{n}" '
        'style:class="text"><style:paragraph-properties fo:margin-top="0.35cm" '
        f'fo:margin-bottom="0.2cm"/><style:text-properties fo:font-size="{size}pt" '
        'fo:font-weight="bold"/></style:style>'
        for n, size in ((1, 16), (2, 13), (3, 11.5))
    )
    styles = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<office:document-styles {NS} office:version="1.2"><office:styles>'
        '<style:default-style style:family="paragraph"><style:text-properties '
        'fo:font-size="11pt" fo:language="fr" fo:country="FR"/></style:default-style>'
        '<style:style style:name="Standard" style:family="paragraph" style:class="text"/>'
        '<style:style style:name="Text_20_body" style:display-name="Text body" '
        'style:family="paragraph" style:parent-style-name="Standard" style:class="text">'
        '<style:paragraph-properties fo:margin-bottom="0.2cm" fo:text-align="justify"/>'
        "</style:style>"
        '<style:style style:name="Signature" style:family="paragraph" '
        'style:parent-style-name="Standard"><style:paragraph-properties fo:text-align="end" '
        'fo:margin-top="0.4cm"/><style:text-properties fo:font-weight="bold"/></style:style>'
        '<style:style style:name="List_20_Item" style:display-name="List Item" '
        'style:family="paragraph" style:parent-style-name="Standard"/>'
        '<style:style style:name="Table_20_Contents" style:display-name="Table Contents" '
        'style:family="paragraph" style:parent-style-name="Standard"/>'
        '<style:style style:name="Table_20_Heading" style:display-name="Table Heading" '
        'style:family="paragraph" style:parent-style-name="Table_20_Contents">'
        '<style:text-properties fo:font-weight="bold"/></style:style>'
        + heading_styles
        + '<text:list-style style:name="Bullets"><text:list-level-style-bullet '
        'text:level="1" text:bullet-char="•"><style:list-level-properties '
        'text:space-before="0.4cm" text:min-label-width="0.4cm"/>'
        "</text:list-level-style-bullet></text:list-style>"
        "</office:styles><office:automatic-styles>"
        '<style:page-layout style:name="pm1"><style:page-layout-properties '
        'fo:page-width="21cm" fo:page-height="29.7cm" fo:margin-top="2cm" '
        'fo:margin-bottom="2cm" fo:margin-left="2cm" fo:margin-right="2cm"/>'
        "</style:page-layout></office:automatic-styles><office:master-styles>"
        '<style:master-page style:name="Standard" style:page-layout-name="pm1"/>'
        "</office:master-styles></office:document-styles>"
    )
    stamp = FIXED_DT.strftime("%Y-%m-%dT%H:%M:%S")
    meta = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<office:document-meta {NS} office:version="1.2"><office:meta>'
        "<meta:generator>Civia evaluation corpus (make_corpus.py)</meta:generator>"
        f"<dc:title>{x(doc.title)}</dc:title><dc:creator>{x(AUTHOR)}</dc:creator>"
        f"<meta:creation-date>{stamp}</meta:creation-date><dc:date>{stamp}</dc:date>"
        f'<dc:language>fr-FR</dc:language><meta:document-statistic meta:page-count="'
        f'{len(doc.pages)}" meta:table-count="{tables}"/>'
        "</office:meta></office:document-meta>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
        'manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:version="1.2" '
        'manifest:media-type="application/vnd.oasis.opendocument.text"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        '<manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>'
        '<manifest:file-entry manifest:full-path="meta.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        def put(name: str, data: str, method: int = zipfile.ZIP_DEFLATED) -> None:
            zi = zipfile.ZipInfo(name, date_time=ZIP_DT)
            zi.compress_type = method
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data.encode("utf-8"))

        put("mimetype", "application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        put("content.xml", content)
        put("styles.xml", styles)
        put("meta.xml", meta)
        put("META-INF/manifest.xml", manifest)
    path.write_bytes(buf.getvalue())


# ---------------------------------------------------------------------------------------
# TXT, Markdown, HTML
# ---------------------------------------------------------------------------------------
def txt_page(page: str, width: int = 78) -> str:
    out: list[str] = []
    for b in parse_page(page):
        kind = b[0]
        if kind == "h":
            out.append("")
            out.append(b[2])
            out.append(("=" if b[1] == 1 else "-") * min(width, len(b[2])))
        elif kind == "p":
            out.extend(textwrap.wrap(b[1], width, break_on_hyphens=False))
        elif kind == "li":
            out.extend(textwrap.wrap(b[1], width, initial_indent="  - ",
                                     subsequent_indent="    ", break_on_hyphens=False))
        elif kind == "sig":
            out.append("")
            out.append(b[1].rjust(width))
        elif kind == "table":
            rows = b[1]
            n = max(len(r) for r in rows)
            rows = [r + [""] * (n - len(r)) for r in rows]
            w = [max(len(r[i]) for r in rows) for i in range(n)]
            out.append("")
            for ri, r in enumerate(rows):
                out.append("  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
                if ri == 0:
                    out.append("  ".join("-" * w[i] for i in range(n)))
            out.append("")
    return "\n".join(out).strip("\n") + "\n"


def write_txt(doc: Doc, path: Path) -> None:
    # Pages are separated by a form feed, as printers and many text exports do.
    path.write_text("\f\n".join(txt_page(p) for p in doc.pages), encoding="utf-8")


def write_md(doc: Doc, path: Path) -> None:
    assert len(doc.pages) == 1, "Markdown documents have one page"
    path.write_text(doc.pages[0].strip("\n") + "\n", encoding="utf-8")


def write_html(doc: Doc, path: Path) -> None:
    assert len(doc.pages) == 1, "HTML documents have one page"
    ent = doc.style.get("entities", False)

    def e(s: str) -> str:
        s = html.escape(s, quote=False)
        if ent:  # named entities, as some content management systems still write them
            for ch, name in (("«", "&laquo;"), ("»", "&raquo;"), ("’", "&rsquo;"),
                             ("€", "&euro;"), ("\u00a0", "&nbsp;"), ("é", "&eacute;")):
                s = s.replace(ch, name)
        return s

    body: list[str] = []
    blocks = parse_page(doc.pages[0])
    j = 0
    while j < len(blocks):
        b = blocks[j]
        if b[0] == "h":
            body.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            body.append(f"<p>{e(b[1])}</p>")
        elif b[0] == "sig":
            body.append(f'<p class="signature">{e(b[1])}</p>')
        elif b[0] == "li":
            items = []
            while j < len(blocks) and blocks[j][0] == "li":
                items.append(f"  <li>{e(blocks[j][1])}</li>")
                j += 1
            body.append("<ul>\n" + "\n".join(items) + "\n</ul>")
            continue
        elif b[0] == "table":
            rows = b[1]
            head = "".join(f"<th>{e(c)}</th>" for c in rows[0])
            trs = "\n".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                            for r in rows[1:])
            body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{trs}\n"
                        "</tbody>\n</table>")
        j += 1
    page = f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>{e(doc.title)} — {e(COMMUNE)}</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.2em .5em}}</style>
<script>document.documentElement.classList.add("js");</script>
</head>
<body>
<header><p class="site">Commune de {e(COMMUNE)}</p>
<nav><a href="/">Accueil</a> | <a href="/mairie">Mairie</a> | <a href="/vie-pratique">Vie pratique</a> | <a href="/agenda">Agenda</a></nav></header>
<main>
{chr(10).join(body)}
</main>
<footer><p>Mairie de {e(COMMUNE)} — 1 place de la Mairie — <a href="/mentions-legales">Mentions légales</a></p></footer>
</body>
</html>
"""
    path.write_text(page, encoding="utf-8")


# ---------------------------------------------------------------------------------------
# Scanned pages (Pillow + numpy)
# ---------------------------------------------------------------------------------------
def scan_images(doc: Doc) -> list:
    for size in (30, 28, 26, 24, 22):
        try:
            return [degrade(draw_page(page, size, doc.style), doc.style, i)
                    for i, page in enumerate(doc.pages)]
        except OverflowError:
            continue
    sys.exit(f"make_corpus: {doc.file}: a page does not fit on a scanned page")


def draw_page(page: str, size: int, style: dict):
    from PIL import Image, ImageDraw, ImageFont

    w, h = round(8.27 * SCAN_DPI), round(11.69 * SCAN_DPI)
    margin = 150
    mono = style.get("font") == "mono"
    reg = font_path("DejaVuSansMono.ttf" if mono else "DejaVuSerif.ttf")
    bold = font_path("DejaVuSansMono-Bold.ttf" if mono else "DejaVuSerif-Bold.ttf")
    f_body = ImageFont.truetype(str(reg), size)
    f_bold = ImageFont.truetype(str(bold), size)
    f_h = {1: ImageFont.truetype(str(bold), round(size * 1.45)),
           2: ImageFont.truetype(str(bold), round(size * 1.2)),
           3: ImageFont.truetype(str(bold), round(size * 1.05))}
    f_tab = ImageFont.truetype(str(reg), round(size * 0.9))
    f_tab_b = ImageFont.truetype(str(bold), round(size * 0.9))
    img = Image.new("L", (w, h), 255)
    dr = ImageDraw.Draw(img)
    width = w - 2 * margin
    y = margin

    def wrap(text: str, font, maxw: float) -> list[str]:
        lines, cur = [], ""
        for word in text.split(" "):
            cand = word if not cur else cur + " " + word
            if font.getlength(cand) <= maxw or not cur:
                cur = cand
            else:
                lines.append(cur)
                cur = word
        if cur:
            lines.append(cur)
        return lines

    def line_h(font) -> int:
        return round(font.size * 1.38)

    def need(px: int) -> None:
        if y + px > h - margin:
            raise OverflowError

    for b in parse_page(page):
        kind = b[0]
        if kind == "h":
            font = f_h[b[1]]
            lines = wrap(b[2], font, width)
            y += round(size * 0.4)
            need(len(lines) * line_h(font))
            for ln in lines:
                x = margin + (width - font.getlength(ln)) / 2 if b[1] <= 2 else margin
                dr.text((x, y), ln, font=font, fill=0)
                y += line_h(font)
            y += round(size * 0.3)
        elif kind in ("p", "li", "sig"):
            font = f_bold if kind == "sig" else f_body
            indent = 40 if kind == "li" else 0
            text = b[1]
            lines = wrap(text, font, width - indent - (30 if kind == "li" else 0))
            need(len(lines) * line_h(font))
            if kind == "sig":
                y += round(size * 0.6)
            for k, ln in enumerate(lines):
                if kind == "sig":
                    x = margin + width - font.getlength(ln)
                elif kind == "li":
                    x = margin + indent + 30
                    if k == 0:
                        dr.text((margin + indent, y), "•", font=font, fill=0)
                else:
                    x = margin
                dr.text((x, y), ln, font=font, fill=0)
                y += line_h(font)
            y += round(size * 0.45)
        elif kind == "table":
            rows = b[1]
            n = max(len(r) for r in rows)
            rows = [r + [""] * (n - len(r)) for r in rows]
            natural = [max(f_tab.getlength(r[i]) for r in rows) + 24 for i in range(n)]
            total = sum(natural)
            cols = [width * c / total for c in natural] if total > width else natural
            pad = 10
            y += round(size * 0.2)
            for ri, r in enumerate(rows):
                font = f_tab_b if ri == 0 else f_tab
                cells = [wrap(c, font, cols[i] - 2 * pad) for i, c in enumerate(r)]
                rh = max(len(c) for c in cells) * line_h(font) + pad
                need(rh)
                x = margin
                for i, c in enumerate(cells):
                    dr.rectangle([x, y, x + cols[i], y + rh], outline=0, width=2)
                    for k, ln in enumerate(c):
                        dr.text((x + pad, y + pad // 2 + k * line_h(font)), ln, font=font,
                                fill=0)
                    x += cols[i]
                y += rh
            y += round(size * 0.6)
    return img


def degrade(img, style: dict, index: int):
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng([int(style.get("seed", 1)), index])
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    a = np.asarray(img, dtype=np.float32) / 255.0
    h, w = a.shape
    paper = 232 + float(rng.integers(0, 12))
    ink = 28 + float(rng.integers(0, 25))
    a = ink + a * (paper - ink)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a += (xx / w) * float(rng.uniform(-12, 12)) + (yy / h) * float(rng.uniform(-10, 10))
    a += rng.normal(0.0, 6.0, a.shape).astype(np.float32)
    n = 900
    ys = rng.integers(0, h, n)
    xs = rng.integers(0, w, n)
    a[ys, xs] -= rng.uniform(60, 160, n).astype(np.float32)
    band = int(rng.integers(0, 40))  # a darker strip on the binding side, as copiers leave
    if band:
        a[:, :band] -= np.linspace(60, 0, band, dtype=np.float32)[None, :]
    a = np.clip(a, 0, 255).astype(np.uint8)
    out = Image.fromarray(a, "L")
    angle = float(style.get("angle", 0.5)) * (1.0 if index % 2 == 0 else -0.8)
    return out.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=int(paper))


def write_scan(doc: Doc, path: Path) -> None:
    images = scan_images(doc)
    dpi = (SCAN_DPI, SCAN_DPI)
    if doc.fmt == "scan-pdf":
        stamp = time.struct_time((2024, 12, 2, 9, 0, 0, 0, 337, 0))
        images[0].save(path, "PDF", save_all=True, append_images=images[1:],
                       resolution=float(SCAN_DPI), quality=70, title=doc.title,
                       author=AUTHOR, creator="Copieur multifonction — numérisation",
                       producer="Civia evaluation corpus (make_corpus.py)",
                       creationDate=stamp, modDate=stamp)
        return
    assert len(images) == 1, f"{doc.file}: single-image formats hold one page"
    img = images[0]
    if doc.fmt == "png":
        img.save(path, "PNG", dpi=dpi)
    elif doc.fmt == "jpg":
        img.save(path, "JPEG", dpi=dpi, quality=72)
    elif doc.fmt == "tiff":
        # A bilevel fax-like scan, CCITT group 4 compressed.
        bw = img.point(lambda v: 255 if v > 150 else 0).convert("1", dither=None)
        bw.save(path, "TIFF", dpi=dpi, compression="group4")
    else:
        raise ValueError(doc.fmt)


WRITERS = {"pdf": write_pdf, "docx": write_docx, "odt": write_odt, "txt": write_txt,
           "md": write_md, "html": write_html, "scan-pdf": write_scan, "png": write_scan,
           "jpg": write_scan, "tiff": write_scan}


# ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"output directory (default: {DEFAULT_OUT})")
    ap.add_argument("--only", help="regenerate only the documents whose name contains this")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    names = [d.file for d in DOCS]
    assert len(set(names)) == len(names), "duplicate file names"
    old = out / "manifest.json"
    if old.exists() and not args.only:  # remove what an earlier run wrote, nothing else
        for entry in json.loads(old.read_text(encoding="utf-8")).get("documents", []):
            p = out / entry["file"]
            if p.exists() and entry["file"] not in names:
                p.unlink()
    entries = []
    t0 = time.monotonic()
    for d in DOCS:
        path = out / d.file
        if not args.only or args.only in d.file or not path.exists():
            tmp = path.with_name(path.name + ".part")
            WRITERS[d.fmt](d, tmp)
            os.replace(tmp, path)
        data = path.read_bytes()
        entries.append({
            "file": d.file, "format": d.fmt, "title": d.title, "kind": d.kind,
            "date": d.date, "pages": len(d.pages), "scanned": d.scanned,
            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        })
    manifest = {
        "generator": "hw-tests/knowledge/make_corpus.py", "version": GENERATOR_VERSION,
        "commune": COMMUNE,
        "page_convention": ("PDF: physical page; DOCX: explicit page breaks; ODT: paragraph "
                            "styles with fo:break-before=page; TXT: form feeds; Markdown, "
                            "HTML and single images: one page"),
        "documents": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n",
                                       encoding="utf-8")
    pages = sum(e["pages"] for e in entries)
    scanned = sum(e["pages"] for e in entries if e["scanned"])
    size = sum(e["bytes"] for e in entries)
    print(f"{len(entries)} documents, {pages} pages ({scanned} scanned), "
          f"{size / 1e6:.1f} MB in {out} ({time.monotonic() - t0:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
