"""The lmstudio SDK's websocket protocol, frame by frame, on the real app over the fake engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketTestSession

from openlms.engine.fake import FakeBackend
from tests.support.tools import DELIVERY_TOOL
from tests.unit.server.conftest import make_app

CHAT = "tiny-chat"
EMBED = "text-embedding-tiny-embed"
AUTH = {"authVersion": 1, "clientIdentifier": "client-1", "clientPasskey": "pass-1"}
CALL = '[TOOL_REQUEST]{"name": "get_delivery_date", "arguments": {"order_id": "123"}}[END_TOOL_REQUEST]'


@pytest.fixture
def app_client(home: Path, fake: FakeBackend) -> Iterator[TestClient]:
    with TestClient(make_app(home, fake)) as client:
        yield client


class Socket:
    """One authenticated SDK socket with call and channel helpers."""

    def __init__(self, ws: WebSocketTestSession) -> None:
        self.ws = ws
        self.next_id = 1

    def call(self, endpoint: str, parameter: Any = None) -> dict[str, Any]:
        call_id, self.next_id = self.next_id, self.next_id + 1
        frame: dict[str, Any] = {"type": "rpcCall", "endpoint": endpoint, "callId": call_id}
        if parameter is not None:
            frame["parameter"] = parameter
        self.ws.send_json(frame)
        reply: dict[str, Any] = self.ws.receive_json()
        assert reply["callId"] == call_id
        return reply

    def channel(self, endpoint: str, parameter: Any, *, then: Any = None) -> list[dict[str, Any]]:
        """Open a channel and read its messages up to channelClose / channelError (that frame last)."""
        channel_id, self.next_id = self.next_id, self.next_id + 1
        self.ws.send_json(
            {
                "type": "channelCreate",
                "endpoint": endpoint,
                "channelId": channel_id,
                "creationParameter": parameter,
            }
        )
        frames: list[dict[str, Any]] = []
        while True:
            frame = self.ws.receive_json()
            assert frame["channelId"] == channel_id
            frames.append(frame)
            if then is not None and frame["type"] == "channelSend":
                self.ws.send_json({"type": "channelSend", "channelId": channel_id, "message": then})
                then = None
            if frame["type"] in ("channelClose", "channelError"):
                return frames


def connect(client: TestClient, namespace: str, auth: dict[str, Any] = AUTH) -> Iterator[Socket]:
    with client.websocket_connect(f"/{namespace}") as ws:
        ws.send_json(auth)
        assert ws.receive_json() == {"success": True}
        yield Socket(ws)


@pytest.fixture
def llm(app_client: TestClient) -> Iterator[Socket]:
    yield from connect(app_client, "llm")


def messages(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["message"] for f in frames if f["type"] == "channelSend"]


def query(identifier: str) -> dict[str, Any]:
    return {"type": "query", "query": {"identifier": identifier}}


def history(*texts: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": t}]} for t in texts]}


def layers(**fields: Any) -> dict[str, Any]:
    kv = [{"key": f"llm.prediction.{k}", "value": v} for k, v in fields.items()]
    return {"layers": [{"layerName": "apiOverride", "config": {"fields": kv}}]}


def load(sock: Socket, key: str = CHAT, **extra: Any) -> dict[str, Any]:
    frames = sock.channel("getOrLoad", {"identifier": key, "loadConfigStack": {"layers": []}, **extra})
    assert frames[-1]["type"] == "channelClose", frames
    info: dict[str, Any] = messages(frames)[-1]["info"]
    return info


def predict(
    sock: Socket, *texts: str, config: dict[str, Any] | None = None, **extra: Any
) -> list[dict[str, Any]]:
    load(sock)
    parameter = {
        "modelSpecifier": query(CHAT),
        "history": history(*texts),
        "predictionConfigStack": config or {"layers": []},
        **extra,
    }
    return sock.channel("predict", parameter)


# -- transport ----------------------------------------------------------------------------------------


def test_greeting_is_what_the_sdk_probes(app_client: TestClient) -> None:
    assert app_client.get("/lmstudio-greeting").json() == {"lmstudio": True}


def test_auth_refuses_a_second_passkey_for_one_identifier(app_client: TestClient) -> None:
    list(connect(app_client, "system"))
    with app_client.websocket_connect("/system") as ws:
        ws.send_json(AUTH | {"clientPasskey": "another"})
        reply = ws.receive_json()
    assert reply["success"] is False and "already in use" in reply["error"]["title"]


def test_auth_needs_version_1(app_client: TestClient) -> None:
    with app_client.websocket_connect("/llm") as ws:
        ws.send_json({"clientIdentifier": "x", "clientPasskey": "y"})
        reply = ws.receive_json()
    message = "Expected an authentication message with authVersion 1."
    assert reply == {"success": False, "error": {"title": message, "rootTitle": message}}


def test_unknown_endpoint_gets_only_a_warning(llm: Socket) -> None:
    llm.ws.send_json({"type": "rpcCall", "endpoint": "noSuchEndpoint", "callId": 7})
    frame = llm.ws.receive_json()
    assert frame["type"] == "communicationWarning" and "noSuchEndpoint" in frame["warning"]
    assert llm.call("listLoaded") == {"type": "rpcResult", "callId": 1, "result": []}


# -- models -------------------------------------------------------------------------------------------


def test_list_downloaded_models_has_both_kinds(app_client: TestClient) -> None:
    for system in connect(app_client, "system"):
        result = system.call("listDownloadedModels")["result"]
    by_key = {m["modelKey"]: m for m in result}
    assert by_key[CHAT]["type"] == "llm" and by_key[EMBED]["type"] == "embedding"
    assert isinstance(by_key[CHAT]["sizeBytes"], int) and by_key[CHAT]["path"].startswith("acme/")
    assert "vision" not in by_key[EMBED]


def test_get_or_load_then_already_loaded(llm: Socket) -> None:
    frames = llm.channel("getOrLoad", {"identifier": CHAT, "loadConfigStack": {"layers": []}})
    kinds = [m["type"] for m in messages(frames)]
    assert kinds[0] == "startLoading" and kinds[-1] == "loadSuccess"
    info = messages(frames)[-1]["info"]
    assert info["identifier"] == CHAT and info["instanceReference"] and info["contextLength"] > 0
    again = llm.channel("getOrLoad", {"identifier": "ACME/tiny-chat", "loadConfigStack": {"layers": []}})
    assert [m["type"] for m in messages(again)] == ["alreadyLoaded"]  # case-insensitive path prefix


def test_jit_load_reports_the_evicted_model(app_client: TestClient, llm: Socket) -> None:
    load(llm)
    for embedding in connect(app_client, "embedding"):
        frames = embedding.channel("getOrLoad", {"identifier": EMBED, "loadConfigStack": {"layers": []}})
    first = messages(frames)[0]
    assert first["type"] == "unloadingOtherJITModel" and first["info"]["modelKey"] == CHAT
    assert llm.call("listLoaded")["result"] == []


def test_load_model_progress_identifiers_and_duplicates(llm: Socket) -> None:
    def load_new(**extra: Any) -> list[dict[str, Any]]:
        return llm.channel("loadModel", {"modelKey": CHAT, "loadConfigStack": {"layers": []}, **extra})

    first = messages(load_new())
    assert first[0]["type"] == "resolved" and first[-1]["type"] == "success"
    progress = [m["progress"] for m in first if m["type"] == "progress"]
    assert progress == sorted(progress)
    assert messages(load_new())[-1]["info"]["identifier"] == f"{CHAT}:2"
    custom = load_new(identifier="mine", ttlMs=60_000)
    assert messages(custom)[-1]["info"]["identifier"] == "mine"
    duplicate = load_new(identifier="mine")[-1]
    assert duplicate["type"] == "channelError" and "already exists" in duplicate["error"]["title"]


def test_load_config_fields_round_trip(llm: Socket) -> None:
    stack = {
        "layers": [
            {
                "layerName": "apiOverride",
                "config": {
                    "fields": [
                        {"key": "llm.load.contextLength", "value": 1024},
                    ]
                },
            }
        ]
    }
    frames = llm.channel("loadModel", {"modelKey": CHAT, "loadConfigStack": stack})
    assert frames[-1]["type"] == "channelClose"
    fields = llm.call("getLoadConfig", {"specifier": query(CHAT)})["result"]["fields"]
    assert {"key": "llm.load.contextLength", "value": 1024} in fields


def test_unknown_load_field_is_named(llm: Socket) -> None:
    stack = {
        "layers": [
            {
                "layerName": "apiOverride",
                "config": {
                    "fields": [
                        {"key": "llm.load.llama.somethingNew", "value": 1},
                    ]
                },
            }
        ]
    }
    frame = llm.channel("loadModel", {"modelKey": CHAT, "loadConfigStack": stack})[-1]
    assert frame["type"] == "channelError" and "llm.load.llama.somethingNew" in frame["error"]["title"]


def test_unknown_model_is_no_model_matching_query(llm: Socket) -> None:
    load(llm)
    for reply in (
        llm.call("getModelInfo", {"specifier": query("nope"), "throwIfNotFound": True}),
        llm.call("unloadModel", {"identifier": "nope"}),
    ):
        display = reply["error"]["displayData"]
        assert reply["type"] == "rpcError" and display["code"] == "generic.noModelMatchingQuery"
        assert display["loadedModelsSample"] == [CHAT] and display["totalLoadedModels"] == 1
    frame = llm.channel("getOrLoad", {"identifier": "nope", "loadConfigStack": {"layers": []}})[-1]
    assert frame["error"]["displayData"]["code"] == "generic.noModelMatchingQuery"


def test_embedding_namespace_does_not_see_llms(app_client: TestClient, llm: Socket) -> None:
    load(llm)
    for embedding in connect(app_client, "embedding"):
        reply = embedding.call("getModelInfo", {"specifier": query(CHAT)})
    assert reply["error"]["displayData"]["code"] == "generic.noModelMatchingQuery"


def test_tokenize_and_count(llm: Socket) -> None:
    load(llm)
    tokens = llm.call("tokenize", {"specifier": query(CHAT), "inputString": "one two three"})["result"]
    count = llm.call("countTokens", {"specifier": query(CHAT), "inputString": "one two three"})["result"]
    assert len(tokens["tokens"]) == count["tokenCount"] == 3


@pytest.mark.parametrize("endpoint", ["tokenize", "countTokens"])
def test_a_lone_surrogate_to_tokenize_is_an_error_naming_it(llm: Socket, endpoint: str) -> None:
    load(llm)
    reply = llm.call(endpoint, {"specifier": query(CHAT), "inputString": "a\ud800b"})
    assert "lone UTF-16 surrogate" in reply["error"]["title"]


# -- predict ------------------------------------------------------------------------------------------


def test_predict_streams_fragments_then_success(llm: Socket) -> None:
    frames = predict(llm, "Hello", config=layers(temperature=0))
    sent = messages(frames)
    text = "".join(m["fragment"]["content"] for m in sent if m["type"] == "fragment")
    assert text == "Paris is the capital of France."
    success = sent[-1]
    assert success["type"] == "success" and frames[-1]["type"] == "channelClose"
    assert {"stats", "modelInfo", "loadModelConfig", "predictionConfig"} <= success.keys()
    assert success["stats"]["stopReason"] == "eosFound"
    assert (
        sum(m["fragment"]["tokensCount"] for m in sent if m["type"] == "fragment")
        == success["stats"]["predictedTokensCount"]
    )
    used = {f["key"]: f["value"] for f in success["predictionConfig"]["fields"]}
    assert used["llm.prediction.temperature"] == 0


def test_max_tokens_checkbox_and_stop_strings(llm: Socket) -> None:
    capped = messages(predict(llm, "Hi", config=layers(maxPredictedTokens={"checked": True, "value": 2})))
    assert capped[-1]["stats"]["stopReason"] == "maxPredictedTokensReached"
    assert capped[-1]["stats"]["predictedTokensCount"] == 2
    stopped = messages(predict(llm, "Hi", config=layers(stopStrings=["capital"])))
    assert stopped[-1]["stats"]["stopReason"] == "stopStringFound"
    tool_stop = messages(predict(llm, "Hi", config=layers(toolCallStopStrings=["capital"])))
    assert tool_stop[-1]["stats"]["stopReason"] == "toolCalls"
    text = "".join(m["fragment"]["content"] for m in tool_stop if m["type"] == "fragment")
    assert text == "Paris is the "


def test_earlier_layer_wins(llm: Socket, fake: FakeBackend) -> None:
    stack = layers(temperature=0.25)
    stack["layers"].append(
        {"layerName": "later", "config": {"fields": [{"key": "llm.prediction.temperature", "value": 1.5}]}}
    )
    predict(llm, "Hi", config=stack)
    assert fake.requests[-1].sampling.temperature == 0.25


def test_complete_mode_sends_the_raw_prompt(llm: Socket, fake: FakeBackend) -> None:
    template = {
        "type": "jinja",
        "jinjaPromptTemplate": {
            "bosToken": "",
            "eosToken": "",
            "template": "{% for message in messages %}{{ message['content'] }}{% endfor %}",
            "inputConfig": {"messagesConfig": {"contentConfig": {"type": "string"}}, "useTools": False},
        },
        "stopStrings": [],
    }
    stack = {
        "layers": [
            {
                "layerName": "completeModeFormatting",
                "config": {"fields": [{"key": "llm.prediction.promptTemplate", "value": template}]},
            }
        ]
    }
    predict(llm, "Once upon a time", config=stack)
    prompt = fake.requests[-1].prompt
    assert isinstance(prompt, tuple | str)
    assert "<|im_start|>" not in str(prompt) and "user" not in str(prompt)


def test_tool_call_events_and_stop_reason(llm: Socket, fake: FakeBackend) -> None:
    fake.reply = lambda _prompt: CALL
    tools = {"type": "toolArray", "tools": [DELIVERY_TOOL]}
    sent = messages(predict(llm, "Where is order 123?", config=layers(tools=tools)))
    kinds = [m["type"] for m in sent if m["type"] != "promptProcessingProgress"]
    assert kinds[:2] == ["toolCallGenerationStart", "toolCallGenerationNameReceived"]
    end = next(m for m in sent if m["type"] == "toolCallGenerationEnd")
    assert end["toolCallRequest"]["name"] == "get_delivery_date"
    assert end["toolCallRequest"]["arguments"] == {"order_id": "123"}
    assert "fragment" not in kinds  # the call's markup never reaches the content
    assert sent[-1]["stats"]["stopReason"] == "toolCalls"


def test_tool_results_in_history_reach_the_prompt(llm: Socket, fake: FakeBackend) -> None:
    load(llm)
    history = {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Where is order 123?"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "toolCallRequest",
                        "toolCallRequest": {
                            "type": "function",
                            "id": "call_1",
                            "name": "get_delivery_date",
                            "arguments": {"order_id": "123"},
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "content": [{"type": "toolCallResult", "content": "2024-03-15", "toolCallId": "call_1"}],
            },
        ]
    }
    parameter = {
        "modelSpecifier": query(CHAT),
        "history": history,
        "predictionConfigStack": layers(tools={"type": "toolArray", "tools": [DELIVERY_TOOL]}),
    }
    assert llm.channel("predict", parameter)[-1]["type"] == "channelClose"
    formatted = llm.call(
        "applyPromptTemplate",
        {"specifier": query(CHAT), "history": history, "predictionConfigStack": {"layers": []}, "opts": {}},
    )
    assert "2024-03-15" in formatted["result"]["formatted"]


def test_cancel_still_ends_with_success(llm: Socket, fake: FakeBackend) -> None:
    fake.token_delay = 0.05
    fake.reply = lambda _prompt: "word " * 200
    load(llm)
    parameter = {
        "modelSpecifier": query(CHAT),
        "history": history("Go"),
        "predictionConfigStack": {"layers": []},
    }
    frames = llm.channel("predict", parameter, then={"type": "cancel"})
    assert messages(frames)[-1]["stats"]["stopReason"] == "userStopped"
    assert frames[-1]["type"] == "channelClose"


def test_structured_json_schema_grammar_reaches_the_engine(llm: Socket, fake: FakeBackend) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    predict(llm, "Hi", config=layers(structured={"type": "json", "jsonSchema": schema}))
    assert fake.requests[-1].grammar and "root" in fake.requests[-1].grammar
    predict(llm, "Hi", config=layers(structured={"type": "gbnf", "gbnfGrammar": 'root ::= "yes"'}))
    assert fake.requests[-1].grammar == 'root ::= "yes"'


def test_unsupported_prediction_field_is_named(llm: Socket) -> None:
    frame = predict(llm, "Hi", config=layers(**{"llama.cpuThreads": 2}))[-1]
    assert frame["type"] == "channelError"
    assert "llm.prediction.llama.cpuThreads" in frame["error"]["title"]


def test_presets(llm: Socket, home: Path, fake: FakeBackend) -> None:
    missing = predict(llm, "Hi", fuzzyPresetIdentifier="nothing")[-1]
    assert missing["error"]["displayData"]["code"] == "generic.presetNotFound"
    folder = home / "config-presets"
    folder.mkdir()
    preset = {
        "identifier": "@local:pirate",
        "name": "Pirate",
        "operation": {
            "fields": [
                {"key": "llm.prediction.systemPrompt", "value": "Talk like a pirate."},
                {"key": "llm.prediction.temperature", "value": 0.125},
            ]
        },
    }
    (folder / "pirate.preset.json").write_text(json.dumps(preset))
    predict(llm, "Hi")
    plain = len(fake.requests[-1].prompt)
    assert predict(llm, "Hi", fuzzyPresetIdentifier="pirate")[-1]["type"] == "channelClose"
    assert len(fake.requests[-1].prompt) >= plain + 5  # the system prompt came first
    assert fake.requests[-1].sampling.temperature == 0.125
    formatted = llm.call(
        "applyPromptTemplate",
        {
            "specifier": query(CHAT),
            "history": history("Hi"),
            "predictionConfigStack": {"layers": []},
            "opts": {},
        },
    )
    assert "pirate" not in formatted["result"]["formatted"]  # the preset applies to its predictions only


def test_image_on_a_text_model_is_a_clear_error(app_client: TestClient, llm: Socket) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
    for files in connect(app_client, "files"):
        uploaded = files.call("uploadFileBase64", {"name": "dot.png", "contentBase64": png})["result"]
    assert uploaded["fileType"] == "image" and uploaded["sizeBytes"] == 70
    load(llm)
    part = {
        "type": "file",
        "name": "dot.png",
        "identifier": uploaded["identifier"],
        "sizeBytes": 70,
        "fileType": "image",
    }
    parameter = {
        "modelSpecifier": query(CHAT),
        "predictionConfigStack": {"layers": []},
        "history": {"messages": [{"role": "user", "content": [{"type": "text", "text": "What?"}, part]}]},
    }
    frame = llm.channel("predict", parameter)[-1]
    assert frame["type"] == "channelError" and "no vision support" in frame["error"]["title"]


def test_text_files_are_read_into_the_prompt_and_skipped_by_templates(
    app_client: TestClient, llm: Socket, fake: FakeBackend
) -> None:
    import base64

    content = base64.b64encode(b"alpha beta gamma delta epsilon zeta eta theta").decode()
    for files in connect(app_client, "files"):
        uploaded = files.call("uploadFileBase64", {"name": "notes.txt", "contentBase64": content})["result"]
    assert uploaded["fileType"] == "text/plain"
    part = {
        "type": "file",
        "name": "notes.txt",
        "identifier": uploaded["identifier"],
        "sizeBytes": 46,
        "fileType": "text/plain",
    }
    with_file = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Summarise"}, part]}]}
    predict(llm, "Summarise")
    plain = len(fake.requests[-1].prompt)
    parameter = {"modelSpecifier": query(CHAT), "predictionConfigStack": {"layers": []}, "history": with_file}
    assert llm.channel("predict", parameter)[-1]["type"] == "channelClose"
    assert len(fake.requests[-1].prompt) >= plain + 8  # the file's words reached the model
    unknown = dict(part, identifier="never-uploaded")
    parameter["history"] = {"messages": [{"role": "user", "content": [unknown]}]}
    frame = llm.channel("predict", parameter)[-1]
    assert frame["type"] == "channelError" and "prepare_file" in frame["error"]["title"]
    templated = llm.call(
        "applyPromptTemplate",
        {
            "specifier": query(CHAT),
            "history": parameter["history"],
            "predictionConfigStack": {"layers": []},
            "opts": {},
        },
    )
    assert templated["type"] == "rpcResult" and templated["result"]["formatted"]


def test_reasoning_fragments_are_typed(llm: Socket, fake: FakeBackend) -> None:
    fake.reply = lambda _prompt: "<think>Let me think.</think>The answer."
    sent = messages(predict(llm, "Question?"))
    typed = [
        (m["fragment"]["reasoningType"], m["fragment"]["content"]) for m in sent if m["type"] == "fragment"
    ]
    kinds = [kind for kind, _ in typed]
    assert kinds[0] == "reasoningStartTag" and "reasoningEndTag" in kinds and kinds[-1] == "none"
    assert "".join(text for kind, text in typed if kind == "reasoning").strip() == "Let me think."
    assert "".join(text for kind, text in typed if kind == "none").strip() == "The answer."
    off = layers(
        **{"reasoning.parsing": {"enabled": False, "startString": "<think>", "endString": "</think>"}}
    )
    plain = [
        m["fragment"] for m in messages(predict(llm, "Question?", config=off)) if m["type"] == "fragment"
    ]
    assert {f["reasoningType"] for f in plain} == {"none"}
    assert "".join(f["content"] for f in plain).startswith("<think>")


def test_a_frame_nested_too_deeply_is_a_warning_and_the_socket_keeps_serving(llm: Socket) -> None:
    llm.ws.send_text("[" * 100_000 + "]" * 100_000)  # json.loads would raise RecursionError
    warning = llm.ws.receive_json()
    assert warning["type"] == "communicationWarning" and "max_json_depth" in warning["warning"]
    assert "result" in llm.call("listLoaded")
