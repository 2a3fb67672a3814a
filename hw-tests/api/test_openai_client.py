"""civiad through the official `openai` Python client, with the real SmolLM2 model."""

import openai
import pytest
from conftest import E5, SMOL

QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


def make_client(server, api_key=None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=api_key or server.api_key,
                         max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def client(smol):
    return make_client(smol)


def test_chat_answers_paris(client):
    r = client.chat.completions.create(model=SMOL, messages=QUESTION, temperature=0, max_tokens=32)
    assert r.object == "chat.completion" and r.model == SMOL
    (choice,) = r.choices
    assert choice.message.role == "assistant"
    assert "Paris" in choice.message.content
    assert choice.finish_reason == "stop"
    u = r.usage
    assert u.prompt_tokens > 0 and 0 < u.completion_tokens <= 32
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens


def test_chat_stream_answers_paris(client):
    stream = client.chat.completions.create(
        model=SMOL, messages=QUESTION, temperature=0, max_tokens=32,
        stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == "stop" and all(r is None for r in reasons[:-1])
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    # include_usage: one last chunk with no choices and the usage.
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert 0 < last.usage.completion_tokens <= 32
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_and_non_stream_agree(client):
    full = client.chat.completions.create(model=SMOL, messages=QUESTION, temperature=0, max_tokens=32)
    stream = client.chat.completions.create(
        model=SMOL, messages=QUESTION, temperature=0, max_tokens=32, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == full.choices[0].message.content


def test_completions(client):
    r = client.completions.create(model=SMOL, prompt="The capital of France is", temperature=0)
    assert r.object == "text_completion" and r.model == SMOL
    (choice,) = r.choices
    assert choice.text.strip()
    # The legacy endpoint's default max_tokens is 16.
    assert 0 < r.usage.completion_tokens <= 16
    assert choice.finish_reason in ("stop", "length")
    stream = client.completions.create(
        model=SMOL, prompt="The capital of France is", temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in stream if c.choices) == choice.text


def test_models_list_and_retrieve(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [SMOL, E5]  # the language model, then embeddings
    m = client.models.retrieve(SMOL)
    assert m.id == SMOL and m.owned_by == "civia" and m.object == "model"


def test_max_tokens_gives_length(client):
    r = client.chat.completions.create(
        model=SMOL, messages=[{"role": "user", "content": "Tell me a long story about Lyon."}],
        temperature=0, max_tokens=5,
    )
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5


def test_seed_makes_sampling_reproducible(client):
    def once():
        r = client.chat.completions.create(
            model=SMOL, messages=[{"role": "user", "content": "Write a short poem about the sea."}],
            temperature=0.9, seed=1234, max_tokens=24,
        )
        return r.choices[0].message.content

    first = once()
    assert first and once() == first


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4o", prompt="x")


def test_n_greater_than_one_is_refused(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=SMOL, messages=QUESTION, n=2)
    assert e.value.code == "unsupported_parameter" and e.value.param == "n"


def test_huge_max_tokens_is_refused(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=10**9)
    assert e.value.code == "invalid_value" and e.value.param == "max_tokens"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=SMOL, messages=QUESTION, max_completion_tokens=10**9)
    assert e.value.param == "max_completion_tokens"


def test_other_unsupported_features_are_refused(client):
    # Tools other than functions (test_tools.py has the functions, and their hostile forms).
    tool = {"type": "retrieval", "function": {"name": "f", "parameters": {"type": "object"}}}
    for kwargs in (
        {"tools": [tool]},
        {"logprobs": True},
        # A schema keyword the grammar cannot enforce (test_structured_output.py has the rest).
        {"response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"oneOf": [{"type": "string"}]}}}},
    ):
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model=SMOL, messages=QUESTION, max_tokens=4, **kwargs)
        assert e.value.code == "unsupported_parameter", kwargs


def test_dev_api_key(civiad):
    server = civiad(model=SMOL, env={"CIVIA_DEV_API_KEY": "s3cret-key-0123456789"})
    good = make_client(server, api_key="s3cret-key-0123456789")
    assert [m.id for m in good.models.list().data] == [SMOL, E5]
    r = good.chat.completions.create(model=SMOL, messages=QUESTION, temperature=0, max_tokens=32)
    assert "Paris" in r.choices[0].message.content
    bad = make_client(server, api_key="wrong-key")
    with pytest.raises(openai.AuthenticationError) as e:
        bad.models.list()
    assert e.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=SMOL, messages=QUESTION)
    with pytest.raises(openai.AuthenticationError):
        make_client(server, api_key="s3cret-ke").models.list()  # a prefix is not the key
