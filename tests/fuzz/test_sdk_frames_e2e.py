"""Malformed SDK frames against the real server (uvicorn, real models), then the real `lmstudio` SDK.

`test_sdk_frames.py` explores frames with hypothesis over the fake engine; these few cases check the same
promises where the sockets are real: every frame the server sends carries its id (or is a warning), a
socket that got garbage still answers, and the SDK's own client still predicts afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lmstudio as lms
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fuzz.test_sdk_frames import check_frame
from tests.support.sdk import greedy, host_of
from tests.support.server import CHAT_MODEL, Server, default_models_dir, free_port, start_server

pytestmark = pytest.mark.e2e

AUTH = {"authVersion": 1, "clientIdentifier": "fuzz-e2e", "clientPasskey": "fuzz-e2e-pass"}
BIG = 2**80
GARBAGE: list[Any] = [
    "not json at all",
    "[" * 10_000 + "]" * 10_000,
    {"type": "rpcCall", "endpoint": "noSuchEndpoint", "callId": 1},
    {"type": "rpcCall", "endpoint": "getModelInfo", "callId": BIG, "parameter": "a string"},
    {
        "type": "rpcCall",
        "endpoint": "tokenize",
        "callId": 3,
        "parameter": {"specifier": 7, "inputString": []},
    },
    {"type": "rpcCall", "endpoint": "listLoaded", "callId": "four"},
    {"type": "channelCreate", "endpoint": "predict", "channelId": 5, "creationParameter": {"history": 1}},
    {"type": "channelCreate", "endpoint": "getOrLoad", "channelId": 6, "creationParameter": None},
    {"type": "channelCreate", "endpoint": "noSuchChannel", "channelId": 7},
    {"type": "channelSend", "channelId": 12345, "message": {"type": "cancel"}},
    {"type": "channelClose", "channelId": -1},
    {"type": None},
    [1, 2, 3],
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("sdkfuzz"), default_models_dir(), free_port())
    try:
        srv.lms("load", CHAT_MODEL, "--yes")
        yield srv
    finally:
        srv.lms("server", "stop", check=False)


@contextmanager
def open_socket(server: Server, namespace: str) -> Iterator[ClientConnection]:
    with connect(f"ws://{host_of(server)}/{namespace}", open_timeout=30, max_size=None) as ws:
        ws.send(json.dumps(AUTH))
        assert json.loads(ws.recv(timeout=30)) == {"success": True}
        yield ws


def drain_until_ack(ws: ClientConnection) -> list[dict[str, Any]]:
    ws.send(json.dumps({"type": "keepAlive"}))
    seen = []
    while True:
        frame = check_frame(str(ws.recv(timeout=60)))
        seen.append(frame)
        if frame["type"] == "keepAliveAck":
            return seen


@pytest.mark.parametrize("namespace", ["llm", "embedding", "system", "files"])
def test_garbage_frames_on_the_real_server(server: Server, namespace: str) -> None:
    with open_socket(server, namespace) as ws:
        for frame in GARBAGE:
            ws.send(frame if isinstance(frame, str) else json.dumps(frame))
        frames = drain_until_ack(ws)
    assert any(f["type"] == "communicationWarning" for f in frames)  # the unknown endpoint, at least


def test_the_sdk_still_works_after_garbage_and_binary_frames(server: Server) -> None:
    """Whatever one socket got (binary frames drop that socket: a known bug), the others keep working."""
    with open_socket(server, "llm") as ws:
        try:
            ws.send(b"\x00\xff binary frame")
            ws.send(json.dumps({"type": "keepAlive"}))
            ws.recv(timeout=10)
        except (ConnectionClosed, TimeoutError):
            pass
    with lms.Client(host_of(server)) as client:
        result = client.llm.model(CHAT_MODEL).respond("Hi", config=greedy(4))
    assert result.stats.predicted_tokens_count > 0
