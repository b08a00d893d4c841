"""Property tests of the SDK websocket framing (server/sdk/transport.py) on the real app over the fake engine.

Whatever a client sends, before or after the handshake (random JSON, protocol frames with wrong types,
huge ids, unknown endpoints, messages for unknown channels, binary frames, deep nesting), the server:
answers every frame it sends with a `callId` or a `channelId` (or a `communicationWarning`: the only other
frame the SDK accepts), keeps the socket answering a `keepAlive`, and keeps serving other sockets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.server.app import create_app
from tests.support.tiny_gguf import write_tiny_bert_gguf, write_tiny_llama_gguf

NAMESPACES = ("llm", "embedding", "system", "files", "repository")
ENDPOINTS = (
    "listLoaded", "getModelInfo", "getLoadConfig", "unloadModel", "tokenize", "countTokens",
    "applyPromptTemplate", "preloadDraftModel", "loadModel", "getOrLoad", "predict", "embedString",
    "listDownloadedModels", "version", "notify", "uploadFileBase64", "searchModels", "noSuchEndpoint",
)  # fmt: skip
WS = "ws://127.0.0.1:1234"  # a Host the guard allows
AUTH = {"authVersion": 1, "clientIdentifier": "fuzz-client", "clientPasskey": "fuzz-pass"}
ID_FRAMES = {"rpcResult": "callId", "rpcError": "callId"} | dict.fromkeys(
    ("channelSend", "channelClose", "channelError", "channelAck"), "channelId"
)
# Fixed examples in CI (a new finding must not fail someone else's submission); new ones elsewhere.
FUZZ = settings(
    derandomize=bool(os.environ.get("CI")),
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Values of every JSON type, nested a little; ids from tiny to far beyond 64 bits.
scalars = st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20)
ids = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([0, 1, 2, 2**31, 2**53, 2**63])
json_values = st.recursive(
    scalars | ids,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
model_specs = st.sampled_from(
    [
        {"type": "query", "query": {"identifier": "tiny-chat"}},
        {"type": "instanceReference", "instanceReference": 7},
    ]
)


def _frame(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "type": st.just(kind) | json_values,
        "endpoint": st.sampled_from(ENDPOINTS) | json_values,
        "callId": ids | json_values,
        "channelId": ids | json_values,
        "parameter": json_values | model_specs,
        "creationParameter": json_values | st.fixed_dictionaries({"modelSpecifier": model_specs}),
        "message": json_values | st.just({"type": "cancel"}),
    }
    return st.fixed_dictionaries({"type": fields.pop("type")}, optional=fields)


def _hashable_channel_id(frame: dict[str, Any]) -> bool:
    """Known bug (reported): a channelSend/channelClose whose channelId is a list or an object kills the
    socket (TypeError in `Connection.dispatch`); `test_unhashable_channel_id` keeps it in view."""
    return frame.get("type") not in ("channelSend", "channelClose") or not isinstance(
        frame.get("channelId"), list | dict
    )


protocol_frames = st.sampled_from(
    [
        "rpcCall",
        "channelCreate",
        "channelSend",
        "channelClose",
        "keepAlive",
        "keepAliveAck",
        "communicationWarning",
    ]
).flatmap(lambda kind: _frame(kind).filter(_hashable_channel_id))
text_frames = (
    protocol_frames.map(json.dumps)
    | json_values.map(json.dumps)
    | st.text(max_size=40)
    | st.integers(min_value=1, max_value=50_000).map(lambda depth: "[" * depth + "]" * depth)
)
# Binary frames are left to `test_binary_frames` (a known bug, reported: `receive_text` raises KeyError).
frames = text_frames


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("home")
    for folder, write in (
        ("acme/tiny-chat-GGUF", write_tiny_llama_gguf),
        ("acme/tiny-embed-GGUF", write_tiny_bert_gguf),
    ):
        (home / "models" / folder).mkdir(parents=True)
        write(home / "models" / folder / f"{folder.split('/')[1][:-5]}-F32.gguf")
    app = create_app(Settings(home=home), backend=FakeBackend(reply=lambda prompt: "fuzzed reply"))
    with TestClient(app, base_url="http://127.0.0.1:1234") as test_client:
        yield test_client


def send(ws: WebSocketTestSession, frame: str | bytes) -> None:
    if isinstance(frame, bytes):
        ws.send_bytes(frame)
    else:
        ws.send_text(frame)


def check_frame(text: str) -> dict[str, Any]:
    """A frame the SDK accepts: an object with its id (or a warning); fails the test otherwise."""
    frame = json.loads(text)
    assert isinstance(frame, dict), text
    kind = frame.get("type")
    if kind in ID_FRAMES:
        assert isinstance(frame.get(ID_FRAMES[kind]), int), text
    else:
        assert kind in ("communicationWarning", "keepAliveAck"), text
    return frame


def drain_until_ack(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    """Ask for a keepAliveAck and read (checking each frame) until it comes: the socket still serves."""
    ws.send_text(json.dumps({"type": "keepAlive"}))
    seen: list[dict[str, Any]] = []
    while True:
        frame = check_frame(ws.receive_text())
        seen.append(frame)
        if frame["type"] == "keepAliveAck":
            return seen


def version_works(client: TestClient) -> None:
    """Another socket is served normally."""
    with client.websocket_connect(f"{WS}/system") as ws:
        ws.send_text(json.dumps(AUTH))
        assert json.loads(ws.receive_text()) == {"success": True}
        ws.send_text(json.dumps({"type": "rpcCall", "endpoint": "version", "callId": 1}))
        assert json.loads(ws.receive_text())["result"]["version"]


@FUZZ
@given(namespace=st.sampled_from(NAMESPACES), sent=st.lists(frames, min_size=1, max_size=6))
def test_frames_after_the_handshake(client: TestClient, namespace: str, sent: list[str | bytes]) -> None:
    with client.websocket_connect(f"{WS}/{namespace}") as ws:
        ws.send_text(json.dumps(AUTH))
        assert json.loads(ws.receive_text()) == {"success": True}
        for frame in sent:
            send(ws, frame)
        drain_until_ack(ws)
    version_works(client)


first_frames = st.one_of(
    frames,
    st.fixed_dictionaries(
        {"authVersion": st.just(1) | json_values},
        optional={"clientIdentifier": json_values | st.text(max_size=300), "clientPasskey": json_values},
    ).map(json.dumps),
)


@FUZZ
@given(namespace=st.sampled_from(NAMESPACES), first=first_frames)
def test_frames_before_the_handshake(client: TestClient, namespace: str, first: str | bytes) -> None:
    """A bad handshake is refused with one `{"success": false, "error"}` frame and the socket closed."""
    with client.websocket_connect(f"{WS}/{namespace}") as ws:
        send(ws, first)
        try:
            reply = json.loads(ws.receive_text())
        except WebSocketDisconnect as closed:
            assert closed.code == 1008
        else:
            if reply.get("success") is True:  # a well-formed handshake (a made-up client is allowed)
                drain_until_ack(ws)
            else:
                assert reply["success"] is False
                error = reply["error"]  # the SDK's error object (older servers: a string)
                assert isinstance(error, str) or isinstance(error.get("title"), str), reply
                with pytest.raises(WebSocketDisconnect) as closed_after:
                    ws.receive_text()
                assert closed_after.value.code == 1008
    version_works(client)


@pytest.mark.parametrize("authenticated", [False, True])
def test_binary_frames(client: TestClient, authenticated: bool) -> None:
    """A binary frame is not the protocol: refused like bad JSON (a warning, or a refused handshake)."""
    with client.websocket_connect(f"{WS}/llm") as ws:
        if authenticated:
            ws.send_text(json.dumps(AUTH))
            assert json.loads(ws.receive_text()) == {"success": True}
            ws.send_bytes(b"\x00\xff binary")
            drain_until_ack(ws)
        else:
            ws.send_bytes(json.dumps(AUTH).encode())
            assert json.loads(ws.receive_text())["success"] is False
    version_works(client)


@pytest.mark.parametrize("kind", ["channelSend", "channelClose"])
def test_unhashable_channel_id(client: TestClient, kind: str) -> None:
    with client.websocket_connect(f"{WS}/llm") as ws:
        ws.send_text(json.dumps(AUTH))
        assert json.loads(ws.receive_text()) == {"success": True}
        ws.send_text(json.dumps({"type": kind, "channelId": [1], "message": {"type": "cancel"}}))
        drain_until_ack(ws)
    version_works(client)


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_frames(client: TestClient, depth: int) -> None:
    """Nesting deep enough to overflow a recursive parser is refused with a warning, not a dropped socket."""
    with client.websocket_connect(f"{WS}/llm") as ws:
        ws.send_text(json.dumps(AUTH))
        assert json.loads(ws.receive_text()) == {"success": True}
        ws.send_text(
            '{"type": "rpcCall", "callId": 1, "endpoint": "listLoaded", "parameter": '
            + "[" * depth
            + "]" * depth
            + "}"
        )
        frames = drain_until_ack(ws)
        assert all(
            f["type"] in ("communicationWarning", "keepAliveAck", "rpcResult", "rpcError") for f in frames
        )
    version_works(client)
