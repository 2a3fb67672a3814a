"""Shared pieces of the knowledge-search evaluation: the question set, the corpus manifest and
the metrics, so that the BM25 peer (bm25_peer.py) and the Civia harness (eval_civia.py) score
their rankings exactly the same way.

Metrics, for the answerable questions only, from a ranked list of hits (document, page), one per
returned chunk, best first:
  recall@k  the share of questions with at least one acceptable (document, page) among the first
            k hits (with one relevant page per question this is also the hit rate / success@k);
  mrr@10    the mean of 1/rank of the first acceptable hit within the first 10, 0 when none.
At document level the page is ignored. A hit whose page is unknown (None) counts at page level
only for a one-page document (Markdown, HTML, single image), where it can only be page 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_CORPUS = REPO / ".cache" / "knowledge-corpus"
QUESTIONS = HERE / "questions.json"
KS = (1, 5, 10)

Hit = tuple[str, Optional[int]]


def load_questions(path: Path = QUESTIONS) -> list[dict]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    qs = data["questions"]
    seen = set()
    for q in qs:
        if q["id"] in seen:
            raise ValueError(f"{path}: duplicate question id {q['id']}")
        seen.add(q["id"])
        if not q.get("unanswerable") and not q["answers"]:
            raise ValueError(f"{path}: {q['id']} has no acceptable answer")
    return qs


def load_manifest(corpus: Path) -> dict[str, dict]:
    """The corpus manifest, file name → entry; exits with a clear message when absent."""
    m = Path(corpus) / "manifest.json"
    if not m.is_file():
        sys.exit(f"{m} not found: generate the corpus first with "
                 f"`.cache/venv/bin/python hw-tests/knowledge/make_corpus.py --out {corpus}`")
    entries = json.loads(m.read_text(encoding="utf-8"))["documents"]
    missing = [e["file"] for e in entries if not (Path(corpus) / e["file"]).is_file()]
    if missing:
        sys.exit(f"{corpus}: missing corpus files {missing}; regenerate with make_corpus.py")
    return {e["file"]: e for e in entries}


def check_questions_against(manifest: dict[str, dict], questions: list[dict]) -> None:
    for q in questions:
        for a in q["answers"]:
            e = manifest.get(a["document"])
            if e is None:
                sys.exit(f"question {q['id']}: document {a['document']} is not in the corpus")
            if not 1 <= a["page"] <= e["pages"]:
                sys.exit(f"question {q['id']}: page {a['page']} outside {a['document']}")


def first_rank(hits: Iterable[Hit], q: dict, manifest: dict[str, dict], page_level: bool,
               ) -> Optional[int]:
    """1-based rank of the first acceptable hit, or None."""
    ok_docs = {a["document"] for a in q["answers"]}
    ok_pages = {(a["document"], a["page"]) for a in q["answers"]}
    for rank, (doc, page) in enumerate(hits, 1):
        if not page_level:
            if doc in ok_docs:
                return rank
            continue
        if page is None and doc in manifest and manifest[doc]["pages"] == 1:
            page = 1
        if (doc, page) in ok_pages:
            return rank
    return None


def evaluate(questions: list[dict], rankings: dict[str, list[Hit]],
             manifest: dict[str, dict]) -> dict:
    """Metrics at page and document level, overall and for scanned / not scanned questions."""
    out: dict = {}
    for level in ("page", "document"):
        groups: dict[str, list[Optional[int]]] = {"all": [], "scanned": [], "not_scanned": []}
        for q in questions:
            if q.get("unanswerable"):
                continue
            r = first_rank(rankings.get(q["id"], []), q, manifest, level == "page")
            groups["all"].append(r)
            groups["scanned" if q.get("scanned") else "not_scanned"].append(r)
        out[level] = {g: summarize(ranks) for g, ranks in groups.items()}
    return out


def summarize(ranks: list[Optional[int]]) -> dict:
    n = len(ranks)
    if not n:
        return {"n": 0}
    d = {"n": n}
    for k in KS:
        d[f"recall@{k}"] = round(sum(1 for r in ranks if r is not None and r <= k) / n, 4)
    d["mrr@10"] = round(sum(1 / r for r in ranks if r is not None and r <= 10) / n, 4)
    return d


def per_question(questions: list[dict], rankings: dict[str, list[Hit]],
                 manifest: dict[str, dict]) -> list[dict]:
    rows = []
    for q in questions:
        hits = rankings.get(q["id"], [])
        rows.append({
            "id": q["id"], "scanned": q.get("scanned", False),
            "unanswerable": q.get("unanswerable", False),
            "page_rank": None if q.get("unanswerable") else first_rank(hits, q, manifest, True),
            "document_rank": None if q.get("unanswerable")
            else first_rank(hits, q, manifest, False),
            "top": [list(h) for h in hits[:3]],
        })
    return rows


def table(results: dict[str, dict]) -> str:
    """A plain-text table of {method: evaluate(...)}."""
    cols = ("n", "recall@1", "recall@5", "recall@10", "mrr@10")
    lines = [f"{'method':<14}{'level':<10}{'questions':<13}" + "".join(f"{c:>11}" for c in cols)]
    lines.append("-" * len(lines[0]))
    for method, res in results.items():
        for level in ("page", "document"):
            for g in ("all", "not_scanned", "scanned"):
                m = res[level][g]
                cells = "".join(
                    f"{m.get(c, 0):>11}" if c == "n" else f"{m.get(c, 0):>11.3f}" for c in cols)
                lines.append(f"{method:<14}{level:<10}{g:<13}{cells}")
    return "\n".join(lines)
