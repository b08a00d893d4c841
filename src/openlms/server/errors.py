"""The one table that maps domain errors to HTTP statuses and OpenAI error objects."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from openlms.core import errors as e

log = logging.getLogger("openlms.server")

_SURROGATE = re.compile("[\ud800-\udfff]")

# (status, OpenAI error type) per domain error class; the most specific class wins (MRO order).
STATUS: dict[type[e.OpenLMSError], tuple[int, str]] = {
    e.ContextLengthExceededError: (400, "invalid_request_error"),
    e.WrongModelTypeError: (400, "invalid_request_error"),
    e.NoChatTemplateError: (400, "invalid_request_error"),
    e.InvalidRequestError: (400, "invalid_request_error"),
    e.ModelNotFoundError: (404, "invalid_request_error"),
    e.PresetNotFoundError: (404, "invalid_request_error"),
    e.IdentifierInUseError: (409, "invalid_request_error"),
    e.PermissionDeniedError: (403, "permission_error"),
    e.InsufficientMemoryError: (400, "invalid_request_error"),
    e.InvalidModelFileError: (422, "invalid_request_error"),
    e.ModelLoadError: (500, "server_error"),
    e.ModelUnloadedError: (503, "server_error"),
    e.ServerBusyError: (503, "server_error"),  # with Retry-After (http_headers)
    e.ApiSwitchedOffError: (503, "server_error"),
    e.InferenceError: (500, "server_error"),
    e.EngineError: (500, "server_error"),
    e.HubAuthRequiredError: (403, "permission_error"),
    e.HubError: (502, "server_error"),
    e.DownloadVerificationError: (502, "server_error"),
    e.InsufficientDiskError: (507, "server_error"),
    e.DownloadError: (502, "server_error"),
    e.DownloadJobNotFoundError: (404, "invalid_request_error"),
    e.UnsupportedFormatError: (400, "invalid_request_error"),
    e.UnsupportedDocumentError: (400, "invalid_request_error"),
    e.DocumentError: (422, "invalid_request_error"),
    e.ResponseNotFoundError: (404, "invalid_request_error"),
    e.McpServerNotFoundError: (404, "invalid_request_error"),
    e.McpConnectionError: (502, "server_error"),
    e.PeerNotFoundError: (404, "invalid_request_error"),
    e.ConversationNotFoundError: (404, "invalid_request_error"),
    e.ConversationConflictError: (409, "invalid_request_error"),
    e.OpenLMSError: (500, "server_error"),
    e.TemplateLimitError: (400, "invalid_request_error"),
}


def error_body(
    message: str, type_: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    param = param if param is None else encodable(param)
    return {"error": {"message": encodable(message), "type": type_, "param": param, "code": code}}


def encodable(text: str) -> str:
    """`text` with lone UTF-16 surrogates (echoed from a client's request) as U+FFFD: a JSON answer is
    UTF-8, which has no form for them, so an error quoting one would itself fail as a 500."""
    return _SURROGATE.sub("\ufffd", text) if not text.isascii() else text


def status_of(exc: e.OpenLMSError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500, "server_error"


def domain_error_body(exc: e.OpenLMSError) -> tuple[int, dict[str, Any]]:
    status, type_ = status_of(exc)
    return status, error_body(exc.message, type_, param=exc.param, code=exc.code)


def http_headers(exc: e.OpenLMSError) -> dict[str, str] | None:
    """The headers a domain error's HTTP answer carries: `Retry-After` when a model's queue is full."""
    if isinstance(exc, e.ServerBusyError):
        return {"Retry-After": str(max(1, exc.retry_after_s))}
    return None


def domain_error_response(exc: e.OpenLMSError) -> JSONResponse:
    """A domain error as its HTTP answer (status, OpenAI error object, headers)."""
    status, body = domain_error_body(exc)
    if status >= 500 and not isinstance(exc, e.ServerBusyError):  # a full queue is load, not a failure
        log.error("%s: %s", type(exc).__name__, exc.message)
    return JSONResponse(body, status_code=status, headers=http_headers(exc))


# The `lmstudio` SDK's error shape: `displayData.code` picks the exception class the SDK raises.
SAMPLE_SIZE = 10


def sdk_error(exc: e.OpenLMSError) -> dict[str, Any]:
    """A domain error as the SDK's `SerializedLMSExtendedError` (rpcError / channelError)."""
    title = encodable(exc.message)
    if isinstance(exc, e.ServerBusyError):
        title = f"Model busy (retry in {max(1, exc.retry_after_s)} s): {title}"
    error: dict[str, Any] = {"title": title, "rootTitle": title}
    if isinstance(exc, e.ModelNotFoundError):
        error["displayData"] = {
            "code": "generic.noModelMatchingQuery",
            "query": {"identifier": encodable(exc.query)},
            "loadedModelsSample": exc.available[:SAMPLE_SIZE],
            "totalLoadedModels": len(exc.available),
        }
    elif isinstance(exc, e.PresetNotFoundError):
        error["displayData"] = {
            "code": "generic.presetNotFound",
            "specifiedFuzzyPresetIdentifier": exc.query,
            "availablePresetsSample": [
                {"identifier": identifier, "name": name} for identifier, name in exc.available[:SAMPLE_SIZE]
            ],
            "totalAvailablePresets": len(exc.available),
        }
    if exc.param:
        error["errorData"] = {"param": exc.param, "code": exc.code}
    if isinstance(exc, e.ServerBusyError):
        error["errorData"] = {"code": exc.code, "retryAfterSeconds": max(1, exc.retry_after_s)}
    return error


# LM Studio 0.4's error types for its native `/api/v1/chat` stream's `error` event.
LMSTUDIO_TYPES: dict[type[e.OpenLMSError], str] = {
    e.ModelNotFoundError: "model_not_found",
    e.DownloadJobNotFoundError: "job_not_found",
    e.McpConnectionError: "mcp_connection_error",
}


def lmstudio_error(exc: BaseException) -> dict[str, Any]:
    """An error as LM Studio 0.4's stream `error` object: `{type, message, code?, param?}` with its types
    (invalid_request, model_not_found, mcp_connection_error, job_not_found, internal_error)."""
    if not isinstance(exc, e.OpenLMSError):
        return {"type": "internal_error", "message": encodable(f"Internal error: {exc}")}
    kind = next((LMSTUDIO_TYPES[c] for c in type(exc).__mro__ if c in LMSTUDIO_TYPES), None)
    if kind is None:
        kind = "invalid_request" if status_of(exc)[0] < 500 else "internal_error"
    error: dict[str, Any] = {"type": kind, "message": encodable(exc.message)}
    if exc.code:
        error["code"] = exc.code
    if exc.param:
        error["param"] = encodable(exc.param)
    return error


def sdk_unexpected_error(exc: Exception) -> dict[str, Any]:
    title = encodable(f"Internal error: {exc}")
    return {"title": title, "rootTitle": title}


def install(app: FastAPI) -> None:
    """Register handlers so that every error leaves as an OpenAI error object."""

    @app.exception_handler(e.OpenLMSError)
    async def _domain(_: Request, exc: e.OpenLMSError) -> JSONResponse:
        return domain_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "Unknown endpoint. See /v1/models, /v1/chat/completions, /v1/embeddings, /api/v0/*."
        return JSONResponse(error_body(message, "invalid_request_error"), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body(f"Internal error: {exc}", "server_error"), status_code=500)


def validation_body(errors: Any) -> dict[str, Any]:
    """A pydantic validation failure as one readable OpenAI error (first problem named)."""
    items = list(errors)
    if not items:
        return error_body("Invalid request.", "invalid_request_error")
    first = items[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return error_body("The request body is not valid JSON.", "invalid_request_error", code="invalid_json")
    if param is None and first.get("type") in ("missing", "model_attributes_type", "dict_type"):
        return error_body(
            "The request body must be a JSON object (send it with Content-Type: application/json).",
            "invalid_request_error",
            code="invalid_json",
        )
    message = (
        f"Invalid value for '{param}': {first.get('msg', 'invalid')}" if param else str(first.get("msg"))
    )
    if len(items) > 1:
        message += f" (and {len(items) - 1} more problem{'s' if len(items) > 2 else ''})"
    return error_body(message, "invalid_request_error", param=param, code="invalid_value")
