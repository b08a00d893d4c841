"""Tool calling, structured output, prompt templates, overflow and `lms log stream` on the real server
with the real SmolLM2 model, driven by the `openai` package, `httpx` and the `lms` CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from tests.support.json_prefix import json_prefix_error
from tests.support.model_log import INPUT, OUTPUT, ModelLog
from tests.support.server import CHAT_MODEL, NEVER_ENDS, Server

pytestmark = pytest.mark.e2e

HELLO = {
    "type": "function",
    "function": {
        "name": "say_hello",
        "description": "Says hello to someone",
        "parameters": {
            "type": "object",
            "properties": {"name": {"type": "string", "description": "The person's name"}},
            "required": ["name"],
        },
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
BOB = [{"role": "user", "content": "Can you say hello to Bob the Builder?"}]
HERMES_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n# Tools\n<tools>\n{% for t in tools %}{{ t | tojson }}\n{% endfor %}"
    "</tools>\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags.<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.tool_calls %}{% for c in m.tool_calls %}"
    '<tool_call>\n{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}\n'
    "</tool_call>{% endfor %}{% else %}{{ m.content }}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def oai(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0)


def test_required_tool_choice_gives_a_parseable_call(oai: openai.OpenAI) -> None:
    for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        completion = oai.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[HELLO, WEATHER],  # type: ignore[list-item]
            tool_choice=choice,  # type: ignore[arg-type]
        )
        choice0 = completion.choices[0]
        assert choice0.finish_reason == "tool_calls"
        call = (choice0.message.tool_calls or [])[0]
        assert call.id and call.function.name in ("say_hello", "get_weather")  # type: ignore[union-attr]
        arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
        schema = (HELLO if call.function.name == "say_hello" else WEATHER)["function"]["parameters"]  # type: ignore[union-attr,index]
        jsonschema.validate(arguments, schema)  # type: ignore[arg-type]
        if isinstance(choice, dict):
            assert call.function.name == "get_weather"  # type: ignore[union-attr]


def test_streamed_required_call_arrives_in_pieces(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model=CHAT_MODEL,
        messages=BOB,
        tools=[HELLO],
        tool_choice="required",
        stream=True,  # type: ignore[list-item]
    )
    content, name, arguments, pieces, finish = "", "", "", 0, None
    for chunk in stream:
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for tc in delta.tool_calls or []:
            assert tc.index == 0
            name += (tc.function.name if tc.function else None) or ""
            if tc.function and tc.function.arguments:
                arguments += tc.function.arguments
                pieces += 1
        finish = chunk.choices[0].finish_reason or finish
    assert content == "" and name == "say_hello" and finish == "tool_calls"
    assert "name" in json.loads(arguments)
    assert pieces >= 1


def test_native_hermes_format_through_a_template_override(server: Server, oai: openai.OpenAI) -> None:
    """SmolLM2 chats through a Hermes/Qwen-style template set as its per-model prompt template: the tools
    are rendered by the template, the forced call is `<tool_call>` JSON, and it lands in tool_calls."""
    template = {"type": "jinja", "jinjaPromptTemplate": {"template": HERMES_TEMPLATE}, "stopStrings": []}
    with server.http() as http:
        put = http.put(
            "/api/v1/models/config",
            params={"model": CHAT_MODEL},
            json={"prediction": {"promptTemplate": template}},
        )
        assert put.status_code == 200, put.text
        try:
            applied = http.post(
                "/api/v1/apply-template", json={"model": CHAT_MODEL, "messages": BOB, "tools": [HELLO]}
            )
            assert "<tools>" in applied.json()["prompt"] and "TOOL_REQUEST" not in applied.json()["prompt"]
            completion = oai.chat.completions.create(
                model=CHAT_MODEL,
                messages=BOB,
                tools=[HELLO],
                tool_choice="required",  # type: ignore[list-item]
            )
        finally:
            http.delete("/api/v1/models/config", params={"model": CHAT_MODEL})
    call = (completion.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "say_hello" and "name" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert completion.choices[0].message.content is None


QWEN3_CODER_LIKE = (
    Path(__file__).parents[1] / "support" / "templates" / "qwen3_coder_like.jinja"
).read_text()


def test_qwen3_xml_format_through_a_template_override(server: Server, oai: openai.OpenAI) -> None:
    """The same with Qwen3-Coder-style XML calls: `<function=...>` / `<parameter=...>` in the prompt,
    a forced call written in that markup, read back into JSON arguments of the right types."""
    template = {"type": "jinja", "jinjaPromptTemplate": {"template": QWEN3_CODER_LIKE}, "stopStrings": []}
    config = {"prediction": {"promptTemplate": template}}
    history = [
        *BOB,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "1"},
    ]
    with server.http() as http:
        assert http.put("/api/v1/models/config", params={"model": CHAT_MODEL}, json=config).status_code == 200
        try:
            body = {"model": CHAT_MODEL, "messages": history, "tools": [HELLO, WEATHER]}
            prompt = http.post("/api/v1/apply-template", json=body).json()["prompt"]
            completion = oai.chat.completions.create(
                model=CHAT_MODEL,
                messages=BOB,
                tools=[HELLO, WEATHER],
                tool_choice="required",  # type: ignore[list-item]
            )
        finally:
            http.delete("/api/v1/models/config", params={"model": CHAT_MODEL})
    assert "<function=get_weather>\n<parameter=city>\nOslo\n</parameter>" in prompt
    assert "<tool_response>\nsunny\n</tool_response>" in prompt
    call = (completion.choices[0].message.tool_calls or [])[0]
    schema = (HELLO if call.function.name == "say_hello" else WEATHER)["function"]["parameters"]  # type: ignore[union-attr,index]
    jsonschema.validate(json.loads(call.function.arguments), schema)  # type: ignore[union-attr,arg-type]
    assert completion.choices[0].finish_reason == "tool_calls"


# Bounded strings and lists: unbounded, a small model may write one until `max_tokens` (then `parse()`
# raises a length error), and whether it does depends on the sampled words, so on the CPU.
Text = Annotated[str, Field(max_length=24)]


class Address(BaseModel):
    city: Text
    country: Text


class Person(BaseModel):
    name: Text
    age: int = Field(ge=0, le=150)
    home: Address
    hobbies: list[Text] = Field(max_length=3)


# More than any output the schema allows: 6 strings of at most 24 characters (a character at most 6
# tokens, as a \uXXXX escape), bounded whitespace (at most 21 characters at ~30 places), the rest literals.
PERSON_MAX_TOKENS = 2000


def test_openai_parse_helper_with_a_pydantic_model(oai: openai.OpenAI) -> None:
    completion = oai.beta.chat.completions.parse(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Invent a person who lives in Paris."}],
        response_format=Person,
        max_tokens=PERSON_MAX_TOKENS,
    )
    assert completion.choices[0].finish_reason == "stop"
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person) and isinstance(person.home, Address)
    assert len(person.hobbies) <= 3 and all(len(text) <= 24 for text in (person.name, *person.hobbies))
    assert completion.usage and completion.usage.completion_tokens < PERSON_MAX_TOKENS


SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {"color": {"type": "string", "enum": ["red", "green", "blue"]}},
    "properties": {
        "colors": {"type": "array", "items": {"$ref": "#/$defs/color"}, "minItems": 2, "maxItems": 3},
        "count": {"type": "integer"},
        "ok": {"type": "boolean"},
    },
    "required": ["colors", "count", "ok"],
    "additionalProperties": False,
}


# More than any output SCHEMA allows (3 enum strings, 16 digits, a boolean, whitespace of at most 21
# characters at ~25 places): every sample ends by itself, whatever it says.
SCHEMA_MAX_TOKENS = 800


@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_output_always_validates(oai: openai.OpenAI, stream: bool) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "colors", "strict": True, "schema": SCHEMA}}
    for seed in range(3):
        kwargs: dict[str, Any] = dict(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": "Name some colors."}],
            response_format=fmt,
            temperature=1.0,
            seed=seed,
            max_tokens=SCHEMA_MAX_TOKENS,
        )
        if stream:
            text, finish = "", None
            for chunk in oai.chat.completions.create(stream=True, **kwargs):
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
        else:
            choice = oai.chat.completions.create(**kwargs).choices[0]
            text, finish = choice.message.content or "", choice.finish_reason
        assert finish == "stop", text
        jsonschema.validate(json.loads(text), SCHEMA)


def test_json_object_on_completions(server: Server) -> None:
    """Any object is allowed, so a small model may write one until the limit: the grammar guarantees an
    object when the model ends it, and the start of one when `max_tokens` cuts it."""
    with server.http() as http:
        body = {
            "model": CHAT_MODEL,
            "prompt": "A JSON object describing Paris:",
            "response_format": {"type": "json_object"},
            "max_tokens": 300,
        }
        reply = http.post("/v1/completions", json=body).json()
    text, finish = reply["choices"][0]["text"], reply["choices"][0]["finish_reason"]
    assert text.lstrip().startswith("{"), text
    assert json_prefix_error(text) is None, json_prefix_error(text)
    tokens = reply["usage"]["completion_tokens"]
    if finish == "length":
        assert tokens == 300
    else:
        assert finish == "stop" and 0 < tokens <= 300 and isinstance(json.loads(text), dict)


def test_bad_schema_is_a_400_naming_it(oai: openai.OpenAI) -> None:
    bad = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object", "required": "name"}},
    }
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model=CHAT_MODEL, messages=BOB, response_format=bad)  # type: ignore[arg-type]
    assert "required" in str(info.value)


def test_context_overflow_policies(server: Server) -> None:
    server.lms("load", CHAT_MODEL, "--context-length", "512", "--identifier", "small-ctx")
    try:
        history: list[dict[str, str]] = [{"role": "system", "content": "You are a helpful assistant."}]
        history.append({"role": "user", "content": "My name is Ada."})
        for i in range(30):
            history += [
                {"role": "assistant", "content": f"Noted {i}."},
                {"role": "user", "content": "More text " * 12},
            ]
        body: dict[str, Any] = {"model": "small-ctx", "messages": history, "max_tokens": 16, "temperature": 0}
        with server.http() as http:
            refused = http.post("/v1/chat/completions", json=body)
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
            for policy in ("truncateMiddle", "rollingWindow"):
                reply = http.post("/api/v0/chat/completions", json=body | {"context_overflow_policy": policy})
                assert reply.status_code == 200, reply.text
                assert f"policy={policy}" in reply.headers["x-openlms-prompt-truncated"]
                assert reply.json()["stats"]["prompt_truncated_messages"] > 0
                assert reply.json()["usage"]["prompt_tokens"] < 512
            long = {
                "model": "small-ctx",
                "messages": [{"role": "user", "content": "Count from 1 to 1000."}],
                "max_tokens": 700,
                "temperature": 0,
                "logit_bias": NEVER_ENDS,  # it writes 700 tokens, past the 512 of the context
                "context_overflow_policy": "truncateMiddle",
            }
            reply = http.post("/api/v0/chat/completions", json=long).json()
            assert reply["usage"]["completion_tokens"] == 700, reply
            assert reply["stats"]["stop_reason"] == "maxPredictedTokensReached"
            assert reply["stats"]["context_shift_tokens"] > 0
    finally:
        server.lms("unload", "small-ctx", check=False)


def test_log_stream_shows_the_default_tool_format(
    server: Server, oai: openai.OpenAI, model_log: ModelLog
) -> None:
    mark = model_log.mark()
    oai.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Get me delivery date for order 123"}],
        tools=[HELLO],  # type: ignore[list-item]
        tool_choice="required",
    )
    outputs = model_log.since(mark, OUTPUT)
    inputs = model_log.since(mark, INPUT)
    assert inputs and outputs
    prompt = inputs[-1]["input"]
    assert (
        "You are a tool-calling AI. You can request calls to available tools with this EXACT format:"
        in prompt
    )
    assert '"type": "toolArray"' in prompt and "Get me delivery date for order 123" in prompt
    assert inputs[-1]["modelIdentifier"] == CHAT_MODEL
    assert "[TOOL_REQUEST]" in outputs[-1]["output"] and outputs[-1]["stats"]["predictedTokensCount"] > 0


THINKING_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)


def test_reasoning_of_a_thinking_template_goes_to_reasoning_content(
    server: Server, oai: openai.OpenAI
) -> None:
    """A Qwen3/DeepSeek-style template opens `<think>` in the generation prompt: what the model writes
    until `</think>` is reasoning, what follows is content. Whatever SmolLM2 writes (24 tokens: its end
    tokens are banned), the answer is its raw text (as reasoning parsing off gives it) split there."""
    template = {"type": "jinja", "jinjaPromptTemplate": {"template": THINKING_TEMPLATE}, "stopStrings": []}
    ask: Any = dict(model=CHAT_MODEL, messages=BOB, max_tokens=24, temperature=0, logit_bias=NEVER_ENDS)
    with server.http() as http:
        config = {"prediction": {"promptTemplate": template}}
        assert http.put("/api/v1/models/config", params={"model": CHAT_MODEL}, json=config).status_code == 200
        try:
            separated = oai.chat.completions.create(**ask).choices[0].message
            streamed = [c.choices[0].delta for c in oai.chat.completions.create(stream=True, **ask)]
            config["prediction"]["reasoningParsing"] = False  # type: ignore[index]
            assert (
                http.put("/api/v1/models/config", params={"model": CHAT_MODEL}, json=config).status_code
                == 200
            )
            joined = oai.chat.completions.create(**ask).choices[0].message
        finally:
            http.delete("/api/v1/models/config", params={"model": CHAT_MODEL})
    raw = joined.content or ""
    assert raw and getattr(joined, "reasoning_content", None) is None
    thought, _, answer = raw.partition("</think>")
    reasoning = getattr(separated, "reasoning_content", None) or ""
    assert reasoning.strip() == thought.strip() and (separated.content or "").strip() == answer.strip()
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in streamed) == reasoning
    assert "".join(d.content or "" for d in streamed).strip() == answer.strip()
