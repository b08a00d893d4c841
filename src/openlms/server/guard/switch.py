"""The API switch (`api_enabled`: the app's Developer page, `lms server start`) as one pure ASGI middleware.

LM Studio's "server on/off" stops serving the API to other programs while the app keeps working. openlms
keeps its port open (the app is served from it) and, while the switch is off, refuses the API to other
programs: HTTP requests to `/v1/*` and `/api/*` get a 503 in the API's error shape (OpenAI's here, reshaped
into Anthropic's on `/v1/messages` by the outermost `AnthropicErrors`), and the SDK's websockets get their
handshake's refusal (`{"success": false, "error": ...}`, which the `lmstudio` SDK reports as an
authentication failure carrying the message). The app's own endpoints (`/api/v1/app/*`: conversations,
the server's settings, i.e. the way back on), `GET /lmstudio-greeting`, the app's files and `/metrics`
are not the API and stay served.

Who counts as "the app or `lms`" (never refused): a browser request that says `Sec-Fetch-Site:
same-origin` (the page served at `/`; browsers set that header and scripts in a page cannot), or a request
carrying `X-OpenLMS-Client: app` (the app's `apiFetch`, for browsers that send no fetch metadata over plain
HTTP to another machine) or `X-OpenLMS-Client: lms` (the `lms` CLI). This is a convenience switch, not a
security boundary: any program can send those headers. The Host/Origin checks and API tokens before this
middleware (docs/security.md, docs/auth.md) stay the security.

The switch is read from the live `Settings` object on every request, so a change applies at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from openlms.core.errors import ApiSwitchedOffError
from openlms.core.settings import Settings
from openlms.server.errors import domain_error_body, sdk_error
from openlms.server.guard.responses import WS_POLICY_VIOLATION, send_http_error

SWITCHED_OFF = (
    "The openlms server is switched off (Developer page of the app, or `lms server start`); "
    "switch it on to use the API."
)
CLIENT_HEADER = b"x-openlms-client"
OWN_CLIENTS = frozenset({"app", "lms"})
API_PREFIXES = ("/v1/", "/api/")
APP_PREFIX = "/api/v1/app/"
HANDSHAKE_TIMEOUT_S = 10.0


def is_api(scope: Scope) -> bool:
    """Whether the request is for the API the switch turns off: every websocket (the SDK's namespaces),
    `/v1/*` and `/api/*` except the app's own `/api/v1/app/*`."""
    if scope["type"] == "websocket":
        return True
    path = str(scope.get("path", ""))
    return path.startswith(API_PREFIXES) and not path.startswith(APP_PREFIX)


def is_own_client(scope: Scope) -> bool:
    """Whether the request comes from the app (same-origin browser request) or says it is the app or `lms`."""
    for name, value in scope.get("headers") or ():
        if name == b"sec-fetch-site" and value.strip().lower() == b"same-origin":
            return True
        if name == CLIENT_HEADER and value.decode("latin-1").strip().lower() in OWN_CLIENTS:
            return True
    return False


class ApiSwitch:
    """Refuses the API to other programs while `settings.api_enabled` is off."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] in ("http", "websocket")
            and not self.settings.api_enabled
            and is_api(scope)
            and not is_own_client(scope)
        ):
            if scope["type"] == "websocket":
                await refuse_sdk_handshake(receive, send)
            else:
                await refuse_http(send)
            return
        await self.app(scope, receive, send)


async def refuse_http(send: Send) -> None:
    """The 503, with `x-should-retry: false`: the openai and anthropic clients would otherwise retry a 503
    (twice, with backoff) before reporting it; retrying cannot help until someone switches the API on."""
    status, body = domain_error_body(ApiSwitchedOffError(SWITCHED_OFF))
    await send_http_error(send, status, json.dumps(body).encode(), ((b"x-should-retry", b"false"),))


async def refuse_sdk_handshake(receive: Receive, send: Send) -> None:
    """Accept, wait for the SDK's authentication frame, answer it with the refusal, close (1008). The SDK
    reads only that reply: an HTTP refusal of the upgrade would reach its user as a bare handshake error."""
    await receive()  # "websocket.connect"
    await send({"type": "websocket.accept"})
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            if (await receive())["type"] == "websocket.disconnect":
                return
    error = sdk_error(ApiSwitchedOffError(SWITCHED_OFF))
    with contextlib.suppress(Exception):  # the client may be gone: nothing left to tell it
        await send({"type": "websocket.send", "text": json.dumps({"success": False, "error": error})})
        await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})


def install(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(ApiSwitch, settings=settings)
