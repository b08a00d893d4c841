"""A fake server side for `lms get`: a real websocket server (free port, thread) speaking the SDK's
`repository` namespace, plus the plain HTTP `GET /api/v1/models` and `/lmstudio-greeting`.

Scripted per test: search results per term, download options per identifier, and per download
identifier the channel messages to send (or an error, or "hang": send a little progress, then wait for
the client to go away, as a paused download does). Every frame it receives is logged in `calls`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

HANG = "hang"


def option(
    repo: str, quant: str, size: int, *, fit: str = "fitWithoutGPU", rec: bool = False
) -> dict[str, Any]:
    name = f"{repo.split('/')[-1].removesuffix('-GGUF')}-{quant}.gguf"
    result: dict[str, Any] = {
        "name": name,
        "sizeBytes": size,
        "fitEstimation": fit,
        "downloadIdentifier": f"{repo}/{name}",
        "indexedModelIdentifier": f"{repo}/{name}",
        "quantization": quant,
    }
    if rec:
        result["recommended"] = True
    return result


def model(key: str, path: str) -> dict[str, Any]:
    return {"type": "llm", "key": key, "path": path, "size_bytes": 1000, "loaded_instances": []}


def completed(key: str, total: int = 1000) -> list[dict[str, Any]]:
    half = {"downloadedBytes": total // 2, "totalBytes": total, "speedBytesPerSecond": 500.0}
    full = {"downloadedBytes": total, "totalBytes": total, "speedBytesPerSecond": 500.0}
    return [
        {"type": "downloadProgress", "update": half},
        {"type": "downloadProgress", "update": full},
        {"type": "startFinalizing"},
        {"type": "success", "defaultIdentifier": key},
    ]


@dataclass
class FakeRepository:
    search: dict[str | None, list[dict[str, Any]]] = field(default_factory=dict)
    options: dict[str, list[dict[str, Any]] | dict[str, Any]] = field(default_factory=dict)  # dict: an error
    downloads: dict[str, Any] = field(default_factory=dict)  # messages, {"error": ...} or HANG
    models: list[dict[str, Any]] = field(default_factory=list)
    after_download: list[dict[str, Any]] = field(default_factory=list)  # models once a download succeeded
    calls: list[tuple[str, Any]] = field(default_factory=list)
    closed_mid_download: threading.Event = field(default_factory=threading.Event)
    on_hang: Callable[[], None] | None = None  # called once the hanging download sent its progress
    url: str = ""

    def endpoints(self) -> list[str]:
        return [name for name, _ in self.calls]

    # -- HTTP ----------------------------------------------------------------------------------------

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        bodies = {"/lmstudio-greeting": {"lmstudio": True}, "/api/v1/models": {"models": self.models}}
        body = bodies.get(request.path.split("?")[0])
        status = HTTPStatus.OK if body is not None else HTTPStatus.NOT_FOUND
        response = connection.respond(status, json.dumps(body or {"error": {"message": "not found"}}))
        response.headers["Content-Type"] = "application/json"
        return response

    # -- websocket -----------------------------------------------------------------------------------

    def handle(self, ws: ServerConnection) -> None:
        auth = json.loads(ws.recv())
        if auth.get("authVersion") != 1:
            ws.send(json.dumps({"success": False, "error": {"title": "bad auth"}}))
            return
        ws.send(json.dumps({"success": True}))
        try:
            for text in ws:
                self.dispatch(ws, json.loads(text))
        except ConnectionClosed:
            pass

    def dispatch(self, ws: ServerConnection, frame: dict[str, Any]) -> None:
        if frame["type"] == "rpcCall":
            self.calls.append((frame["endpoint"], frame.get("parameter")))
            result = self.rpc(frame["endpoint"], frame.get("parameter"))
            reply = {"type": "rpcResult", "callId": frame["callId"], "result": result}
            if isinstance(result, dict) and "error" in result:
                reply = {"type": "rpcError", "callId": frame["callId"], "error": result["error"]}
            ws.send(json.dumps(reply))
        elif frame["type"] == "channelCreate":
            self.calls.append((frame["endpoint"], frame.get("creationParameter")))
            self.channel(ws, frame["channelId"], frame["creationParameter"]["downloadIdentifier"])

    def rpc(self, endpoint: str, parameter: Any) -> Any:
        if endpoint == "searchModels":
            return {"results": self.search.get(parameter["opts"].get("searchTerm"), [])}
        if endpoint == "getModelDownloadOptions":
            found = self.options.get(parameter["modelSearchResultIdentifier"]["identifier"])
            if isinstance(found, dict):
                return found
            return {"results": found or []}
        return {"error": {"title": f"unknown endpoint {endpoint}"}}

    def channel(self, ws: ServerConnection, channel_id: int, identifier: str) -> None:
        script = self.downloads.get(identifier, {"error": {"title": f"No such download {identifier}"}})
        if script == HANG:
            self._hang(ws, channel_id)
            return
        if isinstance(script, dict):
            ws.send(json.dumps({"type": "channelError", "channelId": channel_id, "error": script["error"]}))
            return
        for message in script:
            ws.send(json.dumps({"type": "channelSend", "channelId": channel_id, "message": message}))
        self.models = self.models + self.after_download
        ws.send(json.dumps({"type": "channelClose", "channelId": channel_id}))

    def _hang(self, ws: ServerConnection, channel_id: int) -> None:
        update = {"downloadedBytes": 100, "totalBytes": 1000, "speedBytesPerSecond": 100.0}
        message = {"type": "downloadProgress", "update": update}
        ws.send(json.dumps({"type": "channelSend", "channelId": channel_id, "message": message}))
        if self.on_hang is not None:
            self.on_hang()
        try:
            ws.recv(timeout=30)
        except ConnectionClosed:
            self.closed_mid_download.set()
        except TimeoutError:
            pass


@contextmanager
def running(repo: FakeRepository) -> Iterator[FakeRepository]:
    with serve(repo.handle, "127.0.0.1", 0, process_request=repo.process_request, compression=None) as server:
        port = server.socket.getsockname()[1]
        repo.url = f"127.0.0.1:{port}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield repo
        finally:
            server.shutdown()
            thread.join(timeout=5)
