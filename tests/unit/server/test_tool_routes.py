"""Tools, reasoning, structured output and overflow through the real routes and the `openai` client, over
the fake engine (its scripted reply plays the model; the prompt it receives is checked too)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from openlms.engine.fake import FakeBackend
from tests.support.tools import DELIVERY_TOOL

CHAT = "tiny-chat"
DELIVERY = DELIVERY_TOOL
CALL = '[TOOL_REQUEST]{"name": "get_delivery_date", "arguments": {"order_id": "123"}}[END_TOOL_REQUEST]'
ASK = [{"role": "user", "content": "Get me delivery date for order 123"}]
HERMES_TEMPLATE = (
    "{% if tools %}<|im_start|>system\\n<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>\\n"
    "For each call write <tool_call>{...}</tool_call><|im_end|>\\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\\n"
    "{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>\\n"
    '{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}}\\n</tool_call>'
    "{% endfor %}{% else %}{{ m.content }}{% endif %}<|im_end|>\\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\\n{% endif %}"
)


@pytest.fixture
def oai(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://openlms.test/v1", api_key="lm-studio", http_client=client)


def replies(fake: FakeBackend, text: str) -> None:
    """Make the fake model answer `text`."""
    fake.reply = lambda prompt: text


async def prompt_of(client: httpx.AsyncClient, **body: Any) -> str:
    """The exact prompt a chat request with `body` gives the model (the same rendering path)."""
    response = await client.post("/api/v1/apply-template", json={"model": CHAT} | body)
    assert response.status_code == 200, response.text
    prompt: str = response.json()["prompt"]
    return prompt


async def test_default_format_call_lands_in_tool_calls(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    replies(fake, CALL)
    completion = await oai.chat.completions.create(model=CHAT, messages=ASK, tools=[DELIVERY])  # type: ignore[list-item]
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "get_delivery_date"  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"order_id": "123"}  # type: ignore[union-attr]
    assert calls[0].id
    prompt = await prompt_of(client, messages=ASK, tools=[DELIVERY])
    assert "You are a tool-calling AI" in prompt and "AVAILABLE TOOLS" in prompt
    assert '"name": "get_delivery_date"' in prompt


async def test_streamed_call_after_text_never_leaks_markup(
    oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    replies(fake, "Let me check. " + CALL)
    stream = await oai.chat.completions.create(model=CHAT, messages=ASK, tools=[DELIVERY], stream=True)  # type: ignore[list-item]
    content, calls, finish = "", [], None
    first_call_delta: Any = None
    async for chunk in stream:
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for tc in delta.tool_calls or []:
            if len(calls) <= tc.index:
                calls.append({"id": "", "name": "", "arguments": ""})
                first_call_delta = first_call_delta or tc
            calls[tc.index]["id"] += tc.id or ""
            calls[tc.index]["name"] += (tc.function.name if tc.function else None) or ""
            calls[tc.index]["arguments"] += (tc.function.arguments if tc.function else None) or ""
        finish = chunk.choices[0].finish_reason or finish
    assert content.strip() == "Let me check." and "TOOL" not in content
    assert finish == "tool_calls" and len(calls) == 1
    assert calls[0]["name"] == "get_delivery_date" and json.loads(calls[0]["arguments"]) == {
        "order_id": "123"
    }
    assert first_call_delta.id and first_call_delta.function.name == "get_delivery_date"


async def test_tool_names_are_normalised_for_the_model_and_mapped_back(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    tool = {"type": "function", "function": {"name": "Get-Weather"}}  # no parameters at all
    replies(fake, '[TOOL_REQUEST]{"name": "get_weather", "arguments": {}}[END_TOOL_REQUEST]')
    completion = await oai.chat.completions.create(model=CHAT, messages=ASK, tools=[tool])  # type: ignore[list-item]
    call = (completion.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "Get-Weather" and json.loads(call.function.arguments) == {}  # type: ignore[union-attr]
    prompt = await prompt_of(client, messages=ASK, tools=[tool])
    assert '"name": "get_weather"' in prompt and "Get-Weather" not in prompt


async def test_tool_choice_none_renders_no_tools(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    replies(fake, CALL)
    completion = await oai.chat.completions.create(
        model=CHAT,
        messages=ASK,
        tools=[DELIVERY],
        tool_choice="none",  # type: ignore[list-item]
    )
    assert "AVAILABLE TOOLS" not in await prompt_of(
        client, messages=ASK, tools=[DELIVERY], tool_choice="none"
    )
    assert completion.choices[0].message.content == CALL and not completion.choices[0].message.tool_calls


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_delivery_date"}}]
)
async def test_required_choice_sends_a_grammar(
    oai: openai.AsyncOpenAI, fake: FakeBackend, choice: Any
) -> None:
    replies(fake, CALL)
    completion = await oai.chat.completions.create(
        model=CHAT,
        messages=ASK,
        tools=[DELIVERY],
        tool_choice=choice,  # type: ignore[list-item]
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    grammar = fake.requests[-1].grammar
    assert grammar is not None and '"[TOOL_REQUEST]"' in grammar and "get_delivery_date" in grammar


async def test_bad_tool_choice_is_a_400(client: httpx.AsyncClient) -> None:
    body = {
        "model": CHAT,
        "messages": ASK,
        "tools": [DELIVERY],
        "tool_choice": {"type": "function", "function": {"name": "nope"}},
    }
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == "tool_choice"
    assert "nope" in response.json()["error"]["message"]


async def test_history_with_calls_and_results_in_default_format(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    replies(fake, "It arrives on 2024-03-15.")
    history = ASK + [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "365174485",
                    "type": "function",
                    "function": {"name": "get_delivery_date", "arguments": '{"order_id": "123"}'},
                }
            ],
        },
        {"role": "tool", "content": "2024-03-15", "tool_call_id": "365174485"},
    ]
    completion = await oai.chat.completions.create(model=CHAT, messages=history, tools=[DELIVERY])  # type: ignore[arg-type,list-item]
    assert completion.choices[0].message.content == "It arrives on 2024-03-15."
    prompt = await prompt_of(client, messages=history, tools=[DELIVERY])
    assert (
        '[TOOL_REQUEST]{"name": "get_delivery_date", "arguments": {"order_id": "123"}}[END_TOOL_REQUEST]'
        in prompt
    )
    assert "[TOOL_RESULT]" in prompt and "2024-03-15" in prompt
    assert "<|im_start|>tool" not in prompt  # tool results became user turns


async def test_native_hermes_template_via_model_settings(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    config = {
        "prediction": {
            "promptTemplate": {
                "type": "jinja",
                "jinjaPromptTemplate": {"template": HERMES_TEMPLATE},
                "stopStrings": [],
            }
        }
    }
    put = await client.put("/api/v1/models/config", params={"model": CHAT}, json=config)
    assert put.status_code == 200, put.text
    replies(fake, '<tool_call>\n{"name": "get_delivery_date", "arguments": {"order_id": "7"}}\n</tool_call>')
    completion = await oai.chat.completions.create(model=CHAT, messages=ASK, tools=[DELIVERY])  # type: ignore[list-item]
    call = (completion.choices[0].message.tool_calls or [])[0]
    assert json.loads(call.function.arguments) == {"order_id": "7"}  # type: ignore[union-attr]
    prompt = await prompt_of(client, messages=ASK, tools=[DELIVERY])
    assert "<tools>" in prompt and "AVAILABLE TOOLS" not in prompt
    history = ASK + [
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "1",
                    "type": "function",
                    "function": {"name": "get_delivery_date", "arguments": '{"order_id": "7"}'},
                }
            ],
        },
        {"role": "tool", "content": "soon", "tool_call_id": "1"},
    ]
    prompt = await prompt_of(client, messages=history, tools=[DELIVERY])
    assert '{"name": "get_delivery_date", "arguments": {"order_id": "7"}}' in prompt


async def test_reasoning_is_separated_and_can_be_turned_off(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    replies(fake, "<think>The user greets.</think>Hello!")
    completion = await oai.chat.completions.create(model=CHAT, messages=ASK)
    message = completion.choices[0].message
    assert message.content == "Hello!"
    assert message.reasoning_content == "The user greets."  # type: ignore[attr-defined]
    stream = await oai.chat.completions.create(model=CHAT, messages=ASK, stream=True)
    reasoning, content = "", ""
    async for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        content += delta.content or ""
    assert (reasoning, content) == ("The user greets.", "Hello!")
    await client.put(
        "/api/v1/models/config", params={"model": CHAT}, json={"prediction": {"reasoningParsing": False}}
    )
    completion = await oai.chat.completions.create(model=CHAT, messages=ASK)
    assert completion.choices[0].message.content == "<think>The user greets.</think>Hello!"


async def test_response_format_schema_goes_to_the_engine_as_a_grammar(
    oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    replies(fake, '{"joke": "ha"}')
    schema = {"type": "object", "properties": {"joke": {"type": "string"}}, "required": ["joke"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "joke", "strict": "true", "schema": schema}}
    completion = await oai.chat.completions.create(model=CHAT, messages=ASK, response_format=fmt)  # type: ignore[arg-type]
    assert json.loads(completion.choices[0].message.content or "") == {"joke": "ha"}
    assert fake.requests[-1].grammar and "joke" in fake.requests[-1].grammar
    await oai.chat.completions.create(model=CHAT, messages=ASK, response_format={"type": "text"})
    assert fake.requests[-1].grammar is None


@pytest.mark.parametrize(
    ("fmt", "needle"),
    [
        ({"type": "json_schema", "json_schema": {"name": "x"}}, "schema"),
        ({"type": "json_schema", "json_schema": {"schema": {"type": "nope"}}}, "nope"),
        ({"type": "json_schema", "json_schema": {"schema": {"$ref": "http://x/y.json"}}}, "$ref"),
        ({"type": "yaml"}, "yaml"),
    ],
)
async def test_bad_response_format_is_a_400_naming_the_problem(
    client: httpx.AsyncClient, fmt: dict[str, Any], needle: str
) -> None:
    body = {"model": CHAT, "messages": ASK, "response_format": fmt}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "response_format" and needle in error["message"]


async def test_truncation_is_reported_never_silent(client: httpx.AsyncClient, fake: FakeBackend) -> None:
    replies(fake, "ok")
    history: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}]
    for i in range(40):
        history += [
            {"role": "user", "content": f"question {i} " * 40},
            {"role": "assistant", "content": "a " * 40},
        ]
    history.append({"role": "user", "content": "last"})
    body = {"model": CHAT, "messages": history, "context_overflow_policy": "truncateMiddle", "max_tokens": 8}
    response = await client.post("/api/v0/chat/completions", json=body)
    assert response.status_code == 200, response.text
    header = response.headers["x-openlms-prompt-truncated"]
    assert "policy=truncateMiddle" in header
    stats = response.json()["stats"]
    assert stats["prompt_truncated_messages"] > 0 and stats["prompt_truncated_tokens"] > 0
    body["context_overflow_policy"] = "stopAtLimit"
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "context_length_exceeded"


async def test_apply_template_returns_the_prompt_and_its_tokens(client: httpx.AsyncClient) -> None:
    body = {"model": CHAT, "messages": ASK}
    applied = (await client.post("/api/v1/apply-template", json=body)).json()
    assert (
        applied["prompt"].endswith("<|im_start|>assistant\n")
        and "delivery date for order 123" in applied["prompt"]
    )
    assert applied["prompt_tokens"] > 0 and applied["model"] == CHAT
    body["model"] = "no-such-model"
    assert (await client.post("/api/v1/apply-template", json=body)).status_code == 404


async def test_v0_models_show_capabilities(client: httpx.AsyncClient) -> None:
    models = (await client.get("/api/v0/models")).json()["data"]
    chat = next(m for m in models if m["id"] == CHAT)
    assert chat["capabilities"] == []


async def test_a_models_tool_choice_setting_applies_to_requests_with_tools(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    config = {"prediction": {"toolChoice": "required"}}
    assert (await client.put("/api/v1/models/config", params={"model": CHAT}, json=config)).status_code == 200
    replies(fake, CALL)
    await oai.chat.completions.create(model=CHAT, messages=ASK, tools=[DELIVERY])  # type: ignore[list-item]
    assert fake.requests[-1].grammar is not None and fake.requests[-1].grammar_trigger is None
    await oai.chat.completions.create(model=CHAT, messages=ASK, tools=[DELIVERY], tool_choice="auto")  # type: ignore[list-item]
    assert fake.requests[-1].grammar_trigger == "[TOOL_REQUEST]"  # lazy: only once the model starts a call
    await oai.chat.completions.create(model=CHAT, messages=ASK)  # no tools: the setting does not apply
    assert fake.requests[-1].grammar is None


async def test_a_call_cut_by_max_tokens_finishes_with_length(
    oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    replies(fake, '[TOOL_REQUEST]{"name": "get_delivery_date", "arguments": {"order_id": "1 2 3 4 5 6"}}')
    completion = await oai.chat.completions.create(
        model=CHAT,
        messages=ASK,
        tools=[DELIVERY],
        max_tokens=4,  # type: ignore[list-item]
    )
    assert completion.choices[0].message.tool_calls  # the call had begun when the limit hit
    assert completion.choices[0].finish_reason == "length"


DEEP: dict[str, Any] = {"type": "string"}
for _ in range(200):
    DEEP = {"type": "object", "properties": {"a": DEEP}}


@pytest.mark.parametrize(
    ("extra", "param", "needle"),
    [
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"function": "x"}]}, *ASK]},
            "messages[0].tool_calls[0]",
            "'function'",
        ),
        ({"tools": [DELIVERY, DELIVERY]}, "tools[1]", "used by another tool"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": DEEP}}},
            "response_format",
            "deeper",
        ),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f", "parameters": DEEP}}],
                "tool_choice": "required",
            },
            "tools",
            "deeper",
        ),
        ({"tool_choice": "required"}, "tool_choice", "needs a non-empty 'tools'"),
    ],
)
async def test_bad_tool_and_schema_input_is_a_400_naming_it(
    home: Any, fake: FakeBackend, extra: dict[str, Any], param: str, needle: str
) -> None:
    from tests.unit.server.conftest import make_app

    app = make_app(home, fake, max_json_depth=1000)  # DEEP passes the body's limit (64), not the schema's
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            response = await client.post(
                "/v1/chat/completions", json={"model": CHAT, "messages": ASK} | extra
            )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and needle in error["message"]


async def test_a_grammar_answer_is_content_even_when_the_template_opens_thinking(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    thinking = (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "<|im_start|>assistant\n<think>\n"
    )
    template = {"type": "jinja", "jinjaPromptTemplate": {"template": thinking}, "stopStrings": []}
    config = {"prediction": {"promptTemplate": template}}
    assert (await client.put("/api/v1/models/config", params={"model": CHAT}, json=config)).status_code == 200
    replies(fake, '{"joke": "ha"}')
    plain = (await oai.chat.completions.create(model=CHAT, messages=ASK)).choices[0].message
    assert plain.reasoning_content == '{"joke": "ha"}' and not plain.content  # type: ignore[attr-defined]
    fmt: Any = {"type": "json_object"}
    structured = (await oai.chat.completions.create(model=CHAT, messages=ASK, response_format=fmt)).choices[0]
    assert structured.message.content == '{"joke": "ha"}'


async def test_auto_gets_a_lazy_grammar_unless_the_schemas_cannot_be_expressed(
    oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    replies(fake, "Hello")
    await oai.chat.completions.create(model=CHAT, messages=ASK, tools=[DELIVERY])  # type: ignore[list-item]
    request = fake.requests[-1]
    assert request.grammar_trigger == "[TOOL_REQUEST]" and request.grammar
    assert request.grammar.startswith('root ::= ( "[TOOL_REQUEST]"')
    odd = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "not": {}}}}
    completion = await oai.chat.completions.create(model=CHAT, messages=ASK, tools=[odd])  # type: ignore[list-item]
    assert completion.choices[0].message.content == "Hello"  # served, calls parsed as written
    assert fake.requests[-1].grammar is None and fake.requests[-1].grammar_trigger is None
    fmt: Any = {"type": "json_object"}
    await oai.chat.completions.create(model=CHAT, messages=ASK, tools=[DELIVERY], response_format=fmt)  # type: ignore[list-item]
    assert fake.requests[-1].grammar_trigger is None  # structured output wins: no call can start


async def test_with_cors_a_web_client_can_read_the_truncation_header(home: Any, fake: FakeBackend) -> None:
    from tests.unit.server.conftest import make_app

    app = make_app(home, fake, cors=True)
    replies(fake, "ok")
    history = [{"role": "user", "content": "word " * 3000}, {"role": "user", "content": "last"}]
    body = {"model": CHAT, "messages": history, "context_overflow_policy": "rollingWindow", "max_tokens": 4}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://openlms.test") as http:
            response = await http.post("/v1/chat/completions", json=body, headers={"Origin": "http://x.test"})
    assert response.status_code == 200, response.text
    assert "policy=rollingWindow" in response.headers["x-openlms-prompt-truncated"]
    assert "x-openlms-prompt-truncated" in response.headers["access-control-expose-headers"].lower()
