"""The OpenAPI document's response shapes (served at `/openapi.json`).

Documentation only: the routes keep building plain dicts; these models describe them through the route
decorators' `responses=`, they never validate or filter what a route returns. Every route also documents
the errors it can answer with, each an OpenAI error object (`server/errors.py`), which is also why no route
lists FastAPI's default 422 (validation errors leave as 400).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from openlms.server.openai.convert import TRUNCATION_HEADER
from openlms.store.model_config import ModelConfig

# ---------------------------------------------------------------------------------------------------
# Errors


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, permission_error, server_error, ...")
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every error, on every HTTP route: OpenAI's error object."""

    error: ErrorDetail


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request (bad JSON, a field out of range, a prompt over the context, ...)",
    401: "An API token is required (Require Authentication) and was missing or wrong",
    403: "Refused: a Host or browser Origin that is not allowed, or a local-only route called remotely",
    404: "No such model, instance, preset or route",
    409: "The identifier is already in use",
    413: "The request body is too large",
    429: "Too many concurrent clients",
    500: "The server failed (a model that cannot be loaded, an inference failure)",
    502: "An upstream server failed: an MCP server that cannot be started or reached",
    503: "The model's prediction queue is full (retry after `Retry-After` seconds), or the model was "
    "unloaded while the request was waiting",
}

RETRY_AFTER = "Retry-After"
_RETRY_AFTER_DOC = "Seconds to wait before retrying (set when the model's prediction queue is full)"

# What the guard (Host, Origin, token, body limits) and request validation can answer on any route.
COMMON_ERRORS = (400, 401, 403, 413)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these statuses (plus the ones every route has), each an ErrorResponse."""
    listed: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[code]}
        for code in sorted({*COMMON_ERRORS, *codes})
    }
    if 503 in listed:
        listed[503]["headers"] = {
            RETRY_AFTER: {"description": _RETRY_AFTER_DOC, "schema": {"type": "integer"}}
        }
    # Any other 4xx (405, 429, ...) has the same shape; listing it also keeps FastAPI's 422 out.
    return listed | {"4XX": {"model": ErrorResponse, "description": "Any other client error"}}


def ok(model: type[BaseModel], description: str = "Success") -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": description}}


def sse_event(description: str, events: tuple[str, ...] = ()) -> dict[str, Any]:
    """The schema of one server-sent event (OpenAPI 3.2's SSE shape: `event`, `data`, `id`, `retry`)."""
    event: dict[str, Any] = {"type": "string"} | ({"enum": list(events)} if events else {})
    return {
        "type": "object",
        "description": description,
        "required": ["data"],
        "properties": {
            "event": event,
            "data": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer", "minimum": 0},
        },
    }


def ok_or_stream(
    model: type[BaseModel],
    stream_description: str,
    events: tuple[str, ...] = (),
    description: str = "Success",
) -> dict[int | str, dict[str, Any]]:
    """A JSON answer, or server-sent events when the request sets `"stream": true`."""
    sse = {"schema": sse_event(stream_description, events)}
    return {200: {"model": model, "description": description, "content": {"text/event-stream": sse}}}


def prediction(model: type[BaseModel], stream_description: str) -> dict[int | str, dict[str, Any]]:
    """A chat or text completion (JSON or a stream) and its errors; a cut prompt is named in a header."""
    success = ok_or_stream(model, stream_description)
    success[200]["headers"] = {
        TRUNCATION_HEADER: {
            "description": "Set when the prompt was cut to fit: `policy=...; messages=N; tokens=N`",
            "schema": {"type": "string"},
        }
    }
    return responses(success, 404, 500, 503)


def responses(success: dict[int | str, dict[str, Any]], *codes: int) -> dict[int | str, dict[str, Any]]:
    return success | errors(*codes)


def sse_only(description: str, events: tuple[str, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """A route whose success is only a server-sent event stream (no JSON body)."""
    content = {"text/event-stream": {"schema": sse_event(description, events)}}
    return {200: {"description": description, "content": content}}


def text_only(description: str) -> dict[int | str, dict[str, Any]]:
    """A route whose success is plain text (such as `/metrics`), with the errors every route has."""
    return responses(
        {200: {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}}
    )


# ---------------------------------------------------------------------------------------------------
# Shared and OpenAI-compatible (/v1)


class _Open(BaseModel):
    """Responses may gain fields: documented objects allow more properties."""

    model_config = ConfigDict(extra="allow")


class Greeting(_Open):
    lmstudio: bool


class ModelObject(_Open):
    id: str
    object: Literal["model"]
    owned_by: str


class ModelList(_Open):
    object: Literal["list"]
    data: list[ModelObject]


class Usage(_Open):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FunctionCall(_Open):
    name: str
    arguments: str = Field(description="The arguments as a JSON string")


class ToolCall(_Open):
    id: str
    type: Literal["function"]
    function: FunctionCall


class AssistantMessage(_Open):
    role: Literal["assistant"]
    content: str | None = Field(description="null when the answer is only tool calls")
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = Field(
        default=None, description="The model's reasoning (named `reasoning` for some tool formats)"
    )


FinishReason = Literal["stop", "length", "tool_calls"]


class ChatChoice(_Open):
    index: int
    message: AssistantMessage
    logprobs: None = None
    finish_reason: FinishReason


class ChatCompletion(_Open):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class TextChoice(_Open):
    index: int
    text: str
    logprobs: None = None
    finish_reason: FinishReason


class TextCompletion(_Open):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage
    system_fingerprint: str | None = None


class Embedding(_Open):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32")


class EmbeddingUsage(_Open):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(_Open):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


CHAT_STREAM = (
    "`data:` lines, each a chat.completion.chunk JSON object (an error object if the prediction fails "
    "mid-stream), then `data: [DONE]`"
)
TEXT_STREAM = (
    "`data:` lines, each a text_completion JSON object (an error object if the prediction fails "
    "mid-stream), then `data: [DONE]`"
)

# ---------------------------------------------------------------------------------------------------
# LM Studio REST API v0 (/api/v0)


class V0GpuOffload(_Open):
    """What a loaded model really runs where (a llama.cpp build without a GPU backend: off, cpu, 0)."""

    gpu: Literal["max", "off"] | float | None = Field(description="the effective gpu load setting")
    device: Literal["gpu", "cpu", "split"]
    gpu_layers: int | None = Field(description="layers on the GPU (llama.cpp's count: blocks + output)")
    total_layers: int | None


class V0Model(_Open):
    id: str
    object: Literal["model"]
    type: Literal["llm", "vlm", "embeddings"]
    publisher: str
    arch: str | None
    compatibility_type: str
    quantization: str | None
    state: Literal["loaded", "not-loaded"]
    max_context_length: int | None
    capabilities: list[str]
    loaded_context_length: int | None = None
    parallel: int | None = Field(default=None, description="loaded: predictions served at once")
    active_requests: int | None = Field(default=None, description="loaded: predictions running now")
    queued_requests: int | None = Field(default=None, description="loaded: predictions waiting for a slot")
    gpu_offload: V0GpuOffload | None = None
    error: str | None = None
    params_string: str | None = None
    variants: list[str] | None = Field(default=None, description="the keys of a model's files (2 or more)")
    selected_variant: str | None = Field(default=None, description="which of `variants` this entry loads")


class V0ModelList(_Open):
    object: Literal["list"]
    data: list[V0Model]


class V0Stats(_Open):
    tokens_per_second: float
    time_to_first_token: float
    generation_time: float
    stop_reason: str
    prompt_truncated_tokens: int
    prompt_truncated_messages: int
    context_shift_tokens: int
    draft_model: str | None = None
    total_draft_tokens_count: int | None = None
    accepted_draft_tokens_count: int | None = None
    rejected_draft_tokens_count: int | None = None
    ignored_draft_tokens_count: int | None = None


class V0ModelInfo(_Open):
    arch: str | None
    quant: str | None
    format: str
    context_length: int


class V0Runtime(_Open):
    name: str
    version: str
    supported_formats: list[str]


class V0Extras(_Open):
    stats: V0Stats
    model_info: V0ModelInfo
    runtime: V0Runtime


class V0ChatCompletion(ChatCompletion, V0Extras):
    pass


class V0TextCompletion(TextCompletion, V0Extras):
    pass


# ---------------------------------------------------------------------------------------------------
# LM Studio 0.4-style REST API (/api/v1)


class V1InstanceConfig(_Open):
    context_length: int
    eval_batch_size: int | None = None
    flash_attention: bool | None = None
    num_experts: int | None = None
    parallel: int | None = Field(default=None, description="predictions served at once (1..64)")
    offload_kv_cache_to_gpu: bool | None = None
    gpu: Literal["max", "off"] | float | None = None
    gpu_layers: int | None = Field(default=None, description="layers offloaded to the GPU (0 on a CPU build)")


class V1Instance(_Open):
    id: str
    config: V1InstanceConfig
    status: str = Field(description="idle, generating or unloading")
    active_requests: int = Field(description="predictions running in the instance's parallel slots")
    queued_requests: int = Field(description="predictions waiting for a free slot")
    jit: bool
    ttl_seconds: float | None
    idle_seconds: float
    size_bytes: int
    instance_reference: str


class V1LoadingInstance(_Open):
    id: str
    status: Literal["loading"]
    progress: float


class V1Quantization(_Open):
    name: str
    bits_per_weight: float | None


class V1Capabilities(_Open):
    vision: bool
    trained_for_tool_use: bool
    reasoning: bool = False


class V1Model(_Open):
    type: Literal["llm", "embedding"]
    publisher: str
    key: str
    display_name: str
    architecture: str | None
    quantization: V1Quantization | None
    size_bytes: int
    params_string: str | None
    loaded_instances: list[V1Instance | V1LoadingInstance]
    max_context_length: int | None
    format: str
    path: str
    error: str | None = Field(description="Why the file cannot be loaded (null when it can)")
    capabilities: V1Capabilities | None = None
    description: str | None = None
    variants: list[str] | None = Field(default=None, description="the keys of a model's files (2 or more)")
    selected_variant: str | None = Field(default=None, description="which of `variants` this entry loads")
    virtual: bool | None = Field(default=None, description="a model.yaml model resolved to a downloaded file")
    domain: str | None = Field(default=None, description="a model.yaml's metadataOverrides.domain")


class V1Crash(_Open):
    model: str  # the model key
    instance_id: str
    at: float  # Unix time
    exit: str  # how the worker process ended: "killed by signal 9 (SIGKILL)", "exited with status 134"


class V1ModelList(_Open):
    models: list[V1Model]
    recent_crashes: list[V1Crash] = Field(
        default_factory=list, description="openlms: the last model worker crashes, newest first"
    )


class V1LoadResponse(_Open):
    type: Literal["llm", "embedding"]
    instance_id: str
    load_time_seconds: float
    status: Literal["loaded"]
    load_config: V1InstanceConfig | None = Field(default=None, description="Only with `echo_load_config`")
    model_instance_id: str = Field(description="openlms: the same as `instance_id` (older clients)")
    config: V1InstanceConfig = Field(description="openlms: the load config, always")


LOAD_STREAM = (
    "With `stream: true`: `event: progress` (`{progress}`), then `event: loaded` (the JSON answer) or "
    "`event: error` (an error object)"
)


class V1ImportResponse(_Open):
    key: str
    path: str
    type: Literal["llm", "embedding"]
    error: str | None


class V1UnloadResponse(_Open):
    instance_id: str


class V1ConfigReset(_Open):
    model: str
    reset: bool


class ApplyTemplateResponse(_Open):
    model: str = Field(description="The identifier of the instance whose template was used")
    prompt: str
    prompt_tokens: int


def model_config_body() -> dict[str, Any]:
    """`openapi_extra` for PUT /api/v1/models/config: the per-model settings object (camelCase)."""
    schema = ModelConfig.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    # Inline the nested objects: openapi_extra cannot add component schemas.
    for section in ("load", "prediction"):
        ref = schema["properties"][section].pop("$ref", None) or ""
        schema["properties"][section] |= definitions.get(ref.rsplit("/", 1)[-1], {})
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


MODEL_CONFIG_RESPONSES = responses(ok(ModelConfig, "The per-model settings (camelCase)"), 404, 500)


# ---------------------------------------------------------------------------------------------------
# Authentication (Require Authentication, docs/auth.md)

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API token (`lms token create`)."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "The same token."},
}


def install_security(app: FastAPI, *, required: bool) -> None:
    """Document the token schemes; every operation but the greeting requires one when `required`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            if required:
                schema["security"] = [{"bearer": []}, {"apiKey": []}]
                greeting = schema.get("paths", {}).get("/lmstudio-greeting", {}).get("get")
                if greeting is not None:
                    greeting["security"] = []  # the SDK's probe stays open
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
