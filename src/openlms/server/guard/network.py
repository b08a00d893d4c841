"""Host allowlist and browser Origin checks (issue 10, part 1) as one pure ASGI middleware.

The rules are in `policy.py`. Refusals are 403s in the API's error format before any route runs; a
websocket handshake is refused with an HTTP 403 (see `responses.py`). The middleware reads two headers
and passes everything else through untouched, so it adds no work per streamed chunk.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from openlms.core.settings import Settings
from openlms.server.guard.policy import HostPolicy, OriginPolicy
from openlms.server.guard.responses import body_of, refuse

HOST_REFUSED = (
    "Host '{}' is not allowed: this server answers only its own names (DNS rebinding protection). "
    "Add the name to the allowed_hosts setting (OPENLMS_ALLOWED_HOSTS) to use it."
)
ORIGIN_REFUSED = (
    "Origin '{}' is not allowed: web pages may call this server only from its own origin. "
    "Add the origin to the allowed_origins setting (OPENLMS_ALLOWED_ORIGINS), or enable CORS."
)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class HostOriginGuard:
    """Refuses requests whose Host is not this server's and browser requests from foreign origins."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy, origins: OriginPolicy) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = header(scope, b"host")
        server = scope.get("server")
        if not self.hosts.allows(host, server[0] if server else None):
            payload = body_of(HOST_REFUSED.format(host), "permission_error", "host_not_allowed")
            await refuse(scope, receive, send, 403, payload)
            return
        origin = header(scope, b"origin")
        if not self.origins.allows(origin, host, scope.get("scheme", "http")):
            payload = body_of(ORIGIN_REFUSED.format(origin), "permission_error", "origin_not_allowed")
            await refuse(scope, receive, send, 403, payload)
            return
        await self.app(scope, receive, send)


def install_origin_and_host(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        HostOriginGuard,
        hosts=HostPolicy.from_settings(settings),
        origins=OriginPolicy.from_settings(settings),
    )
