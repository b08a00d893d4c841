"""Refusals sent straight from an ASGI middleware, before any route runs, in each API's error format.

HTTP gets an OpenAI error object (`server.errors.error_body`). A websocket handshake is refused with an
HTTP response (the ASGI "websocket.http.response" extension, which uvicorn implements), so a client sees
the status (403, 429) and the same JSON body; a server without the extension closes the handshake.
"""

from __future__ import annotations

import json

from starlette.types import Receive, Scope, Send

from openlms.server.errors import error_body

WS_POLICY_VIOLATION = 1008  # the close code for a handshake refused without the response extension


def body_of(message: str, type_: str, code: str) -> bytes:
    return json.dumps(error_body(message, type_, code=code)).encode()


def _json_headers(payload: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]


async def send_http_error(
    send: Send, status: int, payload: bytes, extra_headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    headers = [*_json_headers(payload), *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def refuse_websocket(scope: Scope, receive: Receive, send: Send, status: int, payload: bytes) -> None:
    """Refuse a websocket handshake: an HTTP `status` with `payload`, or a 1008 close."""
    await receive()  # "websocket.connect"
    if "websocket.http.response" in (scope.get("extensions") or {}):
        headers = _json_headers(payload)
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": payload})
    else:
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, payload: bytes) -> None:
    """An HTTP error response or a refused websocket handshake, whichever `scope` is."""
    if scope["type"] == "websocket":
        await refuse_websocket(scope, receive, send, status, payload)
    else:
        await send_http_error(send, status, payload)
