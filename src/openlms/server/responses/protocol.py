"""The /v1/responses request (pydantic; unknown fields are accepted and logged, as on /v1)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openlms.server.openai.protocol import OpenAIModel


class ResponsesRequest(OpenAIModel):
    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    text: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    reasoning: dict[str, Any] | None = None
    stream: bool = False
    store: bool | None = None
    previous_response_id: str | None = None
    parallel_tool_calls: bool | None = None
    ttl: int | None = Field(default=None, ge=1)


class ResponseObject(BaseModel):
    """The answer's `response` object, as documented in the OpenAPI document (items stay open)."""

    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["response"]
    created_at: int
    status: str
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


STREAM_DESCRIPTION = (
    "Named server-sent events (`event:` the type; `data:` the event object with its `sequence_number`), "
    "from `response.created` to `response.completed` (or `response.incomplete`); no `[DONE]` line"
)


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response"]
    deleted: bool
