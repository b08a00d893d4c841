"""The official `lmstudio` Python SDK (1.5.0) against the real openlms server and the real default models:
convenience, scoped and async APIs; chat and completion predictions (config, callbacks, stats,
cancellation, structured output, tools through `act()`); embeddings; tokens; model management (load,
identifiers, TTL, JIT eviction, unload); presets, images and errors.

What SmolLM2-135M writes differs from one CPU to another (other numerics, other words and lengths), so
the tests check what the server guarantees: stats and stop reasons consistent with the limits, grammars
and schemas kept (bounded, with maxTokens above what they allow), the same answer for the same greedy
request. It never calls a tool on its own (openlms's per-model `toolChoice: required` forces it).
Predictions are kept to a few tokens: the machine has two cores.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Annotated, Any, cast

import jsonschema
import lmstudio as lms
import msgspec
import pydantic
import pytest

from tests.support.sdk import (
    ENDLESS_GRAMMAR,
    FRANCE,
    SYSTEM_PROMPT,
    Callbacks,
    check_limit,
    check_stats,
    cosine,
    forced_tool_calls,
    france_chat,
    greedy,
    host_of,
    loaded,
    tiny_png,
    unload_all,
    wait_until,
    write_preset,
)
from tests.support.server import BASE_MODEL, CHAT_MODEL, EMBEDDING_MODEL, SDK_PORT, Server, free_port

pytestmark = [pytest.mark.e2e]

EMBEDDING_DIMS = 384


@pytest.fixture(scope="module")
def host(server: Server) -> str:
    return host_of(server)


@pytest.fixture(scope="module")
def client(host: str) -> Iterator[lms.Client]:
    with lms.Client(host) as sdk_client:
        yield sdk_client


@pytest.fixture
def llm(client: lms.Client) -> lms.LLM:
    """The chat model, loaded just in time if another test's JIT load evicted it."""
    return client.llm.model(CHAT_MODEL)


@pytest.fixture
def default_client(sdk_server: Server) -> Iterator[Server]:
    """The convenience API's global client, which finds `sdk_server` on the SDK's default port; closed and
    forgotten afterwards."""
    yield sdk_server
    lms.sync_api._reset_default_client()


def test_scoped_client_respond_with_callbacks_stats_and_model_info(host: str) -> None:
    with lms.Client(host) as scoped:
        model = scoped.llm.model(CHAT_MODEL)
        callbacks = Callbacks()
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": FRANCE}]
        history = cast(lms.ChatHistoryDataDict, {"messages": messages})  # the plain-dict form
        result = model.respond(history, config=greedy(12), **callbacks.kwargs())
        as_chat = model.respond(france_chat(), config=greedy(12))  # the same conversation as a Chat
        info = model.get_info()
    assert result.content == as_chat.content
    assert result.stats.prompt_tokens_count == as_chat.stats.prompt_tokens_count
    callbacks.check(result)
    check_stats(result)
    check_limit(result, 12)
    assert result.model_info.model_key == CHAT_MODEL and result.model_info.path == info.path
    assert info.identifier == CHAT_MODEL and info.model_key == CHAT_MODEL
    assert result.prediction_config.temperature == 0 and result.prediction_config.max_tokens == 12
    assert result.load_config.context_length == info.context_length


# -- predictions ---------------------------------------------------------------------------------------


def test_respond_stream_fragments_make_the_result(llm: lms.LLM) -> None:
    callbacks = Callbacks()
    stream = llm.respond_stream(france_chat(), config=greedy(10), **callbacks.kwargs())
    pieces = [fragment.content for fragment in stream]
    result = stream.result()
    assert "".join(pieces) == result.content and len(pieces) == len(callbacks.fragments)
    callbacks.check(result)
    check_stats(result)


def test_complete_stops_at_a_stop_string(llm: lms.LLM) -> None:
    """A grammar makes the model write this text (in tokens of its choosing), whatever it would write:
    the stop string ends the prediction before its first occurrence."""
    grammar = 'root ::= "Paris is big. Lyon is not."'
    config = greedy(40, stopStrings=["."], structured={"type": "gbnf", "gbnfGrammar": grammar})
    result = llm.complete("The capital of France is", config=config)
    assert result.content == "Paris is big"
    check_stats(result, "stopStringFound")


def test_complete_stream_with_max_tokens_and_callbacks(llm: lms.LLM) -> None:
    callbacks = Callbacks()
    stream = llm.complete_stream("Once upon a time", config=greedy(3), **callbacks.kwargs())
    assert "".join(fragment.content for fragment in stream) == stream.result().content
    result = stream.result()
    callbacks.check(result)
    check_stats(result)
    check_limit(result, 3)


def test_cancelling_a_stream_stops_the_prediction(llm: lms.LLM) -> None:
    """The prediction cannot end by itself (a grammar that never completes, 2000 tokens): only the cancel,
    sent at its first fragment, stops it."""
    config = greedy(2000, structured={"type": "gbnf", "gbnfGrammar": ENDLESS_GRAMMAR})
    stream = llm.respond_stream(france_chat(), config=config)
    for count, _fragment in enumerate(stream, start=1):
        if count == 1:
            stream.cancel()
    result = stream.result()
    assert result.stats.stop_reason == "userStopped"
    assert result.stats.predicted_tokens_count is not None and result.stats.predicted_tokens_count < 2000


# Bounded schemas: unbounded, a small model may write a string until maxTokens. min_length makes the
# grammar guarantee non-empty names.
class PydanticCity(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=1, max_length=16)
    country: str = pydantic.Field(min_length=1, max_length=16)


class SdkCity(lms.BaseModel):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    country: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 16},
        "population": {"type": "integer", "minimum": 0, "maximum": 99999999},
    },
    "required": ["name", "population"],
    "additionalProperties": False,
}
# More than any output of these schemas takes (two strings of at most 16 characters, at most 6 tokens
# each as a \uXXXX escape, whitespace of at most 21 characters at ~10 places, the rest literals): every
# answer ends by itself, whatever it says.
CITY_MAX_TOKENS = 600


def _city_chat() -> lms.Chat:
    chat = lms.Chat(SYSTEM_PROMPT)
    chat.add_user_message("Name a city in France, as JSON.")
    return chat


@pytest.mark.parametrize("response_format", [PydanticCity, SdkCity], ids=["pydantic", "lms.BaseModel"])
def test_structured_response_from_a_model_class(llm: lms.LLM, response_format: Any) -> None:
    result = llm.respond(_city_chat(), response_format=response_format, config=greedy(CITY_MAX_TOKENS))
    assert result.structured and isinstance(result.parsed, dict), result.content
    assert result.stats.stop_reason == "eosFound"
    city = PydanticCity.model_validate(result.parsed)
    assert city.name and city.country


def test_structured_response_from_a_json_schema(llm: lms.LLM) -> None:
    result = llm.respond(_city_chat(), response_format=CITY_SCHEMA, config=greedy(CITY_MAX_TOKENS))
    assert isinstance(result.parsed, dict), result.content
    assert result.stats.stop_reason == "eosFound"
    jsonschema.validate(result.parsed, CITY_SCHEMA)


def test_structured_response_from_a_gbnf_grammar(llm: lms.LLM) -> None:
    grammar = 'root ::= "{\\"answer\\": \\"" ("yes" | "no") "\\"}"'
    config = greedy(64, structured={"type": "gbnf", "gbnfGrammar": grammar})  # > its 17 characters
    result = llm.respond("Is Paris in France?", config=config)
    assert result.parsed in ({"answer": "yes"}, {"answer": "no"}), result.content


def test_act_runs_a_forced_tool_call_then_answers(server: Server, llm: lms.LLM) -> None:
    calls: list[tuple[Any, Any]] = []

    def add(a: int, b: int) -> int:
        """Add two integers."""
        calls.append((a, b))
        return a + b

    messages: list[Any] = []
    rounds: list[lms.PredictionRoundResult] = []
    chat = lms.Chat(SYSTEM_PROMPT)
    chat.add_user_message("What is 12 plus 30? Use the add tool.")
    with forced_tool_calls(server):
        result = llm.act(
            chat,
            [add],
            max_prediction_rounds=2,
            # more than a forced call can take (two integers of at most 16 digits, bounded whitespace)
            config=greedy(600),
            on_message=messages.append,
            on_prediction_completed=rounds.append,
        )
    assert result.rounds == 2 and [r.round_index for r in rounds] == [0, 1]
    assert calls and all(type(a) is int and type(b) is int for a, b in calls), calls
    assert rounds[0].stats.stop_reason == "toolCalls" and "[TOOL_REQUEST]" not in rounds[0].content
    check_limit(rounds[1], 600)  # the last round answers in text (whatever its words)
    assert [type(m) for m in messages] == [
        lms.AssistantResponse,
        lms.ToolResultMessage,
        lms.AssistantResponse,
    ]
    tool_results = messages[1].content
    assert [r.content for r in tool_results] == [str(a + b) for a, b in calls]


def test_apply_prompt_template_uses_the_chat_template(llm: lms.LLM) -> None:
    prompt = llm.apply_prompt_template(france_chat())
    assert SYSTEM_PROMPT in prompt and FRANCE in prompt and "<|im_start|>" in prompt


def test_llm_tokens_and_context_length(llm: lms.LLM) -> None:
    tokens = llm.tokenize("Hello world")
    assert tokens and all(isinstance(t, int) for t in tokens)
    assert len(tokens) == llm.count_tokens("Hello world")
    assert llm.tokenize(["Hello world", "Hi"])[0] == tokens
    assert llm.count_tokens("Hello world, and hello again") > len(tokens)
    assert llm.get_context_length() == llm.get_info().context_length == llm.get_load_config().context_length


# -- embeddings --------------------------------------------------------------------------------------


def test_embeddings(client: lms.Client) -> None:
    model = client.embedding.model(EMBEDDING_MODEL)
    texts = ["A cat sits on the mat.", "A kitten is sitting on a rug.", "Stock markets fell sharply today."]
    one = cast(list[float], model.embed(texts[0]))
    many = cast(list[list[float]], model.embed(texts))
    assert len(one) == EMBEDDING_DIMS and all(isinstance(x, float) for x in one)
    assert len(many) == 3 and all(len(v) == EMBEDDING_DIMS for v in many)
    assert many[0] == pytest.approx(one, abs=1e-4)
    assert cosine(many[0], many[1]) > cosine(many[0], many[2]) + 0.1
    assert len(model.tokenize("Hello world")) == model.count_tokens("Hello world") + 2  # [CLS] ... [SEP]
    assert model.get_context_length() == model.get_info().context_length > 0
    assert model.get_load_config().context_length == model.get_context_length()


# -- model management ------------------------------------------------------------------------------


def test_list_downloaded_models(client: lms.Client) -> None:
    everything = {m.model_key: m for m in client.list_downloaded_models()}
    assert everything[CHAT_MODEL].type == "llm" and everything[BASE_MODEL].type == "llm"
    assert everything[EMBEDDING_MODEL].type == "embedding"
    assert everything[CHAT_MODEL].info.path.endswith(".gguf")
    llms = client.llm.list_downloaded()
    assert {m.model_key for m in llms} >= {CHAT_MODEL, BASE_MODEL} and {m.type for m in llms} == {"llm"}
    embeddings = client.embedding.list_downloaded()
    assert EMBEDDING_MODEL in {m.model_key for m in embeddings} and {m.type for m in embeddings} == {
        "embedding"
    }


def test_load_identifiers_config_and_unload(client: lms.Client) -> None:
    unload_all(client)
    first = client.llm.load_new_instance(BASE_MODEL, ttl=None, config={"contextLength": 1024})
    second = client.llm.load_new_instance(BASE_MODEL, ttl=None)
    custom = client.llm.load_new_instance(BASE_MODEL, "my-gemma", ttl=None)
    assert (first.identifier, second.identifier, custom.identifier) == (
        BASE_MODEL,
        f"{BASE_MODEL}:2",
        "my-gemma",
    )
    assert first.get_load_config().context_length == 1024 == first.get_context_length()
    assert second.get_info().model_key == BASE_MODEL == custom.get_info().model_key
    assert loaded(client)["llm"] == sorted([BASE_MODEL, f"{BASE_MODEL}:2", "my-gemma"])
    with pytest.raises(lms.LMStudioServerError, match="already exists"):
        client.llm.load_new_instance(BASE_MODEL, "my-gemma", ttl=None)
    completion = client.llm.model("my-gemma").complete("The capital of France is", config=greedy(4))
    check_stats(completion)
    check_limit(completion, 4)
    assert completion.model_info.model_key == BASE_MODEL
    second.unload()
    client.llm.unload("my-gemma")
    assert loaded(client)["llm"] == [BASE_MODEL]
    first.unload()
    assert loaded(client)["llm"] == []
    with pytest.raises(lms.LMStudioModelNotFoundError):
        first.get_info()  # a handle to an unloaded instance
    with pytest.raises(lms.LMStudioModelNotFoundError):
        first.unload()


def test_idle_ttl_unloads_the_model_and_use_resets_it(client: lms.Client) -> None:
    """ttl is an idle time: each use restarts it; once idle that long, the instance is unloaded."""
    probe = client.embedding.load_new_instance(EMBEDDING_MODEL, "ttl-probe", ttl=3)
    for _ in range(2):
        time.sleep(1.5)
        probe.embed("still in use")
    time.sleep(1.5)  # 4.5 s after the load, 1.5 s after the last use
    assert "ttl-probe" in loaded(client)["embedding"]
    assert wait_until(lambda: "ttl-probe" not in loaded(client)["embedding"], timeout=15)


def test_jit_load_evicts_the_previous_jit_model(client: lms.Client) -> None:
    """A get-or-load (JIT) instance replaces the previous JIT one, across LLMs and embedding models; an
    instance loaded explicitly (load_new_instance) stays."""
    unload_all(client)
    client.llm.load_new_instance(BASE_MODEL, "pinned", ttl=None)
    client.llm.model(BASE_MODEL)  # "pinned" answers to the model key: nothing is loaded
    assert loaded(client) == {"llm": ["pinned"], "embedding": []}
    client.llm.model(CHAT_MODEL)
    assert loaded(client) == {"llm": ["pinned", CHAT_MODEL], "embedding": []}
    client.embedding.model(EMBEDDING_MODEL)
    assert loaded(client) == {"llm": ["pinned"], "embedding": [EMBEDDING_MODEL]}
    client.llm.model(CHAT_MODEL)
    assert loaded(client) == {"llm": ["pinned", CHAT_MODEL], "embedding": []}
    client.llm.unload("pinned")


# -- presets, images, errors -------------------------------------------------------------------------


def test_preset_applies_its_system_prompt_and_temperature(server: Server, llm: lms.LLM) -> None:
    fields = [
        {"key": "llm.prediction.systemPrompt", "value": SYSTEM_PROMPT},
        {"key": "llm.prediction.temperature", "value": 0},
    ]
    preset = {"identifier": "@local:x", "name": "X", "operation": {"fields": fields}}
    write_preset(server, "x", preset)
    result = llm.respond(FRANCE, preset="X", config={"maxTokens": 12})
    assert result.prediction_config.temperature == 0
    with_system_prompt = llm.respond(france_chat(), config=greedy(12))  # what the preset should give
    assert result.stats.prompt_tokens_count == with_system_prompt.stats.prompt_tokens_count
    assert result.content == with_system_prompt.content


def test_unknown_models_raise_model_not_found(client: lms.Client) -> None:
    with pytest.raises(lms.LMStudioModelNotFoundError):
        client.llm.model("no-such-model")
    with pytest.raises(lms.LMStudioModelNotFoundError):
        client.llm.load_new_instance("no-such-model", ttl=None)
    with pytest.raises(lms.LMStudioModelNotFoundError):
        client.llm.unload("no-such-identifier")
    with pytest.raises(lms.LMStudioModelNotFoundError):
        client.embedding.model("no-such-embedding-model")


def test_loading_a_model_of_the_other_kind_is_refused(client: lms.Client) -> None:
    with pytest.raises(lms.LMStudioServerError, match=r"embedding model; load it with client\.embedding"):
        client.llm.load_new_instance(EMBEDDING_MODEL, ttl=None)
    with pytest.raises(lms.LMStudioServerError, match=r"is an LLM; load it with client\.llm"):
        client.embedding.load_new_instance(CHAT_MODEL, ttl=None)


def test_getting_a_model_of_the_other_kind_names_the_right_sdk_namespace(client: lms.Client) -> None:
    """`client.llm.model(<embedding key>)` should point at `client.embedding`, as load_new_instance does."""
    with pytest.raises(lms.LMStudioServerError, match=r"client\.embedding") as llm_error:
        client.llm.model(EMBEDDING_MODEL)
    assert "/v1/" not in str(llm_error.value)
    with pytest.raises(lms.LMStudioServerError, match=r"client\.llm"):
        client.embedding.model(CHAT_MODEL)


def test_unknown_preset_raises_preset_not_found(llm: lms.LLM) -> None:
    with pytest.raises(lms.LMStudioPresetNotFoundError):
        llm.respond(FRANCE, preset="no-such-preset", config=greedy(2))


def test_unsupported_config_field_is_named(llm: lms.LLM) -> None:
    with pytest.raises(lms.LMStudioServerError, match="cpuThreads"):
        llm.respond(FRANCE, config={"cpuThreads": 2, "maxTokens": 2})


def test_image_on_a_non_vision_model_is_a_clear_error(client: lms.Client, llm: lms.LLM) -> None:
    png = tiny_png()
    image = client.prepare_image(png, name="dot.png")
    assert image.file_type == "image" and image.size_bytes == len(png) and image.name == "dot.png"
    chat = lms.Chat()
    chat.add_user_message("What colour is this image?", images=[image])
    with pytest.raises(lms.LMStudioServerError, match=re.compile("vision|image", re.IGNORECASE)):
        llm.respond(chat, config=greedy(2))


# -- async API ---------------------------------------------------------------------------------------


async def test_async_client(host: str) -> None:
    async with lms.AsyncClient(host) as async_client:
        model = await async_client.llm.model(CHAT_MODEL)
        result = await model.respond(france_chat(), config=greedy(12))
        check_stats(result)
        check_limit(result, 12)
        stream = await model.complete_stream("The capital of France is", config=greedy(4))
        pieces = [fragment.content async for fragment in stream]
        assert pieces and "".join(pieces) == stream.result().content
        assert CHAT_MODEL in [m.identifier for m in await async_client.llm.list_loaded()]
        both = await asyncio.gather(*(model.respond(france_chat(), config=greedy(4)) for _ in range(2)))
        assert both[0].content == both[1].content
        assert both[0].stats.predicted_tokens_count == both[1].stats.predicted_tokens_count
        check_limit(both[0], 4)
        assert await model.count_tokens("Hello world") == len(await model.tokenize("Hello world"))
        embedding = await async_client.embedding.model(EMBEDDING_MODEL)
        assert len(await embedding.embed("Hello")) == EMBEDDING_DIMS
        downloaded = await async_client.list_downloaded_models()
        assert CHAT_MODEL in {m.model_key for m in downloaded}


# -- the SDK's default port (sdk_server; last, as it holds port 41343 until the module ends) ----------


def test_api_host_discovery(host: str, sdk_server: Server) -> None:
    assert lms.Client.is_valid_api_host(host)
    assert lms.Client.is_valid_api_host(f"localhost:{SDK_PORT}")
    assert not lms.Client.is_valid_api_host(f"127.0.0.1:{free_port()}")
    assert lms.Client.find_default_local_api_host() == f"127.0.0.1:{SDK_PORT}"
    with lms.Client() as discovered:  # no host: the SDK finds openlms on its default port
        assert CHAT_MODEL in {m.model_key for m in discovered.llm.list_downloaded()}


def test_convenience_api(default_client: Server) -> None:
    model = lms.llm(CHAT_MODEL)
    assert model.identifier == CHAT_MODEL
    answer = model.respond(france_chat(), config=greedy(12))
    check_stats(answer)
    check_limit(answer, 12)
    assert answer.model_info.model_key == CHAT_MODEL
    assert lms.llm().identifier == CHAT_MODEL  # no key: any loaded LLM
    assert CHAT_MODEL in [m.identifier for m in lms.list_loaded_models("llm")]

    vector = lms.embedding_model(EMBEDDING_MODEL).embed("Hello")
    assert len(vector) == EMBEDDING_DIMS
    assert EMBEDDING_MODEL in [m.identifier for m in lms.list_loaded_models()]

    downloaded = {m.model_key: m.type for m in lms.list_downloaded_models()}
    assert downloaded.items() >= {CHAT_MODEL: "llm", BASE_MODEL: "llm", EMBEDDING_MODEL: "embedding"}.items()
    assert {m.type for m in lms.list_downloaded_models("embedding")} == {"embedding"}
