"""Request limits as one pure ASGI middleware: body size (413), JSON nesting depth (400), concurrent
websocket connections (429).

An HTTP request body is read here, counted as it streams in (with or without Content-Length), and handed
to the route afterwards; routes parse JSON bodies whole anyway, so this costs one join of the chunks. A
declared Content-Length over the limit is refused before any byte is read. A JSON body (one that starts
with `{` or `[`) deeper than `max_json_depth` is refused before FastAPI parses it: `json_too_deep` is
linear, and a body with fewer brackets than the limit is passed after two `bytes.count`s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import anyio
import numpy as np
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openlms.core.settings import Settings
from openlms.server.guard.responses import body_of, refuse, send_http_error

JSON_START = re.compile(rb"\s*[\[{]")
NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
CURLY_TO_SQUARE = bytes.maketrans(b"{}", b"[]")
SCAN_CHUNK = 1 << 20
THREAD_ABOVE = 1 << 20  # bodies larger than this are scanned off the event loop
BODY_STALL_S = 30.0  # longest wait for the next piece of a request body (a slow-loris body gets 408)


def json_too_deep(body: bytes, max_depth: int) -> bool:
    """Whether the JSON text `body` nests arrays/objects deeper than `max_depth` (brackets inside
    strings do not count). Unbalanced text counts by its open brackets; the parser refuses it anyway."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    if b'"' in body:
        # With escaped backslashes and quotes gone, every quote opens or closes a string.
        unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
        body = b"".join(unescaped.split(b'"')[::2])
    brackets = np.frombuffer(body.translate(CURLY_TO_SQUARE, NOT_BRACKETS), dtype=np.uint8)
    level = 0
    for start in range(0, len(brackets), SCAN_CHUNK):
        steps = (brackets[start : start + SCAN_CHUNK] == ord("[")).astype(np.int64) * 2 - 1
        levels = np.cumsum(steps) + level
        if int(levels.max()) > max_depth:
            return True
        level = int(levels[-1])
    return False


@dataclass(frozen=True)
class Limits:
    max_body: int
    max_depth: int
    max_ws: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.max_request_bytes, settings.max_json_depth, settings.max_ws_clients)


class TooLarge(Exception):
    pass


class RequestLimits:
    """Body size, JSON depth and websocket count limits; its only state is the open websocket count."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.open_websockets = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.websocket(scope, receive, send)
        elif scope["type"] == "http" and has_body(scope):
            await self.http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.open_websockets >= self.limits.max_ws:
            message = f"Too many websocket connections (at most {self.limits.max_ws}); try again later."
            await refuse(scope, receive, send, 429, body_of(message, "rate_limit_error", "too_many_clients"))
            return
        self.open_websockets += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open_websockets -= 1

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = content_length(scope)
        try:
            if declared is not None and declared > self.limits.max_body:
                raise TooLarge
            messages = await read_body(receive, self.limits.max_body)
        except TooLarge:
            await send_http_error(send, 413, self.too_large())
            return
        except TimeoutError:
            message = f"The request body stalled for {BODY_STALL_S:g} seconds."
            await send_http_error(send, 408, body_of(message, "invalid_request_error", "request_timeout"))
            return
        if messages is None:  # the client went away while sending
            return
        body = b"".join(m.get("body", b"") for m in messages)
        if JSON_START.match(body) and await self.too_deep(body):
            message = f"The JSON body is nested too deeply (at most {self.limits.max_depth} levels)."
            await send_http_error(send, 400, body_of(message, "invalid_request_error", "json_too_deep"))
            return
        await self.app(scope, replay({"type": "http.request", "body": body}, receive), send)

    async def too_deep(self, body: bytes) -> bool:
        if len(body) <= THREAD_ABOVE:
            return json_too_deep(body, self.limits.max_depth)
        return await anyio.to_thread.run_sync(json_too_deep, body, self.limits.max_depth)

    def too_large(self) -> bytes:
        message = f"The request body is larger than {self.limits.max_body} bytes (max_request_bytes)."
        return body_of(message, "invalid_request_error", "request_too_large")


def has_body(scope: Scope) -> bool:
    return any(key in (b"content-length", b"transfer-encoding") for key, _ in scope["headers"])


def content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_body(receive: Receive, limit: int) -> list[Message] | None:
    """The request's body messages, counting bytes; `TooLarge` past `limit`, `TimeoutError` when the
    client stalls for `BODY_STALL_S`, None on a disconnect."""
    messages: list[Message] = []
    size = 0
    while True:
        with anyio.fail_after(BODY_STALL_S):
            message = await receive()
        if message["type"] != "http.request":
            return None
        size += len(message.get("body", b""))
        if size > limit:
            raise TooLarge
        messages.append(message)
        if not message.get("more_body", False):
            return messages


def replay(first: Message, receive: Receive) -> Receive:
    """A receive that gives `first` once, then what the client sends (a disconnect, while streaming)."""
    pending = [first]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(RequestLimits, limits=Limits.from_settings(settings))
