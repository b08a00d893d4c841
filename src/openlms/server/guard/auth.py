"""API tokens on every route (issue 10, part 2): LM Studio's "Require Authentication".

When `settings.require_auth` is on, a pure ASGI middleware asks every HTTP request for a token from
`lms token create` (`core/tokens.py`), in any of:

- `Authorization: Bearer <token>` (OpenAI, REST v0/v1),
- `x-api-key: <token>` (Anthropic style),
- `Authorization: Basic base64(sk-lm-<id>:<secret>)`, which is what a client sends for a URL with the
  token as its user info (`http://sk-lm-<id>:<secret>@host:port`): the only way the `lmstudio` 1.5 SDK
  can carry one (`lms.Client("sk-lm-…:…@127.0.0.1:1234")`).

The local `lms` sends the per-home secret (`<home>/openlms/cli-secret`, mode 0600), accepted from a
loopback peer only. A missing or wrong token is a 401 in OpenAI's shape (`invalid_api_key`) with
`WWW-Authenticate: Bearer`. `GET /lmstudio-greeting` (the SDK's probe), CORS preflights and the web app's
files (`GET /`, `/assets/*`: no data, and the app then asks for a token) stay open.

Websockets are never refused at the upgrade: the SDK reads only its handshake's reply, so the verdict
travels in the scope (`AuthContext`) and the SDK transport decides on the handshake, where SDKs from
1.6 on send the token split into `clientIdentifier` / `clientPasskey`. Every websocket route of the app
must consult `AuthContext` (today only the SDK's namespaces exist).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass
from enum import Enum

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from openlms.core.settings import Settings
from openlms.core.tokens import (
    TokenVerifier,
    local_secret_file,
    read_or_create_local_secret,
    split_token,
)
from openlms.server.guard.responses import body_of, send_http_error
from openlms.server.loopback import is_loopback

log = logging.getLogger("openlms.server.auth")

AUTH_SCOPE_KEY = "openlms.auth"
OPEN_PATHS = frozenset({"/lmstudio-greeting"})
APP_FILES = ("/", "/assets/")  # the web app's page and its hashed scripts and styles (docs/app.md)
MAX_HEADER_TOKEN = 512

MISSING_MESSAGE = (
    "This server requires an API token. Send it as `Authorization: Bearer <token>` "
    "(or `x-api-key: <token>`); create one with `lms token create --name <name>`."
)
INVALID_MESSAGE = "The API token is not valid: it is unknown, revoked or expired (see `lms token ls`)."


class Verdict(Enum):
    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class AuthContext:
    """What a websocket's handshake needs to finish authentication: the headers' verdict, the tokens."""

    verdict: Verdict
    verifier: TokenVerifier

    def check_handshake(self, identifier: str, passkey: str) -> bool:
        """Whether the SDK handshake carries a live token: id and secret (SDK 1.6+, JS), or the whole
        token as the passkey."""
        if self.verdict is Verdict.OK:
            return True
        whole = split_token(passkey)
        if whole is not None:
            return self.verifier.verify_parts(*whole) is not None
        return self.verifier.verify_parts(identifier, passkey) is not None

    def refusal(self) -> str:
        """Why the handshake is refused, with what an SDK user sets."""
        first = INVALID_MESSAGE if self.verdict is Verdict.INVALID else "This server requires an API token."
        return (
            f"{first} Pass a token from `lms token create`: lmstudio-python 1.6+ "
            '`lms.Client(api_token="sk-lm-…")` or the LMSTUDIO_API_TOKEN environment variable; '
            'lmstudio-python 1.5: put it before the host, `lms.Client("sk-lm-…:…@127.0.0.1:1234")`; '
            "lmstudio-js: `new LMStudioClient({ apiToken })` or LM_API_TOKEN."
        )


class TokenAuthMiddleware:
    """Refuses HTTP requests without a live token; hands websockets their verdict in the scope."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, local_secret: str | None) -> None:
        self.app = app
        self.verifier = verifier
        self.local_secret = local_secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            scope[AUTH_SCOPE_KEY] = AuthContext(self.verdict(scope), self.verifier)
        elif kind == "http" and not _is_open(scope):
            verdict = self.verdict(scope)
            if verdict is not Verdict.OK:
                await _send_401(send, MISSING_MESSAGE if verdict is Verdict.MISSING else INVALID_MESSAGE)
                return
        await self.app(scope, receive, send)

    def verdict(self, scope: Scope) -> Verdict:
        token = credential(scope)
        if token is None:
            return Verdict.MISSING
        if self.verifier.verify(token) is not None or self._is_local_secret(token, scope):
            return Verdict.OK
        return Verdict.INVALID

    def _is_local_secret(self, token: str, scope: Scope) -> bool:
        if not self.local_secret or not hmac.compare_digest(token.encode(), self.local_secret.encode()):
            return False
        client = scope.get("client")
        return client is not None and is_loopback(str(client[0]))


def credential(scope: Scope) -> str | None:
    """The token a request carries (Bearer, x-api-key or Basic user:password), if any."""
    authorization, api_key = None, None
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            authorization = value
        elif name == b"x-api-key":
            api_key = value
    if authorization:
        scheme, _, rest = authorization.decode("latin-1").strip().partition(" ")
        if scheme.lower() == "bearer":
            return _bounded(rest.strip())
        if scheme.lower() == "basic":
            return _basic(rest.strip())
    if api_key:
        return _bounded(api_key.decode("latin-1").strip())
    return None


def _basic(encoded: str) -> str | None:
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, _, password = decoded.partition(":")
    return _bounded(f"{user}:{password}" if password else user)


def _bounded(token: str) -> str | None:
    return token if 0 < len(token) <= MAX_HEADER_TOKEN else None


def _is_open(scope: Scope) -> bool:
    path = scope.get("path")
    if path in OPEN_PATHS:
        return True
    if scope.get("method") in ("GET", "HEAD") and (
        path == APP_FILES[0] or str(path).startswith(APP_FILES[1])
    ):
        return True
    if scope.get("method") != "OPTIONS":
        return False
    names = {name for name, _ in scope.get("headers") or ()}
    return b"origin" in names and b"access-control-request-method" in names  # a CORS preflight


async def _send_401(send: Send, message: str) -> None:
    payload = body_of(message, "invalid_request_error", "invalid_api_key")
    await send_http_error(send, 401, payload, ((b"www-authenticate", b'Bearer realm="openlms"'),))


def warn_if_exposed(settings: Settings) -> str | None:
    """The warning for a server on the network without tokens, logged at start (None when safe)."""
    if settings.require_auth or is_loopback(settings.host):
        return None
    return (
        f"The server listens on {settings.host} (the network) and requires no API token: anyone who "
        "can reach this machine can use its models. Start it with --require-auth and create a token "
        "with `lms token create`."
    )


def install(app: FastAPI, settings: Settings) -> None:
    warning = warn_if_exposed(settings)
    if warning:
        log.warning(warning)
    if not settings.require_auth:
        return
    local_secret = read_or_create_local_secret(local_secret_file(settings.home))
    app.add_middleware(
        TokenAuthMiddleware, verifier=TokenVerifier(settings.tokens_file), local_secret=local_secret
    )
    log.info("API tokens are required (tokens file: %s).", settings.tokens_file)
