#!/usr/bin/env python3
"""Write a tiny random-weight GGUF model with Mistral's shape, for tests.

The model is architecture `llama` (as Mistral GGUFs are), 2 layers, grouped-query
attention (4 query heads, 2 KV heads), rope base 1e6 (Mistral v0.2+), a small
SentencePiece-style vocabulary with Mistral's `[INST]`/`[/INST]` control tokens
and a Mistral instruct chat template. Weights are random (fixed seed), so the
output is gibberish, but the file is valid and byte-identical across runs.

Usage: make_tiny_mistral.py --out PATH
"""

import argparse
import os

import gguf
import numpy as np

# Model shape: small, but the same structure as Mistral 7B.
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2  # GQA, like Mistral (32 query heads / 8 KV heads)
N_FF = 128
N_LAYER = 2
N_CTX = 2048
HEAD_DIM = N_EMBD // N_HEAD
SEED = 1234

# Mistral-style instruct template; an optional leading system message is
# prepended to the first user message (no exception on non-alternating roles).
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] %}"
    "{%- set loop_messages = messages[1:] %}"
    "{%- else %}"
    "{%- set loop_messages = messages %}"
    "{%- endif %}"
    "{{- bos_token }}"
    "{%- for message in loop_messages %}"
    "{%- if message['role'] == 'user' %}"
    "{%- if loop.first and system_message is defined %}"
    "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
    "{%- else %}"
    "{{- '[INST] ' + message['content'] + ' [/INST]' }}"
    "{%- endif %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + message['content'] + eos_token }}"
    "{%- endif %}"
    "{%- endfor %}"
)

# Whole words that get their own token (with the SentencePiece "▁" space marker).
WORDS = """
the of and to in is it that for on with as was be at by this are you not or
from have an they we he she but what all can will one there their which
about if so do my me your how who when where why yes no hello world good
thank thanks please help helpful assistant answer question capital France
Paris city country language model test The What Hello It This You I
le la les de des du et est un une en que qui dans pour pas sur au avec
il elle nous vous je tu ce se bonjour merci oui non quelle ville pays
capitale français langue monde très bien été être
""".split()
PUNCT = list(".,;:!?'\"()[]{}<>-_/\\@#$%^&*+=~`|")
ACCENTS = list("éèêëàâäîïôöùûüçÉÈÀÇœ")


def build_vocab():
    """Return (tokens, scores, types) for a SentencePiece (`llama`) vocab."""
    T = gguf.TokenType
    tokens = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"]
    types = [T.UNKNOWN, T.CONTROL, T.CONTROL, T.CONTROL, T.CONTROL]
    # Byte fallback tokens, used for anything the pieces do not cover.
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [T.BYTE] * 256
    scores = [0.0] * len(tokens)

    # Normal pieces: single characters, then "▁"-prefixed words together with
    # every prefix of them (the SentencePiece merge loop needs each step).
    chars = ["▁"]
    chars += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    chars += [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    chars += [str(d) for d in range(10)] + PUNCT + ACCENTS
    pieces = list(dict.fromkeys(chars))
    seen = set(pieces)
    for w in WORDS + [p for p in PUNCT] + [str(d) for d in range(10)]:
        full = "▁" + w
        for i in range(2, len(full) + 1):
            if full[:i] not in seen:
                seen.add(full[:i])
                pieces.append(full[:i])
    # Scores act like log-probabilities: earlier pieces are "more frequent".
    for i, p in enumerate(pieces):
        tokens.append(p)
        types.append(T.NORMAL)
        scores.append(-float(i))
    return tokens, scores, types


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output .gguf path")
    ap.add_argument("--no-chat-template", action="store_true",
                    help="omit tokenizer.chat_template (exercises the runtime's Mistral fallback)")
    args = ap.parse_args()
    out = args.out

    tokens, scores, types = build_vocab()
    n_vocab = len(tokens)
    rng = np.random.default_rng(SEED)

    def rand(*shape):
        # numpy shape is (rows, cols); GGUF stores it reversed (ne0 = cols).
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    # Write to a temporary file next to the target, then rename atomically.
    tmp = f"{out}.tmp.{os.getpid()}"
    w = gguf.GGUFWriter(tmp, "llama")
    w.add_name("tiny-mistral-test" + ("-notemplate" if args.no_chat_template else ""))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(n_vocab)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_rope_freq_base(1e6)
    w.add_layer_norm_rms_eps(1e-5)

    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    if not args.no_chat_template:
        w.add_chat_template(CHAT_TEMPLATE)

    ones = np.ones(N_EMBD, dtype=np.float32)
    w.add_tensor("token_embd.weight", rand(n_vocab, N_EMBD))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", ones)
        w.add_tensor(p + "attn_q.weight", rand(N_HEAD * HEAD_DIM, N_EMBD))
        w.add_tensor(p + "attn_k.weight", rand(N_HEAD_KV * HEAD_DIM, N_EMBD))
        w.add_tensor(p + "attn_v.weight", rand(N_HEAD_KV * HEAD_DIM, N_EMBD))
        w.add_tensor(p + "attn_output.weight", rand(N_EMBD, N_HEAD * HEAD_DIM))
        w.add_tensor(p + "ffn_norm.weight", ones)
        w.add_tensor(p + "ffn_gate.weight", rand(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_up.weight", rand(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_down.weight", rand(N_EMBD, N_FF))
    w.add_tensor("output_norm.weight", ones)
    w.add_tensor("output.weight", rand(n_vocab, N_EMBD))

    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {out}: {n_vocab} tokens, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
