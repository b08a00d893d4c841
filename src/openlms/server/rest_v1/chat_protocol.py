"""LM Studio 0.4's `POST /api/v1/chat`: the request (pydantic; unknown fields are accepted and logged, as
on /v1) and the answer's shapes for the OpenAPI document (documentation only: routes build dicts)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openlms.server.openai.protocol import OpenAIModel

Reasoning = Literal["off", "low", "medium", "high", "on"]


class ChatInputItem(BaseModel):
    """`{"type": "message" | "text", "content"}` or `{"type": "image", "data_url"}`."""

    model_config = ConfigDict(extra="allow")
    type: Literal["message", "text", "image"]
    content: str | None = None
    data_url: str | None = None


class PluginIntegration(BaseModel):
    """A server of mcp.json: `{"type": "plugin", "id": "mcp/<label>", "allowed_tools"?}`."""

    model_config = ConfigDict(extra="allow")
    type: Literal["plugin"]
    id: str = Field(min_length=1)
    allowed_tools: list[str] | None = None


class EphemeralMcpIntegration(BaseModel):
    """A remote MCP server named by the request (needs the server's `mcp_allow_remote_servers`)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["ephemeral_mcp"]
    server_label: str = Field(min_length=1)
    server_url: str = Field(min_length=1)
    allowed_tools: list[str] | None = None
    headers: dict[str, str] | None = None


Integration = str | PluginIntegration | EphemeralMcpIntegration


class ChatRequestBody(OpenAIModel):
    model: str = Field(min_length=1)
    input: str | list[ChatInputItem]
    system_prompt: str | None = None
    integrations: list[Integration] | None = None
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0, le=1)
    repeat_penalty: float | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, ge=1)
    reasoning: Reasoning | None = None
    context_length: int | None = Field(default=None, ge=64)
    store: bool | None = None
    previous_response_id: str | None = None
    # openlms extensions
    tool_choice: Literal["auto", "none", "required"] | None = Field(
        default=None,
        description="openlms extension: 'required' makes the model call one of the integrations' tools "
        "in its first round (later rounds are 'auto')",
    )
    ttl: int | None = Field(default=None, ge=1, description="openlms extension: idle TTL of a JIT load")


class ProviderInfo(BaseModel):
    type: Literal["plugin", "ephemeral_mcp"]
    plugin_id: str | None = None
    server_label: str | None = None


class ChatStats(BaseModel):
    input_tokens: int
    total_output_tokens: int
    reasoning_output_tokens: int
    tokens_per_second: float
    time_to_first_token_seconds: float
    model_load_time_seconds: float | None = None


class ChatOutputItem(BaseModel):
    """One output item: `message` / `reasoning` (`content`), `tool_call` (`tool`, `arguments`, `output`,
    `provider_info`) or `invalid_tool_call` (`reason`, `metadata`)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["message", "reasoning", "tool_call", "invalid_tool_call"]
    content: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    output: str | None = None
    provider_info: ProviderInfo | None = None
    reason: str | None = None
    metadata: dict[str, Any] | None = None


class ChatResponseBody(BaseModel):
    model_instance_id: str
    output: list[ChatOutputItem]
    stats: ChatStats
    response_id: str | None = Field(default=None, description="Set unless the request had store: false")


STREAM_EVENTS = (
    "chat.start",
    "model_load.start",
    "model_load.progress",
    "model_load.end",
    "prompt_processing.start",
    "prompt_processing.progress",
    "prompt_processing.end",
    "reasoning.start",
    "reasoning.delta",
    "reasoning.end",
    "tool_call.start",
    "tool_call.arguments",
    "tool_call.success",
    "tool_call.failure",
    "message.start",
    "message.delta",
    "message.end",
    "error",
    "chat.end",
)
STREAM_DESCRIPTION = (
    "LM Studio's named server-sent events (`event:` the type, `data:` the event object with its `type`), "
    "from `chat.start` to `chat.end` (whose `result` is the whole answer)"
)
