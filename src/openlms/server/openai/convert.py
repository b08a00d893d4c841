"""Pure conversions between OpenAI wire shapes and openlms's service/engine types."""

from __future__ import annotations

import base64
import secrets
import struct
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.types import GenerationStats, StopReason
from openlms.parsers.output.events import ParsedMessage
from openlms.server.openai.protocol import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    SamplingFields,
)
from openlms.services import generation as services
from openlms.services.generation import ChatRequest, OutputSpec
from openlms.services.overflow import Truncation
from openlms.services.params import PredictionParams
from openlms.services.reasoning import openai_effort
from openlms.services.structured import response_format_grammar

TRUNCATION_HEADER = "X-OpenLMS-Prompt-Truncated"

FINISH_REASONS = {
    StopReason.EOS: "stop",
    StopReason.STOP_STRING: "stop",
    StopReason.USER_STOPPED: "stop",
    StopReason.MAX_TOKENS: "length",
    StopReason.CONTEXT_LENGTH: "length",
    StopReason.TOOL_CALLS: "tool_calls",
}


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def to_params(req: SamplingFields) -> PredictionParams:
    """The settings the request sets (a field it leaves out stays unset: services resolve it)."""
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    return PredictionParams(
        temperature=req.temperature,
        top_k=req.top_k,
        top_p=req.top_p,
        min_p=req.min_p,
        repeat_penalty=req.repeat_penalty,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        logit_bias=_logit_bias(req.logit_bias),
        seed=req.seed,
        xtc_probability=req.xtc_probability,
        xtc_threshold=req.xtc_threshold,
        max_tokens=None if max_tokens is None or max_tokens < 0 else max_tokens,
        stop=_stops(req.stop),
        overflow=req.context_overflow_policy,
        structured=response_format_grammar(req.response_format),
        draft_model=req.draft_model,
    )


def chat_request(req: ChatCompletionRequest) -> ChatRequest:
    effort = openai_effort(req.reasoning_effort, "reasoning_effort")
    params = replace(to_params(req), tools=req.tools, tool_choice=req.tool_choice, reasoning_effort=effort)
    return ChatRequest(req.model, template_messages(req.messages, req.model), params, ttl_seconds=req.ttl)


def completion_request(req: CompletionRequest) -> services.CompletionRequest:
    return services.CompletionRequest(
        req.model, single_prompt(req.prompt), to_params(req), ttl_seconds=req.ttl
    )


def _stops(stop: str | list[str] | None) -> tuple[str, ...] | None:
    if stop is None:
        return None
    stops = [stop] if isinstance(stop, str) else stop  # services check the count (max_stop_strings)
    return tuple(s for s in stops if s)


def _logit_bias(bias: dict[str, float] | None) -> dict[int, float] | None:
    if bias is None:
        return None
    try:
        return {int(token): max(-100.0, min(100.0, float(value))) for token, value in bias.items()}
    except ValueError as exc:
        raise InvalidRequestError(
            "'logit_bias' keys must be token ids (integers as strings).", param="logit_bias"
        ) from exc


# Content parts that carry an image (chat completions, Responses, LM Studio 0.4, Anthropic).
IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})


def image_refused(model: str, where: str) -> InvalidRequestError:
    """The 400 for an image sent to a model openlms cannot show it to (none yet: the engine runs text
    only): never dropped silently, the model would answer about an image it never saw."""
    name = f"'{model}'" if model else "this model"
    return InvalidRequestError(
        f"{where} has an image, but {name} has no vision support in openlms, so it cannot read it. "
        "Load a vision model (one that lists 'vision' in its capabilities) for images, or send text only.",
        param=where,
    )


def template_messages(messages: Sequence[ChatMessage], model: str = "") -> list[dict[str, Any]]:
    """Messages as chat templates expect them: role + plain-text content (an image part is a 400)."""
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        content = message.content
        if isinstance(content, list):
            texts = []
            for part in content:
                if part.type in IMAGE_PARTS:
                    raise image_refused(model, f"messages[{index}].content")
                if part.type != "text" or part.text is None:
                    raise InvalidRequestError(
                        f"messages[{index}] has a '{part.type}' content part; this model accepts text only.",
                        param=f"messages[{index}].content",
                    )
                texts.append(part.text)
            content = "".join(texts)
        entry: dict[str, Any] = {"role": message.role, "content": content or ""}
        if message.name:
            entry["name"] = message.name
        if message.tool_calls:
            entry["tool_calls"] = message.tool_calls
        if message.function_call:
            entry["function_call"] = message.function_call
        if message.tool_call_id:
            entry["tool_call_id"] = message.tool_call_id
        out.append(entry)
    return out


def reasoning_field(output: OutputSpec) -> str:
    """Where an answer's reasoning goes: `reasoning` for formats with reasoning channels (gpt-oss, as
    OpenAI's own API names it), else `reasoning_content` (DeepSeek's name, which LM Studio uses)."""
    return "reasoning" if output.reasoning_in_channels else "reasoning_content"


def finish_reason(stats: GenerationStats, tool_calls: bool) -> str:
    """ "tool_calls" when the answer holds calls, unless a limit cut it short ("length": a call may be
    incomplete, so the client must not take it as finished)."""
    reason = FINISH_REASONS.get(stats.stop_reason, "stop")
    return "tool_calls" if tool_calls and reason != "length" else reason


def assistant_message(message: ParsedMessage, reasoning_field: str) -> dict[str, Any]:
    """The OpenAI `message`: content (None when the answer is only tool calls), reasoning, tool calls."""
    out: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.tool_calls and not message.content.strip():
        out["content"] = None
    if message.reasoning:
        out[reasoning_field] = message.reasoning
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    return out


def truncation_headers(truncation: Truncation | None) -> dict[str, str]:
    """Never a silent cut: a truncated prompt is named in a response header."""
    if truncation is None:
        return {}
    value = (
        f"policy={truncation.policy.value}; messages={truncation.dropped_messages}; "
        f"tokens={truncation.dropped_tokens}"
    )
    return {TRUNCATION_HEADER: value}


def usage(stats: GenerationStats) -> dict[str, Any]:
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.predicted_tokens,
        "total_tokens": stats.total_tokens,
        # prompt tokens not recomputed: the live KV cache's prefix, or a conversation's saved state
        "prompt_tokens_details": {"cached_tokens": stats.cached_prompt_tokens},
    }


def chat_completion(
    cid: str,
    model: str,
    created: int,
    message: ParsedMessage,
    stats: GenerationStats,
    reasoning_field: str = "reasoning_content",
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": assistant_message(message, reasoning_field),
                "logprobs": None,
                "finish_reason": finish_reason(stats, bool(message.tool_calls)),
            }
        ],
        "usage": usage(stats),
        "system_fingerprint": model,
    }


def chat_chunk(
    cid: str, model: str, created: int, delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(cid: str, model: str, created: int, stats: GenerationStats, obj: str) -> dict[str, Any]:
    return {
        "id": cid,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(stats),
    }


def text_completion(cid: str, model: str, created: int, text: str, stats: GenerationStats) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": FINISH_REASONS.get(stats.stop_reason, "stop"),
            }
        ],
        "usage": usage(stats),
        "system_fingerprint": model,
    }


def text_chunk(
    cid: str, model: str, created: int, text: str, finish_reason: str | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }


def embedding_texts(value: str | list[str] | list[int] | list[list[int]]) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not value:
        raise InvalidRequestError("'input' must not be empty.", param="input")
    texts = [v for v in value if isinstance(v, str)]
    if len(texts) == len(value):
        return texts
    raise InvalidRequestError(
        "'input' must be a string or an array of strings (token arrays are not supported).", param="input"
    )


def embeddings_response(
    model: str, vectors: list[list[float]], prompt_tokens: int, encoding: str
) -> dict[str, Any]:
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(vector, encoding)}
        for i, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


def now() -> int:
    return int(time.time())


def single_prompt(prompt: str | list[str]) -> str:
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1:
        return prompt[0]
    raise InvalidRequestError("'prompt' must be a string or an array of exactly one string.", param="prompt")
