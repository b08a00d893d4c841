"""Anthropic Messages API request shapes (`POST /v1/messages`, `/v1/messages/count_tokens`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Block(BaseModel):
    """One content block: text, image, tool_use, tool_result or thinking (extra fields are ignored)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: dict[str, Any] | None = None
    tool_use_id: str | None = None
    content: str | list[Block] | None = None
    thinking: str | None = None
    signature: str | None = None
    is_error: bool | None = None  # a tool_result of a tool that failed


class Message(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Tool(BaseModel):
    """A custom tool (`type` unset or `custom`); Anthropic's server tools (`web_search_...`, `bash_...`)
    are refused by the conversion with a message, not by a schema error."""

    model_config = ConfigDict(extra="allow")

    type: str | None = None
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None


class ToolChoice(BaseModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None  # true: at most one tool_use in the answer


class Thinking(BaseModel):
    """Extended thinking: `enabled` (and `between_tools`) turn the model's reasoning switch on, `disabled`
    off; `adaptive` leaves it to the model. `budget_tokens` is accepted (the model decides how long it
    thinks)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["enabled", "disabled", "adaptive", "between_tools"]
    budget_tokens: int | None = Field(default=None, ge=0)


class OutputFormat(BaseModel):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(BaseModel):
    """`effort` sets the reasoning switch's level (xhigh and max are high); `format` a JSON schema the
    answer follows (enforced by a grammar)."""

    model_config = ConfigDict(extra="allow")

    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: OutputFormat | None = None


class CountTokensRequest(BaseModel):
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    system: str | list[Block] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=1)
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = None
    top_k: int | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None
    output_format: OutputFormat | None = None  # the structured-outputs beta's name of output_config.format


# Answers, as documented in the OpenAPI document (open: the answers carry more fields)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class MessageUsage(_Open):
    input_tokens: int
    output_tokens: int


class MessageResponse(_Open):
    """An Anthropic `message`: text, tool_use and thinking blocks, the stop reason and usage."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[dict[str, Any]]
    stop_reason: str | None
    stop_sequence: str | None
    usage: MessageUsage


class TokenCount(_Open):
    input_tokens: int


STREAM_EVENTS = (
    "message_start",
    "ping",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
)
