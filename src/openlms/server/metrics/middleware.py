"""A pure ASGI middleware counting HTTP requests by API and status (once per response, at its start:
nothing per streamed chunk) and the SDK websockets' calls (one cheap prefix match per received frame)."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openlms.server.metrics.registry import Metrics

# The lmstudio SDK writes `type` first in every frame it sends.
_SDK_CALL = re.compile(r'\{\s*"type"\s*:\s*"(rpcCall|channelCreate)"')
_SDK_KINDS = {"rpcCall": "rpc", "channelCreate": "channel"}
_PREFIXES = (("/v1/", "openai"), ("/api/v0/", "rest_v0"), ("/api/v1/", "rest_v1"))


def api_of(path: str) -> str:
    """The API a request path belongs to (a bounded label set)."""
    for prefix, api in _PREFIXES:
        if path.startswith(prefix):
            return api
    return "other"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.app(scope, self._counting_receive(receive), send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        counter = self.metrics.requests
        api = api_of(scope["path"])
        started = False

        async def counted_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                counter.labels(api, str(message["status"])).inc()
            await send(message)

        try:
            await self.app(scope, receive, counted_send)
        except BaseException:
            if not started:  # the server answers 500 for it
                counter.labels(api, "500").inc()
            raise

    def _counting_receive(self, receive: Receive) -> Receive:
        calls = self.metrics.sdk_calls

        async def counted_receive() -> Message:
            message = await receive()
            text = message.get("text")
            if text is not None:
                match = _SDK_CALL.match(text, 0, 64)
                if match is not None:
                    calls.labels(_SDK_KINDS[match.group(1)]).inc()
            return message

        return counted_receive
