"""appliance/civia-api/openapi.json: valid OpenAPI 3.1, served as is, and true of the running civiad.

Real responses (success, every documented error, hostile requests) are validated with
jsonschema against the response schemas of the file; schemathesis then fuzzes every
operation. Mostly the random-weight tiny-mistral model, with [api] max_tokens = 8.
"""

import copy
import json
import os
import socket
import time

import httpx
import pytest
import schemathesis
from conftest import DEV_KEY, E5, REPO, SMOL, TINY
from hypothesis import HealthCheck, Phase, settings
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = REPO / "appliance" / "civia-api" / "openapi.json"
SPEC = json.loads(SPEC_PATH.read_text())
SPEC_URI = "urn:civia-openapi"
REGISTRY = Registry().with_resource(SPEC_URI, Resource.from_contents(SPEC, DRAFT202012))
TINY_MAX_TOKENS = 8
TINY_MAX_MESSAGES = 16
# The tiny server's embedding limits: short inputs stay under E5's 512 tokens whatever they hold.
TINY_EMBED_INPUTS = 8
TINY_EMBED_CHARS = 200
KEY = "test-key-0123456789"
CHAT = {"model": TINY, "messages": [{"role": "user", "content": "Bonjour"}]}
COMPLETION = {"model": TINY, "prompt": "Bonjour"}


def pointer(*parts) -> str:
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def at(ptr: str):
    """The node of the spec at a JSON pointer."""
    node = SPEC
    for part in ptr.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def validate(instance, ptr: str) -> None:
    """Validates instance against the schema at JSON pointer ptr of the spec."""
    errors = list(Draft202012Validator({"$ref": f"{SPEC_URI}#{ptr}"}, registry=REGISTRY).iter_errors(instance))
    assert not errors, f"{ptr}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def sse_events(text: str) -> list[str]:
    events = [block for block in text.split("\n\n") if block.strip()]
    assert all(e.startswith("data: ") for e in events), text
    return [e[len("data: "):] for e in events]


def check_response(r: httpx.Response, path: str | None, method: str = "get") -> None:
    """r conforms to the spec's response for (path template, method); path None: an unlisted URL."""
    status = r.status_code
    head = method == "head"
    method = "get" if head else method
    assert status < 500 or status == 503 and path is not None, (status, r.text)
    if path is None:
        response_ptr = pointer("components", "responses", "NotFound")
    elif method not in SPEC["paths"][path]:
        response_ptr = pointer("components", "responses", "MethodNotAllowed")
    else:
        responses = SPEC["paths"][path][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {path}: {status} is not documented: {r.text}"
        response_ptr = pointer("paths", path, method, "responses", str(status))
    while "$ref" in at(response_ptr):  # response objects are not JSON Schema: follow refs here
        response_ptr = at(response_ptr)["$ref"][1:]
    response = at(response_ptr)
    for name, header in response.get("headers", {}).items():
        if name not in r.headers:
            assert not header.get("required"), f"missing header {name}"
            continue
        if "const" in header["schema"]:
            assert r.headers[name] == header["schema"]["const"], (name, r.headers[name])
        if header["schema"].get("type") == "integer":
            assert int(r.headers[name]) >= header["schema"].get("minimum", 0)
    ctype = r.headers.get("content-type", "").split(";")[0].strip()
    assert ctype in response["content"], f"content-type {ctype!r} not documented for {status}"
    if head:
        assert not r.content
        return
    media_ptr = response_ptr + pointer("content", ctype)
    if ctype == "application/json":
        validate(r.json(), media_ptr + "/schema")
    else:
        events = sse_events(r.text)
        assert events[-1] == "[DONE]", events[-3:]
        for data in events:
            validate({"event": "message", "data": data}, media_ptr + "/schema")
        # jsonschema treats contentSchema as an annotation: check the JSON payloads too.
        for data in events[:-1]:
            validate(json.loads(data), media_ptr + "/schema/properties/data/anyOf/1/contentSchema")


def call(server, method: str, url: str, path: str | None, **kwargs) -> httpx.Response:
    """Sends the server's trial admin key unless the caller gives its own headers."""
    kwargs.setdefault("headers", server.headers())
    r = httpx.request(method, server.url + url, timeout=60, **kwargs)
    check_response(r, path, method.lower())
    return r


def expect_error(r: httpx.Response, status: int, code: str, param="unset") -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code, err
    if param != "unset":
        assert err["param"] == param, err
    return err


@pytest.fixture(scope="module")
def tiny(civiad):
    # Bounds the fuzz spec below states exactly (stop lengths: no bound in practice).
    return civiad(model=TINY, api={"max_tokens": TINY_MAX_TOKENS, "default_max_tokens": TINY_MAX_TOKENS,
                                   "max_messages": TINY_MAX_MESSAGES, "max_stop_bytes": 1 << 20},
                  embeddings={"max_inputs_per_request": TINY_EMBED_INPUTS, "max_input_chars": TINY_EMBED_CHARS})


# --- The document itself -------------------------------------------------------------------

def test_spec_is_valid_openapi_31():
    assert SPEC["openapi"].startswith("3.1.")
    validate_spec(SPEC)
    for name, schema in SPEC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)


def test_spec_describes_every_endpoint():
    expected = {
        "/health": {"get"}, "/ready": {"get"}, "/openapi.json": {"get"}, "/v1/models": {"get"},
        "/v1/models/{model}": {"get"}, "/v1/models/{model}/dossier": {"get"}, "/v1/chat/completions": {"post"}, "/v1/completions": {"post"},
        "/metrics": {"get"}, "/ca.crt": {"get"},
        "/admin/pair": {"post"}, "/admin/users": {"get", "post"},
        "/admin/users/{name}": {"parameters", "get", "patch", "delete"},
        "/admin/users/{name}/quota": {"parameters", "get", "put"},
        "/admin/keys": {"get", "post"}, "/admin/keys/{id}": {"parameters", "delete"},
        "/admin/usage": {"get"}, "/admin/status": {"get"},
        "/admin/system": {"get"}, "/admin/system/egress-probe": {"post"},
        "/admin/system/memory-bandwidth": {"post"},
        "/auth/login": {"post"}, "/auth/logout": {"post"}, "/auth/me": {"get"}, "/auth/password": {"post"},
        "/admin/updates": {"get"}, "/admin/updates/system": {"post"}, "/admin/updates/model": {"post"},
        "/admin/updates/install-path": {"post"}, "/admin/audit/verify": {"get"},
        "/admin/audit/export": {"get"},
        "/admin/backup": {"get", "post"}, "/admin/backup/key": {"post"},
        "/admin/backup/download": {"get"}, "/admin/backup/smb-password": {"put"},
        "/v1/conversations": {"get", "delete"}, "/v1/conversations/{id}": {"parameters", "get", "delete"},
        "/v1/me/export": {"get"}, "/v1/me/keys": {"post"}, "/v1/charter": {"get"}, "/v1/charter/accept": {"post"},
        "/admin/charter": {"get", "put"}, "/admin/charter/register": {"get"},
        "/admin/users/{name}/data": {"parameters", "get"}, "/admin/users/{name}/erase": {"parameters", "post"},
        "/admin/compliance/{kind}": {"parameters", "get"},
        "/v1/parse": {"post"}, "/v1/exports/{format}": {"parameters", "post"},
        "/v1/exports/tables/{format}": {"parameters", "post"},
        "/v1/collections": {"get", "post"}, "/v1/collections/{id}": {"parameters", "get", "patch", "delete"},
        "/v1/documents": {"get", "post"}, "/v1/documents/{id}": {"parameters", "get", "delete"},
        "/v1/chunks/{document}": {"parameters", "get"}, "/v1/search": {"post"},
        "/admin/knowledge/collections": {"get"},
        "/admin/knowledge/collections/{id}/documents": {"parameters", "post"},
        "/v1/audio/transcriptions": {"post"}, "/v1/meetings/minutes": {"post"},
        "/v1/embeddings": {"post"},
        "/": {"get"}, "/app/": {"get"}, "/app/{path}": {"parameters", "get"},
    }
    assert {p: set(ops) for p, ops in SPEC["paths"].items()} == expected
    for path in ("/v1/chat/completions", "/v1/completions"):
        responses = SPEC["paths"][path]["post"]["responses"]
        assert {"200", "400", "401", "404", "413", "429", "503"} <= set(responses)
        assert set(responses["200"]["content"]) == {"application/json", "text/event-stream"}


def test_request_schemas_allow_extra_fields():
    for name in ("ChatCompletionRequest", "CompletionRequest", "ChatMessage"):
        assert SPEC["components"]["schemas"][name].get("additionalProperties", True) is not False
    body = {**CHAT, "user": "x", "metadata": {"a": 1}, "store": False}
    validate(body, pointer("components", "schemas", "ChatCompletionRequest"))


def test_served_spec_is_the_file(tiny):
    r = call(tiny, "GET", "/openapi.json", "/openapi.json")
    assert r.json() == SPEC, "GET /openapi.json differs from the file: rebuild civiad"


# --- Success bodies ----------------------------------------------------------------------------

def test_health_ready_models(tiny):
    h = call(tiny, "GET", "/health", "/health").json()
    assert h["worker"]["phase"] == "ready" and h["model"]["loaded"] and h["model"]["id"] == TINY
    assert call(tiny, "GET", "/ready", "/ready").json() == {"status": "ready", "model": TINY}
    assert call(tiny, "GET", "/v1/models", "/v1/models").json()["data"][0]["id"] == TINY
    assert call(tiny, "GET", f"/v1/models/{TINY}", "/v1/models/{model}").json()["id"] == TINY
    assert call(tiny, "HEAD", "/v1/models", "/v1/models").status_code == 200


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("usage", [False, True])
def test_chat_completion_bodies(tiny, stream, usage):
    body = {**CHAT, "stream": stream, "max_tokens": 3}
    if usage:
        body["stream_options"] = {"include_usage": True}
    r = call(tiny, "POST", "/v1/chat/completions", "/v1/chat/completions", json=body)
    assert r.status_code == 200
    # The tiny model samples: it may end its answer (stop) before the 3 tokens (length).
    if stream:
        chunks = [json.loads(e) for e in sse_events(r.text)[:-1]]
        assert ("usage" in chunks[-1]) == usage
        assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] in ("length", "stop")
    else:
        answer = r.json()
        tokens, reason = answer["usage"]["completion_tokens"], answer["choices"][0]["finish_reason"]
        assert (tokens, reason) == (3, "length") or (tokens < 3 and reason == "stop"), (tokens, reason)


@pytest.mark.parametrize("stream", [False, True])
def test_completion_bodies(tiny, stream):
    body = {**COMPLETION, "stream": stream, "stream_options": {"include_usage": True}}
    r = call(tiny, "POST", "/v1/completions", "/v1/completions", json=body)
    assert r.status_code == 200


def test_finish_reason_stop_bodies(smol):
    """A real model stops by itself: finish_reason stop, in both shapes and both endpoints."""
    chat = {"model": SMOL, "temperature": 0, "max_tokens": 40, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"}]}
    for stream in (False, True):
        r = call(smol, "POST", "/v1/chat/completions", "/v1/chat/completions", json={**chat, "stream": stream})
        assert '"finish_reason":"stop"' in r.text.replace(" ", "")
    r = call(smol, "POST", "/v1/completions", "/v1/completions",
             json={"model": SMOL, "prompt": "1, 2, 3,", "max_tokens": 4, "stop": [","], "temperature": 0})
    assert r.json()["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_meeting_minutes_bodies(tiny, stream):
    path = "/v1/meetings/minutes"
    body = {"transcript": "Madame Durand présente le budget. Il est adopté.", "title": "Conseil",
            "date": " 12 janvier ", "stream": stream, "model": TINY}
    r = call(tiny, "POST", path, path, json=body)
    assert r.status_code == 200 and r.headers["x-civia-ai-generated"] == "true"
    if stream:
        events = [json.loads(e) for e in sse_events(r.text)[:-1]]
        assert [e["type"] for e in events][-1] == "minutes.done"
        assert [e["key"] for e in events if e["type"] == "minutes.section"] == \
            [s["key"] for s in events[-1]["sections"]]
    else:
        assert r.json()["minutes"].startswith("# Compte rendu de réunion — Conseil")


def test_meeting_minutes_errors(tiny):
    path = "/v1/meetings/minutes"
    for body, param in (({"transcript": " \n\t"}, "transcript"), ({"transcript": "x", "title": "a\nb"}, "title"),
                        ({"transcript": "x", "date": "d" * 201}, "date"), ({"transcript": 5}, "transcript"),
                        ({"title": "x"}, None)):
        expect_error(call(tiny, "POST", path, path, json=body), 400, "invalid_value", param)
    expect_error(call(tiny, "POST", path, path, json={"transcript": "x", "model": "gpt-4o"}), 404, "model_not_found", "model")


def test_transcription_off(tiny):
    """Without [speech], the endpoint exists and says transcription is off, whatever the body."""
    path = "/v1/audio/transcriptions"
    form = {"model": "whisper-1", "response_format": "verbose_json"}
    r = call(tiny, "POST", path, path, data=form, files={"file": ("reunion.wav", b"RIFF0000WAVE")})
    expect_error(r, 404, "speech_disabled", None)
    expect_error(call(tiny, "POST", path, path, json={"model": "whisper-1"}), 404, "speech_disabled", None)
    assert call(tiny, "GET", "/auth/me", "/auth/me").json()["limits"]["speech_model"] is None
    assert call(tiny, "GET", "/health", "/health").json()["speech"] is None


def test_embeddings_bodies(tiny):
    path = "/v1/embeddings"
    h = call(tiny, "GET", "/health", "/health").json()["embeddings"]
    assert h["id"] == E5 and h["loaded"] and h["dimension"] == 384 and h["pooling"] == "mean", h
    assert E5 in [m["id"] for m in call(tiny, "GET", "/v1/models", "/v1/models").json()["data"]]
    assert call(tiny, "GET", f"/v1/models/{E5}", "/v1/models/{model}").json()["id"] == E5
    r = call(tiny, "POST", path, path, json={"model": E5, "input": "query: cantine"}).json()
    assert len(r["data"][0]["embedding"]) == 384 and r["usage"]["prompt_tokens"] > 0
    r = call(tiny, "POST", path, path, json={"model": E5, "input": ["a", "b"], "encoding_format": "base64",
                                            "dimensions": 384, "user": "x"}).json()
    assert [d["index"] for d in r["data"]] == [0, 1] and isinstance(r["data"][0]["embedding"], str)
    assert call(tiny, "GET", "/admin/status", "/admin/status").json()["embeddings"]["id"] == E5


def test_embeddings_errors(tiny):
    path = "/v1/embeddings"
    for body, code, param in (
        ({"model": E5, "input": []}, "invalid_value", "input"),
        ({"model": E5, "input": ""}, "invalid_value", "input"),
        ({"model": E5, "input": ["a"] * (TINY_EMBED_INPUTS + 1)}, "invalid_value", "input"),
        ({"model": E5, "input": "x" * (TINY_EMBED_CHARS + 1)}, "invalid_value", "input"),
        ({"model": E5, "input": [1, 2, 3]}, "unsupported_parameter", "input"),
        ({"model": E5, "input": {"a": 1}}, "invalid_value", "input"),
        ({"model": E5, "input": "a", "encoding_format": "int8"}, "invalid_value", "encoding_format"),
        ({"model": E5, "input": "a", "dimensions": 256}, "unsupported_parameter", "dimensions"),
        ({"input": "a"}, "invalid_value", None),
    ):
        expect_error(call(tiny, "POST", path, path, json=body), 400, code, param)
    expect_error(call(tiny, "POST", path, path, json={"model": TINY, "input": "a"}), 404, "model_not_found", "model")
    headers = {"content-type": "application/json", **tiny.headers()}
    expect_error(call(tiny, "POST", path, path, content=b"{bad", headers=headers), 400, "invalid_json", None)
    expect_error(call(tiny, "POST", path, path, headers={}, json={"model": E5, "input": "a"}), 401, "invalid_api_key")


def test_system_facts_and_egress_probe(tiny):
    facts = call(tiny, "GET", "/admin/system", "/admin/system").json()
    assert "pairing_code" not in facts, "the pairing code is for the local admin socket only"
    port = int(tiny.url.rsplit(":", 1)[1])
    assert {"protocol": "tcp", "address": "127.0.0.1", "port": port} in facts["listening"], facts["listening"]
    assert facts["kernel"]["release"] and facts["civiad_version"]
    path = "/admin/system/egress-probe"
    r = call(tiny, "POST", path, path, json={"address": f"127.0.0.1:{port}", "timeout_ms": 1000})
    assert r.json() == {"connected": True, "error": None}
    with socket.socket() as s:  # bound, never listening: the connection is refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
        r = call(tiny, "POST", path, path, json={"address": f"127.0.0.1:{closed}", "timeout_ms": 1000})
    assert r.json() == {"connected": False, "error": "connection_refused"}
    for body, param in (({}, "address"), ({"address": "example.org:443"}, "address"),
                        ({"address": "0.0.0.0:80"}, "address"), ({"address": "127.0.0.1:80", "timeout_ms": 0}, "timeout_ms"),
                        ({"address": "127.0.0.1:80", "timeout_ms": 5001}, "timeout_ms"), ({"address": "127.0.0.1:80", "x": 1}, "x")):
        expect_error(call(tiny, "POST", path, path, json=body), 400, "invalid_value", param)
    headers = {"content-type": "application/json", **tiny.headers()}
    expect_error(call(tiny, "POST", path, path, content=b"{bad", headers=headers), 400, "invalid_json", None)
    for url, method, p in (("/admin/system", "GET", "/admin/system"), (path, "POST", path)):
        expect_error(call(tiny, method, url, p, headers={}, json={"address": f"127.0.0.1:{port}"}), 401, "invalid_api_key")


def test_memory_bandwidth(tiny):
    path = "/admin/system/memory-bandwidth"
    b = call(tiny, "POST", path, path).json()
    assert b["model"]["id"] == TINY and b["device"] == "cpu", b
    mem, weights = b["memory"], b["model"]["weights_bytes"]
    assert mem["buffer_bytes"] == 256 << 20 and mem["passes"] == 3, mem
    assert abs(b["decode_tokens_per_second_bound"] - mem["bytes_per_second"] / weights) < 1e-6 * b["decode_tokens_per_second_bound"]
    expect_error(call(tiny, "POST", path, path, headers={}), 401, "invalid_api_key")


# --- Errors ------------------------------------------------------------------------------------

GENERATION_PATHS = ["/v1/chat/completions", "/v1/completions"]


@pytest.mark.parametrize("path", GENERATION_PATHS)
def test_malformed_bodies(tiny, path):
    def post(content):
        return call(tiny, "POST", path, path, content=content, headers={"content-type": "application/json", **tiny.headers()})

    expect_error(post(b'{"model": "tiny-mistral",'), 400, "invalid_json", None)
    expect_error(post(b"{bad"), 400, "invalid_json", None)
    # Invalid UTF-8 inside a string (and a lone surrogate escape) is not JSON either.
    err = post(b'{"model": "tiny-mistral", "prompt": "\xff\xfe", "messages": []}').json()["error"]
    assert err["code"] in ("invalid_json", "invalid_value") and err["param"] is None
    expect_error(post(b'{"model": "\\ud800"}'), 400, "invalid_json")
    for content in (b"", b"[]", b"null", b'"text"', b"42"):
        assert post(content).status_code == 400, content


WRONG_TYPES = [
    ({"model": 1}, "model"),
    ({"messages": "hello"}, "messages"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": 5, "content": "x"}]}, "messages[0].role"),
    ({"stream": "yes"}, "stream"),
    ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ({"max_tokens": "5"}, "max_tokens"),
    ({"max_tokens": 2.5}, "max_tokens"),
    ({"temperature": "hot"}, "temperature"),
    ({"seed": 2**64}, "seed"),
    ({"stop": 5}, "stop"),
    ({"stop": ["a", 5]}, "stop"),
    ({"temperature": 3}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"presence_penalty": -2.5}, "presence_penalty"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
]


@pytest.mark.parametrize("patch,param", WRONG_TYPES, ids=[json.dumps(p) for p, _ in WRONG_TYPES])
def test_wrong_types_and_values_name_the_param(tiny, patch, param):
    path = "/v1/chat/completions"
    r = call(tiny, "POST", path, path, json={**CHAT, **patch})
    expect_error(r, 400, "invalid_value", param)


@pytest.mark.parametrize("path,base", list(zip(GENERATION_PATHS, [CHAT, COMPLETION])))
def test_max_tokens_bound(tiny, path, base):
    for v in (10**9, TINY_MAX_TOKENS + 1, 0, -1):
        expect_error(call(tiny, "POST", path, path, json={**base, "max_tokens": v}), 400, "invalid_value", "max_tokens")
    r = call(tiny, "POST", path, path, json={**base, "max_tokens": TINY_MAX_TOKENS})
    assert r.json()["usage"]["completion_tokens"] <= TINY_MAX_TOKENS


@pytest.mark.parametrize("path,base", list(zip(GENERATION_PATHS, [CHAT, COMPLETION])))
def test_unsupported_parameters(tiny, path, base):
    cases = [({"n": 2}, "n"), ({"logit_bias": {"1": 5}}, "logit_bias")]
    if "messages" in base:
        cases += [
            ({"tools": [{"type": "retrieval", "function": {"name": "f"}}]}, "tools[0].type"),
            ({"functions": [{"name": "f"}]}, "functions"),
            ({"logprobs": True}, "logprobs"),
            ({"response_format": {"type": "json_schema", "json_schema": {
                "name": "x", "schema": {"type": "object", "patternProperties": {}}}}}, "response_format"),
            ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
            ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content"),
        ]
    else:
        cases += [({"echo": True}, "echo"), ({"best_of": 2}, "best_of"), ({"suffix": "x"}, "suffix"),
                  ({"logprobs": 1}, "logprobs"), ({"prompt": ["a", "b"]}, "prompt")]
    for patch, param in cases:
        r = call(tiny, "POST", path, path, json={**base, **patch})
        expect_error(r, 400, "unsupported_parameter", param)


def test_prompt_errors(tiny, smol):
    path = "/v1/completions"
    expect_error(call(tiny, "POST", path, path, json={**COMPLETION, "prompt": [1, 2]}), 400, "invalid_value", "prompt")
    # SmolLM2 adds no BOS token: an empty prompt is nothing to continue.
    r = call(smol, "POST", path, path, json={"model": SMOL, "prompt": ""})
    expect_error(r, 400, "invalid_prompt")
    long = {**COMPLETION, "prompt": "bonjour " * 5000}
    expect_error(call(tiny, "POST", path, path, json=long), 400, "context_length_exceeded")


@pytest.mark.parametrize("path", GENERATION_PATHS)
def test_body_over_4_mib(tiny, path):
    body = json.dumps({**CHAT, **COMPLETION, "padding": "x" * (5 << 20)}).encode()
    r = call(tiny, "POST", path, path, content=body, headers={"content-type": "application/json", **tiny.headers()})
    expect_error(r, 413, "request_too_large", None)


def test_unknown_model(tiny):
    for path, body in list(zip(GENERATION_PATHS, [CHAT, COMPLETION])):
        r = call(tiny, "POST", path, path, json={**body, "model": "gpt-4o"})
        expect_error(r, 404, "model_not_found", "model")
    expect_error(call(tiny, "GET", "/v1/models/gpt-4o", "/v1/models/{model}"), 404, "model_not_found")


@pytest.mark.parametrize("method,url", [
    ("GET", "/nope"), ("GET", "/v1"), ("GET", "/v1/"), ("POST", "/v1/embeddings/x"),
    ("POST", "/v1/audio/translations"), ("GET", "/v1/models/"), ("GET", f"/v1/models/{TINY}/x"),
    ("GET", "/v1/chat/completions/x"), ("GET", "/%ff"),
])
def test_unknown_url(tiny, method, url):
    expect_error(call(tiny, method, url, None), 404, "not_found", None)


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/v1/models"), ("POST", "/v1/models"), ("PUT", "/v1/models/{model}"),
    ("GET", "/v1/chat/completions"), ("PUT", "/v1/completions"), ("POST", "/health"),
    ("DELETE", "/ready"), ("POST", "/openapi.json"), ("OPTIONS", "/v1/chat/completions"),
])
def test_wrong_method(tiny, method, path):
    r = call(tiny, method, path.replace("{model}", TINY), path)
    expect_error(r, 405, "method_not_allowed", None)
    allowed = {m.strip() for m in r.headers["allow"].split(",")}
    assert {m.upper() for m in SPEC["paths"][path]} <= allowed


def test_dev_api_key(civiad):
    server = civiad(model=TINY, env={"CIVIA_DEV_API_KEY": KEY},
                    api={"max_tokens": TINY_MAX_TOKENS, "default_max_tokens": TINY_MAX_TOKENS})
    requests = [("GET", "/v1/models", "/v1/models", {}),
                ("GET", f"/v1/models/{TINY}", "/v1/models/{model}", {}),
                ("POST", "/v1/chat/completions", "/v1/chat/completions", {"json": CHAT}),
                ("POST", "/v1/completions", "/v1/completions", {"json": COMPLETION})]
    for method, url, path, kw in requests:
        for auth in (None, "Bearer wrong", f"Basic {KEY}", f"Bearer {KEY}x", "Bearer", f"bearer{KEY}"):
            headers = {"authorization": auth} if auth else {}
            expect_error(call(server, method, url, path, headers=headers, **kw), 401, "invalid_api_key")
        r = call(server, method, url, path, headers={"authorization": f"Bearer {KEY}"}, **kw)
        assert r.status_code == 200
    # Health endpoints stay open.
    for url in ("/health", "/ready", "/openapi.json"):
        assert call(server, "GET", url, url).status_code == 200


def test_worker_unavailable(civiad, tmp_path):
    """A file that is not a GGUF model: the worker keeps failing; 503 with Retry-After, never 500."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(os.urandom(4096))
    server = civiad(model=str(broken), wait_ready=False, embeddings=False)
    h = call(server, "GET", "/health", "/health").json()
    assert not h["model"]["loaded"] and h["model"]["sha256"] is None
    # Without [embeddings], the endpoint exists and says embeddings are off.
    assert h["embeddings"] is None
    r = call(server, "POST", "/v1/embeddings", "/v1/embeddings", json={"model": "e5", "input": "a"})
    expect_error(r, 404, "embeddings_disabled", None)
    r = call(server, "GET", "/ready", "/ready")
    assert r.status_code == 503 and r.json()["status"] == "not_ready"
    # Once the first load has failed, the reason is kept (not just "worker exited").
    for _ in range(100):
        if r.json()["last_error"]:
            break
        time.sleep(0.1)
        r = call(server, "GET", "/ready", "/ready")
    assert "not a GGUF" in r.json()["last_error"], r.json()
    for path, body in list(zip(GENERATION_PATHS, [CHAT, COMPLETION])):
        for stream in (False, True):
            r = call(server, "POST", path, path, json={**body, "model": "broken", "stream": stream})
            expect_error(r, 503, "model_unavailable")
            assert r.headers["retry-after"].isdigit()
    # The id is known from the configuration, so the model list still answers.
    assert call(server, "GET", "/v1/models", "/v1/models").json()["data"][0]["id"] == "broken"


# --- Schemathesis ------------------------------------------------------------------------------

def fuzz_spec() -> dict:
    """The spec with the `tiny` server's configured bounds: schema-valid must mean accepted and
    schema-invalid refused (schemathesis checks both)."""
    spec = copy.deepcopy(SPEC)
    schemas = spec["components"]["schemas"]
    for req in ("ChatCompletionRequest", "CompletionRequest"):
        for field in ("max_tokens", "max_completion_tokens"):
            if field in schemas[req]["properties"]:
                schemas[req]["properties"][field]["anyOf"][0]["maximum"] = TINY_MAX_TOKENS
        # civiad checks top_p > 0 after rounding to f32: 5e-324 becomes 0 and is refused.
        schemas[req]["properties"]["top_p"]["anyOf"][0]["minimum"] = 1e-30
        # Mostly the served model, so that requests get as far as generation.
        schemas[req]["properties"]["model"] = {"enum": [TINY, TINY, TINY, "gpt-4o"]}
    # The tiny server's embedding limits, and the model's own dimension only.
    emb = schemas["EmbeddingRequest"]["properties"]
    emb["model"] = {"enum": [E5, E5, E5, "gpt-4o"]}
    emb["input"]["anyOf"][0]["maxLength"] = TINY_EMBED_CHARS
    emb["input"]["anyOf"][1]["maxItems"] = TINY_EMBED_INPUTS
    emb["input"]["anyOf"][1]["items"]["maxLength"] = TINY_EMBED_CHARS
    emb["dimensions"] = {"enum": [384, None]}
    # civiad accepts a subset of JSON Schema in `response_format.json_schema.schema` and refuses
    # the rest with 400 (test_structured_output.py): the fuzzer picks accepted ones.
    schemas["ResponseJsonSchema"]["properties"]["schema"] = {"enum": [
        {"type": "object"},
        {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
         "additionalProperties": False},
        {"type": "array", "items": {"enum": ["a", "b", 1, None]}, "maxItems": 2},
    ]}
    # One function at most, named `f` (two may not share a name, and a named `tool_choice` must
    # name one of them), with accepted parameters (a subset of JSON Schema, as for
    # `response_format`; the rest is refused with 400 in test_tools.py).
    chat = schemas["ChatCompletionRequest"]["properties"]
    chat["tools"]["anyOf"][0]["maxItems"] = 1
    function = schemas["ChatTool"]["properties"]["function"]["properties"]
    function["name"] = {"enum": ["f"]}
    function["parameters"] = {"enum": [
        {"type": "object"},
        {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
         "additionalProperties": False},
    ]}
    chat["tool_choice"]["anyOf"][1]["properties"]["function"]["properties"]["name"] = {"enum": ["f"]}
    # Few messages keep prompts inside the context window.
    schemas["ChatCompletionRequest"]["properties"]["messages"]["maxItems"] = TINY_MAX_MESSAGES
    # Fuzzed with the API key only: schemathesis's auth checks take one scheme at a time, and
    # a valid key beside a forged session cookie is (rightly) accepted.
    for ops in spec["paths"].values():
        for op in ops.values():
            if isinstance(op, dict) and {"session": []} in op.get("security", []):
                op["security"] = [{"apiKey": []}]
    # A key limited to another model than the served one is refused (400 model_not_found).
    schemas["NewKey"]["properties"]["model"] = {"enum": [TINY]}
    param = spec["paths"]["/v1/models/{model}"]["get"]["parameters"][0]
    param["examples"] = {"served": {"value": TINY}, "other": {"value": "gpt-4o"}}
    return spec


# Publishing a charter would bar the trial admin from the model until it accepts the new
# version: that operation is tested in test_privacy.py, not fuzzed. The egress probe would
# connect to whatever addresses the fuzzer invents: tested in test_system_facts_and_egress_probe.
# A bandwidth measurement keeps the cores busy a second each time: tested in
# test_memory_bandwidth.
FUZZ = (schemathesis.openapi.from_dict(fuzz_spec())
        .exclude(method="PUT", path="/admin/charter")
        .exclude(method="POST", path="/admin/system/egress-probe")
        .exclude(method="POST", path="/admin/system/memory-bandwidth"))


@FUZZ.auth()
class TrialAdminKey:
    """Every fuzzed request carries the trial admin's key (conftest's DEV_KEY); schemathesis
    also replays some without it, or with a forged one, and expects 401."""

    def get(self, case, ctx):
        return DEV_KEY

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def as_civiad_reads_it(value):
    """The body as civiad (serde) reads it, so that the schema checks what the server sees:
    JSON Schema counts 6.0 as an integer, serde does not, so such numbers go as 6; and the
    fuzzer may put a high and a low surrogate side by side, two characters for JSON Schema's
    maxLength but one for any JSON reader, so they are joined into that one character."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    if isinstance(value, dict):
        return {as_civiad_reads_it(k): as_civiad_reads_it(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_civiad_reads_it(v) for v in value]
    return value


@pytest.fixture(scope="module")
def fuzz_base_url(tiny):
    return tiny.url


@FUZZ.parametrize()
@settings(max_examples=150, deadline=None, derandomize=True, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_schemathesis(case, fuzz_base_url):
    if isinstance(case.body, (dict, list)):
        case.body = as_civiad_reads_it(case.body)
    response = case.call(base_url=fuzz_base_url, timeout=60)
    # A prompt longer than the model's context window (or the guard's character limit) is
    # refused whatever the schema says: tokens are the model's, not the schema's. The fuzzer's
    # long strings (a 4,000-character tool description, 16 messages) can get there.
    if response.status_code == 400:
        try:
            code = (response.json().get("error") or {}).get("code")
        except (ValueError, AttributeError):
            code = None
        if code in ("context_length_exceeded", "prompt_too_long"):
            return
    case.validate_response(response)
