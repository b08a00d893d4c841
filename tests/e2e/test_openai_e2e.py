"""The `openai` package against the real server and the real default models."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.model_log import INPUT, OUTPUT, ModelLog
from tests.support.server import BASE_MODEL, CHAT_MODEL, EMBEDDING_MODEL, NEVER_ENDS, Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0) as oai:
        yield oai


def check_finish(finish: str | None, tokens: int, max_tokens: int) -> None:
    """`length` exactly at the limit; `stop` (the model ended, or a stop string) at most there."""
    assert finish in ("stop", "length") and 0 < tokens <= max_tokens
    if finish == "length":
        assert tokens == max_tokens


def test_chat_answers_with_the_default_model(client: openai.OpenAI, server: Server) -> None:
    """Whatever the words, the answer is the model's continuation of the chat template's prompt: the
    prompt apply-template renders (same token count) continued as a raw completion gives the same text."""
    messages: Any = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    completion = client.chat.completions.create(
        model=CHAT_MODEL, messages=messages, temperature=0, max_tokens=48
    )
    answer = completion.choices[0].message.content or ""
    with server.http() as http:
        rendered = http.post("/api/v1/apply-template", json={"model": CHAT_MODEL, "messages": messages})
    assert rendered.status_code == 200, rendered.text
    raw = client.completions.create(
        model=CHAT_MODEL, prompt=rendered.json()["prompt"], temperature=0, max_tokens=48
    )
    assert completion.usage and completion.usage.prompt_tokens == rendered.json()["prompt_tokens"]
    check_finish(completion.choices[0].finish_reason, completion.usage.completion_tokens, 48)
    assert (
        answer == raw.choices[0].text and completion.choices[0].finish_reason == raw.choices[0].finish_reason
    )
    assert "<|im_end|>" not in answer and "<|im_start|>" not in answer


def test_streaming_matches_non_streaming(client: openai.OpenAI) -> None:
    kwargs = dict(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Name three colors."}],
        temperature=0,
        max_tokens=30,
        seed=1,
    )
    whole = client.chat.completions.create(**kwargs).choices[0].message.content  # type: ignore[call-overload]
    stream = client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})  # type: ignore[call-overload]
    parts, usage, finish = [], None, None
    for chunk in stream:
        if chunk.choices:
            parts.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert "".join(parts) == whole
    assert (
        finish in ("stop", "length")
        and usage is not None
        and usage.completion_tokens >= len([p for p in parts if p])
    )


def stop_inside_a_word(text: str) -> str:
    """A stop string taken from `text` after its start: the first 4 letters of a longer word (a stop string
    that ends inside a word, likely inside a token), else 2 characters from its middle."""
    for word in re.finditer(r"[A-Za-z]{5,}", text):
        stop = word.group()[:4]
        if text.index(stop) > 0:
            return stop
    return text[len(text) // 2 :][:2]


def test_stop_strings_never_appear(client: openai.OpenAI) -> None:
    """Cut from whatever the model answers (it writes 40 tokens: its end tokens are banned), a stop string
    ends the same request right before its first occurrence, and never shows."""
    ask: Any = dict(
        model=CHAT_MODEL,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
        temperature=0,
        max_tokens=40,
        logit_bias=NEVER_ENDS,
    )
    text = client.chat.completions.create(**ask).choices[0].message.content or ""
    assert len(text) >= 4, text
    stop = stop_inside_a_word(text)
    cut = client.chat.completions.create(**ask, stop=[stop])
    answer = cut.choices[0].message.content or ""
    assert answer == text[: text.index(stop)] and stop not in answer
    assert cut.choices[0].finish_reason == "stop"


def test_completion_uses_no_template_on_the_base_model(client: openai.OpenAI, model_log: ModelLog) -> None:
    """The model gets the prompt exactly as sent (the server logs what it gives the model), and the text
    is what it wrote, up to the stop string."""
    prompt = "Q: What is the capital of France?\nA:"
    mark = model_log.mark()
    completion = client.completions.create(
        model=BASE_MODEL, prompt=prompt, temperature=0, max_tokens=16, stop=["\n"]
    )
    text = completion.choices[0].text
    [given], [wrote] = model_log.since(mark, INPUT), model_log.since(mark, OUTPUT)
    assert given["input"] == prompt and given["modelIdentifier"] == BASE_MODEL
    assert wrote["output"] == text and "\n" not in text
    assert completion.usage and completion.usage.prompt_tokens == wrote["stats"]["promptTokensCount"]
    check_finish(completion.choices[0].finish_reason, completion.usage.completion_tokens, 16)


def test_base_model_chats_through_the_builtin_gemma_template(client: openai.OpenAI, server: Server) -> None:
    """gemma-3-270m's GGUF has no chat template: the built-in Gemma one renders the chat, and the turn's
    end token ends the answer without showing in it."""
    messages: Any = [{"role": "user", "content": "Hello"}]
    completion = client.chat.completions.create(
        model=BASE_MODEL, messages=messages, temperature=0, max_tokens=16
    )
    with server.http() as http:
        rendered = http.post("/api/v1/apply-template", json={"model": BASE_MODEL, "messages": messages})
    assert rendered.json()["prompt"].endswith(
        "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n"
    )
    assert completion.usage and completion.usage.prompt_tokens == rendered.json()["prompt_tokens"]
    check_finish(completion.choices[0].finish_reason, completion.usage.completion_tokens, 16)
    content = completion.choices[0].message.content
    assert content is not None and "<end_of_turn>" not in content and "<start_of_turn>" not in content


def test_embeddings_rank_similar_texts_closer(client: openai.OpenAI) -> None:
    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "The stock market fell sharply today."]
    result = client.embeddings.create(model=EMBEDDING_MODEL, input=texts)
    vectors = [d.embedding for d in result.data]
    assert len(vectors) == 3 and len(vectors[0]) == 384
    cos = lambda a, b: sum(x * y for x, y in zip(a, b, strict=True))  # noqa: E731  (unit vectors)
    assert all(math.isclose(cos(v, v), 1.0, rel_tol=1e-4) for v in vectors)
    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2]) + 0.2
    single = client.embeddings.create(model=EMBEDDING_MODEL, input=texts[0], encoding_format="float")
    assert single.data[0].embedding == pytest.approx(vectors[0], abs=1e-4)
    assert result.usage.prompt_tokens > 10


def test_errors_are_openai_errors_and_the_server_keeps_serving(client: openai.OpenAI, server: Server) -> None:
    with pytest.raises(openai.NotFoundError, match="no-such-model"):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="context length"):
        client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "hello " * 6000}]
        )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "x"}], temperature="hot"
        )  # type: ignore[arg-type]
    with httpx.Client(base_url=server.url) as http:
        bad_json = http.post(
            "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert bad_json.status_code == 400 and "JSON" in bad_json.json()["error"]["message"]
        wrong_type = http.post("/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": 42})
        assert wrong_type.status_code == 400 and wrong_type.json()["error"]["param"]
    ok = client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
    )
    assert ok.choices[0].message.content is not None


def test_error_inside_a_stream_is_an_error_event(server: Server) -> None:
    body = {"model": "no-such-model", "messages": [{"role": "user", "content": "x"}], "stream": True}
    with httpx.Client(base_url=server.url) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 404  # errors known before streaming starts keep their status


def test_abandoned_stream_stops_generating(client: openai.OpenAI, server: Server) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Write a very long story about a dragon."}],
        max_tokens=2000,
        logit_bias=NEVER_ENDS,  # still generating when abandoned, however the story goes
        stream=True,
    )
    for i, _chunk in enumerate(stream):
        if i == 3:
            break
    stream.close()
    deadline = time.monotonic() + 5
    status = None
    while time.monotonic() < deadline:
        instances = server.lms_json("ps")
        assert isinstance(instances, list)
        status = {i["identifier"]: i["status"] for i in instances}.get(CHAT_MODEL)
        if status == "idle":
            break
        time.sleep(0.1)
    assert status == "idle"


def test_models_endpoint_lists_downloaded_models(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {CHAT_MODEL, BASE_MODEL, EMBEDDING_MODEL} <= ids


def test_raw_sse_wire_format(server: Server) -> None:
    body = {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "max_tokens": 3,
    }
    with (
        httpx.Client(base_url=server.url, timeout=60) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as r,
    ):
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    assert payloads[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_seed_makes_sampling_reproducible_and_logit_bias_applies(client: openai.OpenAI) -> None:
    kwargs = dict(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Tell me a story."}],
        max_tokens=24,
        temperature=1.2,
        top_p=0.95,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        logit_bias=NEVER_ENDS,  # 24 sampled tokens of text, whatever the sample
        extra_body={"top_k": 50, "min_p": 0.02, "repeat_penalty": 1.05},
    )
    a = client.chat.completions.create(**kwargs, seed=42)  # type: ignore[call-overload]
    b = client.chat.completions.create(**kwargs, seed=42)  # type: ignore[call-overload]
    assert a.choices[0].message.content == b.choices[0].message.content and a.choices[0].message.content
    assert a.usage.completion_tokens == b.usage.completion_tokens == 24
    # Ban SmolLM2's end tokens: the answer must run to max_tokens.
    banned = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        temperature=0,
        max_tokens=40,
        logit_bias=NEVER_ENDS,
    )
    assert banned.choices[0].finish_reason == "length"
    assert banned.usage and banned.usage.completion_tokens == 40
    # +100 on "!" (id 17 in SmolLM2's vocab): a greedy answer is that token, again and again.
    forced = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Hi"}],
        temperature=0,
        max_tokens=8,
        logit_bias={"17": 100},
    )
    assert forced.choices[0].message.content == "!" * 8
