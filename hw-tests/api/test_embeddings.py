"""POST /v1/embeddings through the official `openai` client, with the real multilingual E5
model (installed by install-models.sh) in its own worker: shapes, formats, refusals, French
semantics, the audit, and the worker's crash and queue."""

import base64
import json
import math
import os
import signal
import struct
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
from conftest import E5, TINY

DIM = 384
CANTINE = "query: combien coûte la cantine ?"
REPAS = "passage: Le prix du repas au restaurant scolaire est de 3,20 €"
FETES = "passage: La salle des fêtes se loue 250 €"


def client_of(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.api_key, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def server(civiad):
    return civiad(model=TINY)


@pytest.fixture(scope="module")
def client(server):
    return client_of(server)


def dot(a, b) -> float:
    return sum(x * y for x, y in zip(a, b))


def passages(n: int, words: int = 100) -> list[str]:
    base = ("le conseil municipal a délibéré sur les tarifs du restaurant scolaire de la garderie "
            "et de la location de la salle des fêtes après le rapport du maire et de la commission").split()
    return [f"passage: {i} " + " ".join(base[(k * 7 + i) % len(base)] for k in range(words)) for i in range(n)]


def test_a_string_gives_one_unit_vector(client):
    r = client.embeddings.create(model=E5, input=CANTINE, encoding_format="float")
    assert r.object == "list" and r.model == E5
    (d,) = r.data
    assert d.object == "embedding" and d.index == 0 and len(d.embedding) == DIM
    assert abs(math.sqrt(dot(d.embedding, d.embedding)) - 1) < 1e-4
    assert r.usage.prompt_tokens == r.usage.total_tokens > 2


def test_a_list_keeps_its_order_and_each_vector_is_its_own(client):
    texts = [CANTINE, REPAS, FETES, "query: horaires de la mairie"]
    together = client.embeddings.create(model=E5, input=texts, encoding_format="float")
    assert [d.index for d in together.data] == [0, 1, 2, 3]
    tokens = 0
    for text, d in zip(texts, together.data):
        alone = client.embeddings.create(model=E5, input=text, encoding_format="float")
        assert dot(alone.data[0].embedding, d.embedding) > 0.9999, text
        tokens += alone.usage.prompt_tokens
    assert together.usage.prompt_tokens == tokens


def test_base64_is_little_endian_float32_and_the_client_decodes_it(client):
    floats = client.embeddings.create(model=E5, input=[REPAS], encoding_format="float").data[0].embedding
    # Explicit base64: the client hands the string over as it is.
    raw = client.embeddings.create(model=E5, input=[REPAS], encoding_format="base64").data[0].embedding
    assert isinstance(raw, str)
    # JSON numbers are the shortest text of each float32: the same float32 values.
    as_f32 = struct.pack(f"<{DIM}f", *floats)
    assert base64.b64decode(raw) == as_f32
    # Without encoding_format the openai client asks for base64 itself and decodes it.
    default = client.embeddings.create(model=E5, input=[REPAS]).data[0].embedding
    assert struct.pack(f"<{DIM}f", *default) == as_f32
    assert client.embeddings.create(model=E5, input="a", dimensions=DIM).data


def test_french_question_is_closer_to_its_passage(client):
    v = [d.embedding for d in client.embeddings.create(model=E5, input=[CANTINE, REPAS, FETES]).data]
    assert dot(v[0], v[1]) > dot(v[0], v[2]), (dot(v[0], v[1]), dot(v[0], v[2]))


def test_unknown_model_is_404_like_chat(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.embeddings.create(model="text-embedding-3-small", input="a")
    assert e.value.code == "model_not_found" and e.value.param == "model"
    assert E5 in str(e.value)


def test_an_input_longer_than_the_model_takes_is_refused_not_truncated(client):
    long = "passage: " + "délibération du conseil municipal " * 150  # about 5,000 characters, > 512 tokens
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=E5, input=["query: court", long])
    assert e.value.code == "context_length_exceeded" and e.value.param == "input"
    assert "input 1 is" in str(e.value) and "512 tokens" in str(e.value)


@pytest.mark.parametrize("input,code,words", [
    ([], "invalid_value", "empty array"),
    ("", "invalid_value", "empty string"),
    (["ok", ""], "invalid_value", "`input[1]` is an empty string"),
    (["x"] * 257, "invalid_value", "at most 256 per request"),
    ("x" * 8193, "invalid_value", "longer than 8192 characters"),
    ([1, 2, 3], "unsupported_parameter", "token ids"),
    ([[1, 2], [3]], "unsupported_parameter", "token ids"),
])
def test_refusals_are_400_with_a_clear_message(client, input, code, words):
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=E5, input=input, encoding_format="float")
    assert e.value.code == code and e.value.param == "input", e.value
    assert words in str(e.value), e.value


@pytest.mark.parametrize("body,param", [
    ({"input": {"text": "a"}}, "input"),
    ({"input": ["a", None]}, "input"),
    ({"input": 3}, "input"),
    ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
    ({"input": "a", "dimensions": 256}, "dimensions"),
    ({"input": "a", "dimensions": "384"}, "dimensions"),
    ({"input": "a", "model": 5}, "model"),
])
def test_wrong_types_are_400(server, body, param):
    r = httpx.post(server.url + "/v1/embeddings", headers=server.headers(), json={"model": E5, **body}, timeout=60)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.text


def test_requests_need_a_key(server):
    r = httpx.post(server.url + "/v1/embeddings", json={"model": E5, "input": "a"}, timeout=60)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_audit_and_usage_keep_counts_and_hashes_never_the_text(client, server):
    canary = "passage: le canari jaune de la mairie 7f3a9c"
    r = client.embeddings.create(model=E5, input=[canary, CANTINE], encoding_format="float")
    state = server.log.parent / "state"
    events = [json.loads(line) for f in sorted((state / "audit").glob("*.jsonl"))
              for line in f.read_text().splitlines() if line.strip()]
    done = [e for e in events if e.get("event") == "request.completed" and e.get("model") == E5]
    assert done, events[-3:]
    last = done[-1]
    assert last["prompt_tokens"] == r.usage.prompt_tokens, last
    assert last.get("prompt_sha256") and last.get("output_sha256"), last
    assert last.get("model_sha256") == httpx.get(server.url + "/health").json()["embeddings"]["sha256"]
    for f in [*(state / "audit").glob("*"), server.log]:
        assert b"canari" not in f.read_bytes(), f
    metrics = httpx.get(server.url + "/metrics").text
    assert 'civia_embeddings_requests_total{outcome="ok"}' in metrics
    assert "civia_embeddings_ready 1" in metrics


def embed_worker_pid(server) -> int:
    """The embedding worker: civiad's child started as `civiad embed-worker`."""
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().split(b"\0")
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == server.proc.pid and b"embed-worker" in cmd:
            return int(p.name)
    raise AssertionError("no embedding worker under civiad")


def test_a_crash_answers_the_request_in_flight_and_the_worker_comes_back(civiad):
    server = civiad(model=TINY, embeddings={"batch_size": 512, "max_sequences": 4})
    client = client_of(server)
    pid = embed_worker_pid(server)
    answer = {}

    def long_request():
        try:
            answer["ok"] = client.embeddings.create(model=E5, input=passages(128), encoding_format="float")
        except openai.APIStatusError as e:
            answer["error"] = e

    t = threading.Thread(target=long_request)
    t.start()
    deadline = time.monotonic() + 30
    while httpx.get(server.url + "/health").json()["embeddings"]["jobs"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    t.join(60)
    err = answer.get("error")
    assert err is not None and err.status_code == 503, answer
    assert err.code == "embeddings_restarted" and "signal 9" in str(err)
    assert err.response.headers["retry-after"].isdigit()
    deadline = time.monotonic() + 60
    while not (h := httpx.get(server.url + "/health").json()["embeddings"])["loaded"]:
        assert time.monotonic() < deadline, h
        time.sleep(0.1)
    assert h["restarts"] == 1 and embed_worker_pid(server) != pid
    assert len(client.embeddings.create(model=E5, input=CANTINE).data) == 1


def test_a_full_queue_answers_503_busy_with_retry_after(civiad):
    server = civiad(model=TINY, embeddings={"queue_depth": 1})
    client = client_of(server)
    statuses, lock = [], threading.Lock()

    def request():
        try:
            client.embeddings.create(model=E5, input=passages(32, 60), encoding_format="float")
            code = 200
        except openai.APIStatusError as e:
            code = (e.status_code, e.code, e.response.headers.get("retry-after"))
        with lock:
            statuses.append(code)

    threads = [threading.Thread(target=request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    busy = [s for s in statuses if s != 200]
    assert statuses.count(200) >= 2, statuses
    assert busy and all(s[:2] == (503, "embeddings_busy") and s[2].isdigit() for s in busy), statuses
