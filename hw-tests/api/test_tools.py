"""Tool calling (`tools`, `tool_choice`, `parallel_tool_calls`) with the official `openai`
client, on SmolLM2 and on the tiny Mistral-shaped model (random weights: the grammar alone keeps
its calls valid): every call parses and its arguments validate against the function's
parameters, streamed or not, greedy or sampled; the result goes back in the history; the audit
keeps the function's name and the arguments' hash, never the arguments; hostile tools get a
clear 400 at once and the box keeps answering.

`CIVIA_STRUCTURED_RUNS` sets the sampled runs per model, as for test_structured_output.py
(default 20; the issue's 100 are `CIVIA_STRUCTURED_RUNS=100`).
"""

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema
import openai
import pytest
from conftest import SMOL, TINY, openai_client

SAMPLED_RUNS = int(os.environ.get("CIVIA_STRUCTURED_RUNS", "20"))
CHAT = "/v1/chat/completions"

# Every string is bounded, so that even the random model closes its call within max_tokens.
REPORT = {
    "type": "object",
    "properties": {
        "service": {"enum": ["voirie", "eclairage", "proprete"]},
        "adresse": {"type": "string", "minLength": 1, "maxLength": 40},
        "urgent": {"type": "boolean"},
        "photos": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9}, "maxItems": 2},
    },
    "required": ["service", "adresse", "urgent", "photos"],
    "additionalProperties": False,
}
OPENING = {
    "type": "object",
    "properties": {
        "service": {"enum": ["etat-civil", "urbanisme", "accueil"]},
        "jour": {"enum": ["lundi", "mardi", "mercredi", "jeudi", "vendredi"]},
    },
    "required": ["service", "jour"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {
        "name": "signaler_incident", "strict": True, "parameters": REPORT,
        "description": "Enregistre un signalement d'incident sur la voie publique."}},
    {"type": "function", "function": {
        "name": "horaires_service", "strict": True, "parameters": OPENING,
        "description": "Donne les horaires d'ouverture d'un service de la mairie un jour donné."}},
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
MESSAGES = [
    {"role": "system", "content": "Tu es l'assistant de l'accueil de la mairie."},
    {"role": "user", "content": "Le lampadaire devant le 12 rue de la Paix est cassé depuis lundi, "
                                "c'est dangereux la nuit."},
]


@pytest.fixture(scope="module")
def smol(civiad):
    return civiad(model=SMOL, embeddings=False)


@pytest.fixture(scope="module")
def tiny(civiad):
    return civiad(model=TINY, embeddings=False)


def problems_of(calls, parallel=True) -> list[str]:
    """What is wrong with the calls of one answer (nothing: an empty list)."""
    out = []
    if not calls:
        return ["no call"]
    if not parallel and len(calls) != 1:
        out.append(f"{len(calls)} calls with parallel_tool_calls false")
    for c in calls:
        if c.type != "function" or not c.id.startswith("call_"):
            out.append(f"shape: {c}")
        schema = SCHEMAS.get(c.function.name)
        if schema is None:
            out.append(f"unknown function {c.function.name}")
            continue
        try:
            jsonschema.validate(json.loads(c.function.arguments), schema)
        except (ValueError, jsonschema.ValidationError) as e:
            out.append(f"{c.function.name}: {e}: {c.function.arguments!r}")
    return out


def test_required_call_then_the_result_goes_back(smol):
    client = openai_client(smol)
    r = client.chat.completions.create(model=SMOL, messages=MESSAGES, tools=TOOLS, tool_choice="required",
                                       temperature=0, max_tokens=300)
    (choice,) = r.choices
    assert choice.finish_reason == "tool_calls", choice
    assert choice.message.content is None
    assert problems_of(choice.message.tool_calls) == []
    # The calls and their results back in the history; the model answers in text.
    history = [*MESSAGES, choice.message.model_dump(exclude_none=True)]
    for call in choice.message.tool_calls:
        history.append({"role": "tool", "tool_call_id": call.id,
                        "content": json.dumps({"numero": "INC-2026-0412", "delai": "48 heures"})})
    for tool_choice in ("none", "auto"):
        r = client.chat.completions.create(model=SMOL, messages=history, tools=TOOLS, tool_choice=tool_choice,
                                           temperature=0, max_tokens=60)
        (choice,) = r.choices
        if choice.finish_reason == "tool_calls":
            assert tool_choice == "auto" and problems_of(choice.message.tool_calls) == []
        else:
            assert choice.message.content and not choice.message.tool_calls, choice


def test_named_function_and_a_single_call(tiny):
    client = openai_client(tiny)
    for seed in range(5):
        r = client.chat.completions.create(
            model=TINY, messages=MESSAGES, tools=TOOLS, temperature=1, seed=seed, max_tokens=600,
            tool_choice={"type": "function", "function": {"name": "horaires_service"}},
            parallel_tool_calls=False)
        (choice,) = r.choices
        assert choice.finish_reason == "tool_calls", choice
        assert problems_of(choice.message.tool_calls, parallel=False) == []
        assert choice.message.tool_calls[0].function.name == "horaires_service"


def test_streamed_calls_at_temperature_1(smol):
    client = openai_client(smol)
    stream = client.chat.completions.create(model=SMOL, messages=MESSAGES, tools=TOOLS, tool_choice="required",
                                            temperature=1, seed=3, max_tokens=300, stream=True)
    calls, finish, texts = {}, None, []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        texts.append(delta.content or "")
        for d in delta.tool_calls or []:
            c = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            c["id"] += d.id or ""
            c["name"] += d.function.name or ""
            c["arguments"] += d.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and calls, (finish, texts)
    assert "".join(texts) == "", "calls are not sent as text"
    for c in calls.values():
        assert c["id"].startswith("call_")
        jsonschema.validate(json.loads(c["arguments"]), SCHEMAS[c["name"]])
    # The stream helper of the client accumulates them too.
    with client.chat.completions.stream(model=SMOL, messages=MESSAGES, tools=TOOLS, tool_choice="required",
                                        temperature=0, max_tokens=300) as s:
        final = s.get_final_completion()
    assert problems_of(final.choices[0].message.tool_calls) == []


def sampled_runs(server, model: str, max_tokens: int) -> list[str]:
    """SAMPLED_RUNS answers with tool_choice required at temperature 1 (a seed each), four at a
    time, half of them streamed; the problems found."""
    client = openai_client(server)

    def one(seed: int) -> list[str]:
        kw = dict(model=model, messages=MESSAGES, tools=TOOLS, tool_choice="required", temperature=1,
                  seed=seed, max_tokens=max_tokens)
        if seed % 2:
            try:
                with client.chat.completions.stream(**kw) as s:
                    r = s.get_final_completion()
            except openai.LengthFinishReasonError:
                return [f"seed {seed} (streamed): cut by max_tokens"]
        else:
            r = client.chat.completions.create(**kw)
        choice = r.choices[0]
        if choice.finish_reason != "tool_calls":
            return [f"seed {seed}: finish_reason {choice.finish_reason}: {choice.message.content!r}"]
        return [f"seed {seed}: {p}" for p in problems_of(choice.message.tool_calls)]

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        problems = [p for ps in pool.map(one, range(SAMPLED_RUNS)) for p in ps]
    print(f"\n{model}: {SAMPLED_RUNS} sampled tool-call answers in {time.monotonic() - started:.1f} s")
    return problems


def test_sampled_calls_are_all_valid_on_smollm2(smol):
    # Room for 8 calls of the longest arguments: a call is never cut by max_tokens.
    assert sampled_runs(smol, SMOL, 800) == []


def test_sampled_calls_are_all_valid_on_the_random_model(tiny):
    assert sampled_runs(tiny, TINY, 800) == []


def test_auto_is_text_or_valid_calls(tiny):
    client = openai_client(tiny)
    seen = set()
    for seed in range(12):
        r = client.chat.completions.create(model=TINY, messages=MESSAGES, tools=TOOLS, temperature=1, seed=seed,
                                           max_tokens=600)
        choice = r.choices[0]
        if choice.message.tool_calls:
            seen.add("calls")
            assert choice.finish_reason == "tool_calls" and choice.message.content is None
            assert problems_of(choice.message.tool_calls) == []
        else:
            seen.add("text")
            assert choice.finish_reason in ("stop", "length")
            assert not choice.message.content.lstrip().startswith("["), choice.message.content
    assert seen, "twelve answers"


def audit_events(server) -> list[dict]:
    state = server.log.parent / "state"
    return [json.loads(line) for f in sorted((state / "audit").glob("*.jsonl"))
            for line in f.read_text().splitlines() if line.strip()]


def test_audit_keeps_the_name_and_the_arguments_hash_never_the_values(tiny):
    canary = "canari-7f3a9c"
    tool = {"type": "function", "function": {"name": "dossier", "parameters": {
        "type": "object", "properties": {"numero": {"const": canary}}, "required": ["numero"],
        "additionalProperties": False}}}
    r = openai_client(tiny).chat.completions.create(model=TINY, messages=MESSAGES, tools=[tool], max_tokens=100,
                                                 tool_choice="required", parallel_tool_calls=False)
    (call,) = r.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == {"numero": canary}
    done = [e for e in audit_events(tiny) if e.get("event") == "request.completed"]
    assert done[-1]["detail"]["tool_calls"] == [
        {"name": "dossier", "arguments_sha256": hashlib.sha256(call.function.arguments.encode()).hexdigest()}]
    state = tiny.log.parent / "state"
    for f in [*(state / "audit").glob("*"), tiny.log]:
        assert canary.encode() not in f.read_bytes(), f


def deep_parameters(levels: int) -> dict:
    schema = {"type": "string", "maxLength": 3}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


def fn(name="f", parameters=None, **extra):
    f = {"name": name, **extra}
    if parameters is not None:
        f["parameters"] = parameters
    return {"type": "function", "function": f}


HOSTILE = [
    ("33 functions", {"tools": [fn(f"f{i}") for i in range(33)]}, "tools", "At most 32"),
    ("a function twice", {"tools": [fn(), fn()]}, "tools[1].function.name", "given twice"),
    ("a name with a space", {"tools": [fn("f g")]}, "tools[0].function.name", "1 to 64"),
    ("deep parameters", {"tools": [fn(parameters=deep_parameters(20))]}, "tools[0].function.parameters", "deeper"),
    ("100 000 enum values", {"tools": [fn(parameters={"type": "object", "properties": {
        "v": {"enum": [f"value-{i}" for i in range(100_000)]}}})]}, "tools[0].function.parameters", "bytes long"),
    ("contradictory bounds", {"tools": [fn(parameters={"type": "object", "properties": {
        "n": {"type": "integer", "minimum": 5, "maximum": 1}}})]}, "tools[0].function.parameters", "no integer lies between"),
    ("oneOf", {"tools": [fn(parameters={"type": "object", "oneOf": []})]}, "tools[0].function.parameters", "oneOf"),
    ("parameters not an object", {"tools": [fn(parameters={"type": "string"})]}, "tools[0].function.parameters",
     "an object"),
    ("an unknown named function", {"tools": [fn()], "tool_choice": {"type": "function", "function": {"name": "g"}}},
     "tool_choice", "not in `tools`"),
    ("required without tools", {"tool_choice": "required"}, "tool_choice", "`tools` is empty"),
    ("with json_object", {"tools": [fn()], "response_format": {"type": "json_object"}}, "response_format",
     "cannot be combined"),
    ("a result without its call", {"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id",
     "tool_call_id"),
    ("calls on a user message", {"messages": [{"role": "user", "content": "x", "tool_calls": []}]},
     "messages[0].tool_calls", "assistant"),
    ("a call without a name", {"messages": [{"role": "user", "content": "x"}, {"role": "assistant",
     "tool_calls": [{"id": "1", "type": "function", "function": {"arguments": "{}"}}]}]},
     "messages[1].tool_calls", "must be an array"),
]


@pytest.mark.parametrize("label,patch,param,says", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_tools_get_a_fast_400(tiny, label, patch, param, says):
    body = {"model": TINY, "messages": MESSAGES, "max_tokens": 4, **patch}
    started = time.monotonic()
    r = httpx.post(tiny.url + CHAT, headers=tiny.headers(), json=body, timeout=60)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and says in err["message"], err
    assert time.monotonic() - started < 30, "refused before any generation"
    # The box keeps answering.
    ok = httpx.post(tiny.url + CHAT, headers=tiny.headers(), timeout=60,
                    json={"model": TINY, "messages": MESSAGES, "max_tokens": 2})
    assert ok.status_code == 200, ok.text


def test_langchain_bind_tools(tiny):
    """LangChain's ChatOpenAI: `bind_tools` with a Pydantic tool, then the result back as a
    ToolMessage."""
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel, Field

    class HorairesService(BaseModel):
        """Donne les horaires d'ouverture d'un service de la mairie."""
        service: str = Field(min_length=1, max_length=20)
        jour: int = Field(ge=1, le=7)

    llm = ChatOpenAI(model=TINY, base_url=tiny.url + "/v1", api_key=tiny.api_key, temperature=1,
                     max_tokens=600, max_retries=0, timeout=300)
    bound = llm.bind_tools([HorairesService], tool_choice="required")
    question = HumanMessage("Quand l'état civil est-il ouvert ?")
    ai = bound.invoke([question])
    assert ai.tool_calls and not ai.invalid_tool_calls, ai
    for call in ai.tool_calls:
        assert call["name"] == "HorairesService"
        HorairesService.model_validate(call["args"])
    results = [ToolMessage("9 h - 12 h", tool_call_id=c["id"]) for c in ai.tool_calls]
    answer = llm.bind_tools([HorairesService], tool_choice="none").invoke([question, ai, *results])
    assert answer.content and not answer.tool_calls
