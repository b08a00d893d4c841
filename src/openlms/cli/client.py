"""A small typed client for the server's public API (docs/http-api.md), on httpx.

Every failure becomes a `CliError` with one readable line, so commands never see httpx exceptions.
Tests inject an `httpx.MockTransport` through `CliApp.transport`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx

from openlms.cli.errors import CliError
from openlms.cli.estimate import ESTIMATE_PATH, Estimate
from openlms.cli.schema import CrashInfo, LoadResult, ModelInfo

ProgressCallback = Callable[[float], None]

_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_LOAD_TIMEOUT = httpx.Timeout(60.0, connect=5.0, read=None)  # a big model can take minutes to load
LOG_STREAM_PATH = "/api/v1/logs/stream"
CLIENT_HEADER = "X-OpenLMS-Client"  # who is calling: `lms` (server/guard/switch.py)


class ApiClient:
    """One server, addressed by its base URL (`http://127.0.0.1:1234`)."""

    def __init__(
        self, base_url: str, *, transport: httpx.BaseTransport | None = None, hint: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._hint = hint
        self._http = httpx.Client(
            base_url=self.base_url, transport=transport, timeout=_TIMEOUT, headers=auth_headers(self.base_url)
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- endpoints -----------------------------------------------------------------------------------

    def is_alive(self, timeout: float = 1.0) -> bool:
        """Whether an LM Studio-compatible server answers `GET /lmstudio-greeting`."""
        try:
            response = self._http.get("/lmstudio-greeting", timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def list_models(self) -> list[ModelInfo]:
        return self.list_models_and_crashes()[0]

    def list_models_and_crashes(self) -> tuple[list[ModelInfo], list[CrashInfo]]:
        """The models, and the model workers that crashed lately (newest first; none from older servers)."""
        body = self._json(self._request("GET", "/api/v1/models"))
        items = body.get("models")
        if not isinstance(items, list):
            raise CliError(f"Unexpected answer from {self.base_url}/api/v1/models: no 'models' list.")
        crashes = body.get("recent_crashes")
        return (
            [ModelInfo.from_json(item) for item in items if isinstance(item, Mapping)],
            [CrashInfo.from_json(c) for c in crashes if isinstance(c, Mapping)]
            if isinstance(crashes, list)
            else [],
        )

    def unload(self, instance_id: str) -> str:
        body = self._json(self._request("POST", "/api/v1/models/unload", json={"instance_id": instance_id}))
        result = body.get("instance_id")
        return result if isinstance(result, str) else instance_id

    def import_model(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._json(self._request("POST", "/api/v1/models/import", json=dict(body), timeout=600))

    def estimate(self, body: Mapping[str, Any]) -> Estimate:
        """`POST /api/v1/models/estimate`: the memory a load with this body's config would take."""
        return Estimate.from_json(self._json(self._request("POST", ESTIMATE_PATH, json=dict(body))))

    def load(self, body: Mapping[str, Any], on_progress: ProgressCallback | None = None) -> LoadResult:
        """Load with `"stream": true`, reporting progress (0..1) as the server's events arrive."""
        request = self._http.build_request(
            "POST", "/api/v1/models/load", json={**body, "stream": True}, timeout=_LOAD_TIMEOUT
        )
        fallback = str(body.get("identifier") or body.get("model") or "")
        with self._transport_errors():
            response = self._http.send(request, stream=True)
            try:
                self._raise_for_status(response)
                if response.headers.get("content-type", "").startswith("text/event-stream"):
                    result = _load_events(response.iter_lines(), on_progress, fallback)
                else:
                    response.read()
                    result = LoadResult.from_json(self._json(response), fallback)
            finally:
                response.close()
        return result

    def log_stream(
        self, source: str, *, unreachable: str | None = None
    ) -> Generator[tuple[str, dict[str, Any]], None, None]:
        """Follow `GET /api/v1/logs/stream?source=...`: `(event, payload)` per message whose data is a
        JSON object, until the server ends the stream (the server pings every 15 s).

        `unreachable` replaces the whole message when nothing listens (connection refused). A connection
        the server cuts short (a stopping server may) ends the iteration as the end of the stream does;
        any other failure mid-stream is a `CliError` saying the stream broke off.
        """
        with (
            _transport_errors(self.base_url, self._hint, unreachable),
            self._http.stream("GET", LOG_STREAM_PATH, params={"source": source}) as response,
        ):
            self._raise_for_status(response)
            yield from _log_events(response)

    @contextmanager
    def stream_json(self, path: str, body: Mapping[str, Any]) -> Iterator[Iterator[dict[str, Any]]]:
        """POST `body` and follow the answer's server-sent events (their JSON objects; `[DONE]` skipped).
        Leaving the block closes the connection, which stops the server's work (`lms chat`'s Ctrl+C)."""
        with (
            self._transport_errors(),
            self._http.stream("POST", path, json=dict(body), timeout=_LOAD_TIMEOUT) as response,
        ):
            self._raise_for_status(response)
            yield (payload for _, payload in _json_events(response.iter_lines()))

    def request_json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Any JSON route of the public API (`lms mcp`'s admin routes): its object, or a `CliError`."""
        return self._json(self._request(method, path, **kwargs))

    def get_page(self, path: str) -> httpx.Response:
        """A non-JSON page of the server (`lms app` reads `GET /`); `CliError` on failure."""
        return self._request("GET", path)

    # -- plumbing ------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._transport_errors():
            response = self._http.request(method, path, **kwargs)
        self._raise_for_status(response)
        return response

    def _transport_errors(self) -> AbstractContextManager[None]:
        return _transport_errors(self.base_url, self._hint)

    @staticmethod
    def _raise_for_status(response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        response.read()
        raise CliError(error_message(response))

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise CliError(f"The server at {self.base_url} did not answer with JSON.") from None
        if not isinstance(body, dict):
            raise CliError(f"Unexpected answer from the server at {self.base_url}: {str(body)[:200]}")
        return body


@contextmanager
def _transport_errors(base_url: str, hint: str | None, refused: str | None = None) -> Iterator[None]:
    """Turns httpx transport failures into one-line `CliError`s (`refused`, if given, when nothing
    listens)."""
    try:
        yield
    except httpx.TransportError as exc:
        if refused is not None and isinstance(exc, httpx.ConnectError):
            raise CliError(refused) from None
        message = f"cannot reach the openlms server at {base_url} ({transport_reason(exc)})."
        raise CliError(f"{message} {hint}" if hint else message) from None


def transport_reason(exc: httpx.TransportError) -> str:
    text = str(exc).lower()
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "unknown host"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection"
    return str(exc) or type(exc).__name__


def auth_headers(base_url: str) -> dict[str, str]:
    """The headers `lms` sends on every request: `X-OpenLMS-Client: lms` (the server's API switch lets
    `lms` through when the API is off for other programs, docs/http-api.md) and the token: for a server
    on this machine, the home's local secret (written by a server that requires tokens, accepted from
    loopback only), else LM_API_TOKEN / LMSTUDIO_API_TOKEN."""
    from openlms.cli.discovery import home_dir, is_loopback_host
    from openlms.core.tokens import local_secret_file, read_local_secret, token_from_environment

    token = (
        read_local_secret(local_secret_file(home_dir()))
        if is_loopback_host(httpx.URL(base_url).host)
        else None
    )
    token = token or token_from_environment()
    return {CLIENT_HEADER: "lms", **({"Authorization": f"Bearer {token}"} if token else {})}


def error_message(response: httpx.Response) -> str:
    """The server's `error.message` (OpenAI error shape), else the status and the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = _error_field(body)
    if message and response.status_code == 401:
        return f"{message} For `lms`, set LM_API_TOKEN to a token from `lms token create`."
    if message:
        return message
    text = response.text.strip()[:200]
    return f"The server answered HTTP {response.status_code}" + (f": {text}" if text else ".")


def _error_field(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    detail = body.get("detail")  # FastAPI's default error shape, should one slip through
    return detail if isinstance(detail, str) else None


def iter_sse(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Server-sent events as `(event, data)` pairs; `event` defaults to `message`."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield event, "\n".join(data)


def _json_events(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The server-sent events whose data is a JSON object, as `(event, payload)`; others are skipped."""
    for event, data in iter_sse(lines):
        try:
            payload = json.loads(data)
        except ValueError:
            continue
        if isinstance(payload, dict):
            yield event, payload


def _log_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """The log stream's JSON events; they end quietly if the server drops the connection."""
    try:
        yield from _json_events(response.iter_lines())
    except httpx.RemoteProtocolError:  # a stopping server may cut the stream short
        return
    except httpx.TransportError as exc:
        raise CliError(f"The log stream broke off ({transport_reason(exc)}).") from None


def _load_events(lines: Iterable[str], on_progress: ProgressCallback | None, fallback: str) -> LoadResult:
    for event, payload in _json_events(lines):
        if event == "progress" and on_progress is not None:
            fraction = payload.get("progress")
            if isinstance(fraction, int | float):
                on_progress(min(max(float(fraction), 0.0), 1.0))
        elif event == "loaded":
            return LoadResult.from_json(payload, fallback)
        elif event == "error":
            raise CliError(_error_field(payload) or "The server failed to load the model.")
    raise CliError("The server closed the load stream before the model was loaded.")
