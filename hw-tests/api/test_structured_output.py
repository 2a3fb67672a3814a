"""Structured output (`response_format` json_object and json_schema) with the official `openai`
client, on SmolLM2 and on the tiny Mistral-shaped model (random weights: the grammar alone
keeps its answers valid): every answer parses and validates against its schema, streamed or
not, greedy or sampled; hostile schemas get a clear 400 at once and the box keeps answering.

`CIVIA_STRUCTURED_RUNS` sets the sampled runs per model (default 20; the issue's 100 are
`CIVIA_STRUCTURED_RUNS=100`, see docs/api.md for the time they take).
"""

import enum
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import httpx
import jsonschema
import openai
import pytest
from conftest import SMOL, TINY, openai_client
from pydantic import BaseModel, Field

SAMPLED_RUNS = int(os.environ.get("CIVIA_STRUCTURED_RUNS", "20"))
CHAT = "/v1/chat/completions"

# Enums, nesting, a nullable string, a pattern, a format, bounded strings and arrays: every
# string is bounded, so that even the random model closes its answer within max_tokens.
REQUEST_SCHEMA = {
    "type": "object",
    "properties": {
        "service": {"enum": ["voirie", "eclairage", "proprete", "etat-civil"]},
        "priority": {"type": "integer", "minimum": 1, "maximum": 5},
        "urgent": {"type": "boolean"},
        "note": {"type": ["string", "null"], "maxLength": 24},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{3}$"},
        "tags": {"type": "array", "items": {"enum": ["bruit", "securite", "dechets"]}, "maxItems": 3},
        "place": {
            "type": "object",
            "properties": {
                "street": {"type": "string", "minLength": 1, "maxLength": 24},
                "number": {"type": "integer", "minimum": 1, "maximum": 999},
            },
            "required": ["street", "number"],
            "additionalProperties": False,
        },
        "date": {"type": "string", "format": "date"},
    },
    "required": ["service", "priority", "urgent", "note", "code", "tags", "place", "date"],
    "additionalProperties": False,
}
REQUEST_FORMAT = {"type": "json_schema",
                  "json_schema": {"name": "request", "strict": True, "schema": REQUEST_SCHEMA}}
MESSAGE = [
    {"role": "system", "content": "You file the town hall's requests as JSON."},
    {"role": "user", "content": "Citizen: the street lamp in front of 12 rue de la Paix has been "
                                "broken since Monday, it is dangerous at night."},
]


class Service(str, enum.Enum):
    voirie = "voirie"
    eclairage = "eclairage"
    proprete = "proprete"


class Place(BaseModel):
    street: str
    number: Optional[int]


class Ticket(BaseModel):
    service: Service
    place: Place
    urgent: bool


@pytest.fixture(scope="module")
def smol(civiad):
    return civiad(model=SMOL, embeddings=False)


@pytest.fixture(scope="module")
def tiny(civiad):
    return civiad(model=TINY, embeddings=False)


def test_parse_with_a_pydantic_model(smol):
    client = openai_client(smol)
    parse = getattr(client.chat.completions, "parse", None) or client.beta.chat.completions.parse
    r = parse(model=SMOL, messages=MESSAGE, response_format=Ticket, temperature=0, max_tokens=200)
    (choice,) = r.choices
    assert choice.finish_reason == "stop"
    ticket = choice.message.parsed
    assert isinstance(ticket, Ticket) and isinstance(ticket.service, Service)
    assert Ticket.model_validate_json(choice.message.content) == ticket


def test_json_object_streamed_or_not(smol):
    client = openai_client(smol)
    messages = [{"role": "user", "content": "Give the capital of France as a JSON object "
                                            "with the keys country and capital."}]
    r = client.chat.completions.create(model=SMOL, messages=messages, temperature=0, max_tokens=200,
                                       response_format={"type": "json_object"})
    assert r.choices[0].finish_reason == "stop"
    whole = json.loads(r.choices[0].message.content)
    assert isinstance(whole, dict)
    stream = client.chat.completions.create(model=SMOL, messages=messages, temperature=0, max_tokens=200,
                                            response_format={"type": "json_object"}, stream=True)
    chunks = [c for c in stream if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert json.loads(text) == whole
    # `text` stays the default and stays accepted.
    r = client.chat.completions.create(model=SMOL, messages=messages, temperature=0, max_tokens=8,
                                       response_format={"type": "text"})
    assert r.choices[0].message.content


def test_streamed_strict_schema_at_temperature_1(smol):
    client = openai_client(smol)
    stream = client.chat.completions.create(model=SMOL, messages=MESSAGE, temperature=1, seed=7,
                                            max_tokens=400, response_format=REQUEST_FORMAT, stream=True)
    chunks = [c for c in stream if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) > 3, "streamed in pieces"
    assert chunks[-1].choices[0].finish_reason == "stop", text
    jsonschema.validate(json.loads(text), REQUEST_SCHEMA)


def test_cut_by_max_tokens_is_length(smol):
    r = openai_client(smol).chat.completions.create(model=SMOL, messages=MESSAGE, temperature=0, max_tokens=5,
                                                 response_format=REQUEST_FORMAT)
    (choice,) = r.choices
    # As OpenAI: the answer may then be incomplete JSON.
    assert choice.finish_reason == "length" and r.usage.completion_tokens == 5
    assert choice.message.content.startswith("{")


def sampled_runs(server, model: str, max_tokens: int) -> list[str]:
    """SAMPLED_RUNS answers at temperature 1 (a seed each), four at a time; the problems found."""
    client = openai_client(server)

    def one(seed: int) -> str | None:
        r = client.chat.completions.create(model=model, messages=MESSAGE, temperature=1, seed=seed,
                                           max_tokens=max_tokens, response_format=REQUEST_FORMAT)
        text, reason = r.choices[0].message.content, r.choices[0].finish_reason
        try:
            jsonschema.validate(json.loads(text), REQUEST_SCHEMA)
        except (ValueError, jsonschema.ValidationError) as e:
            return f"seed {seed} ({reason}): {e}: {text!r}"
        return None if reason == "stop" else f"seed {seed}: finish_reason {reason}"

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(one, range(SAMPLED_RUNS)) if p]
    print(f"\n{model}: {SAMPLED_RUNS} sampled structured answers in {time.monotonic() - started:.1f} s")
    return problems


def test_sampled_answers_are_all_valid_on_smollm2(smol):
    assert sampled_runs(smol, SMOL, 400) == []


def test_sampled_answers_are_all_valid_on_the_random_model(tiny):
    assert sampled_runs(tiny, TINY, 600) == []


def deep(levels: int) -> str:
    """A schema nesting `levels` arrays, as JSON text (Python's own encoder stops near 1000)."""
    return '{"type": "array", "items": ' * levels + '{"type": "string"}' + "}" * levels


HOSTILE = [
    # (what, schema, status, a piece of the message); 400s name `response_format`, except the
    # body the JSON parser refuses first (nesting over its own limit).
    ("depth 1000", deep(1000), 400, "not valid JSON"),
    ("depth 20", deep(20), 400, "deeper than 16 levels"),
    ("100 000 enum values", {"enum": [f"value-{i}" for i in range(100_000)]}, 400, "bytes long"),
    ("600 enum values", {"enum": list(range(600))}, 400, "at most 500"),
    ("recursive $ref", {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}},
                        "$ref": "#/$defs/a"}, 400, "`$ref` cycle"),
    ("minItems > maxItems", {"type": "array", "items": {"type": "null"}, "minItems": 5, "maxItems": 2},
     400, "`minItems` (5) is greater than `maxItems` (2)"),
    ("empty enum", {"enum": []}, 400, "`enum` must not be empty"),
    ("minimum > maximum", {"type": "integer", "minimum": 10, "maximum": 1}, 400, "no integer"),
    ("oneOf", {"oneOf": [{"type": "string"}]}, 400, "`oneOf` is not supported"),
    ("email", {"type": "string", "format": "email"}, 400, "the format `email` is not supported"),
    ("huge repetition", {"type": "array", "maxItems": 10**12}, 400, "at most 1000"),
    ("unanchored pattern", {"type": "string", "pattern": "a+"}, 400, "must be anchored"),
    ("quote in a pattern", {"type": "string", "pattern": '^a"$'}, 400, "quotes, backslashes"),
]


def test_hostile_schemas_get_a_fast_400_and_the_box_keeps_answering(tiny):
    headers = tiny.headers()
    restarts = httpx.get(tiny.url + "/health").json()["worker"]["restarts"]
    for what, schema, status, needle in HOSTILE:
        schema = schema if isinstance(schema, str) else json.dumps(schema)
        body = ('{"model": "%s", "max_tokens": 8, "messages": [{"role": "user", "content": "x"}], '
                '"response_format": {"type": "json_schema", "json_schema": {"name": "h", "schema": %s}}}'
                % (TINY, schema))
        started = time.monotonic()
        r = httpx.post(tiny.url + CHAT, content=body, timeout=30,
                       headers={**headers, "content-type": "application/json"})
        took = time.monotonic() - started
        assert r.status_code == status, (what, r.text[:300])
        error = r.json()["error"]
        assert needle in error["message"], (what, error)
        assert error["type"] == "invalid_request_error"
        if what != "depth 1000":
            assert error["param"] == "response_format", (what, error)
        assert took < 2, (what, took)
    # A missing json_schema, an unknown type.
    for rf in ({"type": "json_schema"}, {"type": "xml"}):
        body = {"model": TINY, "messages": [{"role": "user", "content": "x"}], "response_format": rf}
        r = httpx.post(tiny.url + CHAT, json=body, headers=headers, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["param"] == "response_format", r.text
    # The worker never saw them: same worker, still answering.
    r = openai_client(tiny).chat.completions.create(model=TINY, messages=MESSAGE, max_tokens=600,
                                                 response_format=REQUEST_FORMAT)
    jsonschema.validate(json.loads(r.choices[0].message.content), REQUEST_SCHEMA)
    assert httpx.get(tiny.url + "/health").json()["worker"]["restarts"] == restarts


class BoundedPlace(BaseModel):
    # Bounded, so that even the random model closes its strings within max_tokens.
    street: str = Field(min_length=1, max_length=24)
    number: Optional[int] = Field(ge=1, le=999)


class BoundedTicket(BaseModel):
    service: Service
    place: BoundedPlace
    urgent: bool


@pytest.mark.parametrize("model", [SMOL, TINY])
def test_langchain_with_structured_output(smol, tiny, model):
    """LangChain's ChatOpenAI pointed at the box: `with_structured_output` (json_schema by
    default) gives back a valid Pydantic object every time, sampled at temperature 1."""
    from langchain_openai import ChatOpenAI

    server = smol if model == SMOL else tiny
    llm = ChatOpenAI(model=model, base_url=server.url + "/v1", api_key=server.api_key, temperature=1,
                     max_tokens=600, max_retries=0, timeout=300)
    structured = llm.with_structured_output(BoundedTicket, include_raw=True)
    started = time.monotonic()
    answers = structured.batch([MESSAGE] * SAMPLED_RUNS, config={"max_concurrency": 4})
    print(f"\n{model}: {SAMPLED_RUNS} LangChain structured answers in {time.monotonic() - started:.1f} s")
    problems = [f"{a['parsing_error']}: {a['raw'].content!r}" for a in answers
                if a["parsing_error"] is not None or not isinstance(a["parsed"], BoundedTicket)]
    assert problems == []
