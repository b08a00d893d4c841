"""Every error answer on `/v1/messages*` in Anthropic's shape, whoever produced it.

The guard's refusals (401 token, 403 Host/Origin, 413 body size, 408, 400 JSON depth) and FastAPI's own
(404 unknown route, 405 method) are written in OpenAI's shape before any route runs. This pure ASGI
middleware, the app's outermost, rewrites such an answer on the Anthropic paths into
`{"type": "error", "error": {"type", "message"}}`, which the `anthropic` package reads, keeping the status
and the headers (`WWW-Authenticate`, `Retry-After`, CORS). Other paths pass untouched.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openlms.server.anthropic.convert import error_body

PREFIX = "/v1/messages"
MAX_ERROR_BODY = 1 << 20  # error answers are small; a larger one passes as it is


def is_anthropic_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def anthropic_error(status: int, payload: bytes) -> bytes | None:
    """`payload` (an OpenAI error object) as Anthropic's error; None when it is something else."""
    try:
        body: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or body.get("type") == "error":
        return None
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str):
        return None
    return json.dumps(error_body(status, message)).encode()


def _is_json_error(message: Message) -> bool:
    if int(message["status"]) < 400:
        return False
    headers = dict(message.get("headers") or ())
    return bytes(headers.get(b"content-type", b"")).startswith(b"application/json")


class AnthropicErrors:
    """Rewrites JSON error answers on `/v1/messages*` into Anthropic's error shape."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_anthropic_path(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _Reshaper(send).send)


class _Reshaper:
    """Holds an error answer's start until its body is whole, then sends both, reshaped."""

    def __init__(self, send: Send) -> None:
        self.downstream = send
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and _is_json_error(message):
            self.start = message
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.downstream(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body") and sum(map(len, self.chunks)) <= MAX_ERROR_BODY:
            return
        await self._flush(message.get("more_body", False))

    async def _flush(self, more: bool) -> None:
        assert self.start is not None
        payload = b"".join(self.chunks)
        reshaped = None if more else anthropic_error(self.start["status"], payload)
        start, self.start, self.chunks = self.start, None, []
        if reshaped is not None:
            headers = [(k, v) for k, v in start.get("headers") or () if k.lower() != b"content-length"]
            start = {**start, "headers": [*headers, (b"content-length", str(len(reshaped)).encode())]}
            payload = reshaped
        await self.downstream(start)
        await self.downstream({"type": "http.response.body", "body": payload, "more_body": more})
