"""OpenAI wire models (requests validated by pydantic; unknown fields are accepted and logged)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from openlms.core.types import ContextOverflowPolicy

log = logging.getLogger("openlms.server")


class OpenAIModel(BaseModel):
    """Permissive base: OpenAI clients send fields we do not use; they are ignored, with a debug log."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _log_ignored(self) -> OpenAIModel:
        if self.model_extra:
            log.debug("ignored request fields: %s", sorted(self.model_extra))
        return self


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    function_call: dict[str, Any] | None = None  # the legacy single-call form


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class SamplingFields(OpenAIModel):
    """Inference parameters shared by chat and text completions (openai.md's supported list + LM Studio's)."""

    model: str = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=-1)
    max_completion_tokens: int | None = Field(default=None, ge=-1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    repeat_penalty: float | None = Field(default=None, gt=0)
    logit_bias: dict[str, float] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice per request is supported.")
    ttl: int | None = Field(
        default=None, ge=1, description="Idle TTL in seconds if this request JIT-loads the model."
    )
    xtc_probability: float | None = Field(default=None, ge=0, le=1)
    xtc_threshold: float | None = Field(default=None, ge=0, le=0.5)
    response_format: dict[str, Any] | None = None
    draft_model: str | None = Field(
        default=None, min_length=1, description="Speculative decoding: the key of a downloaded draft model."
    )
    context_overflow_policy: ContextOverflowPolicy | None = Field(
        default=None,
        validation_alias=AliasChoices("context_overflow_policy", "contextOverflowPolicy"),
        description="stopAtLimit, truncateMiddle or rollingWindow (default: the model's, else the server's).",
    )


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = Field(
        default=None,
        description="The model's reasoning switch: none|minimal|low|medium|high|xhigh (or off|on).",
    )


class CompletionRequest(SamplingFields):
    prompt: str | list[str]
    echo: bool = False
    suffix: str | None = None


class EmbeddingRequest(OpenAIModel):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    ttl: int | None = Field(default=None, ge=1)
