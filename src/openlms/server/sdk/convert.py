"""Pure conversions between openlms's types and the SDK's wire shapes: model info, chat history,
prediction fragments and stats."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.types import GenerationStats, LoadedInstance, ModelDescriptor, ModelKind
from openlms.services.models import ModelSpecifier


def as_object(parameter: Any, name: str = "parameter") -> Mapping[str, Any]:
    if not isinstance(parameter, Mapping):
        raise InvalidRequestError(f"The {name} must be an object.", param=name)
    return parameter


def model_specifier(specifier: Any) -> ModelSpecifier:
    """The SDK's `ModelSpecifier`: `{type: query, query: {identifier?, path?, domain?, vision?}}` or
    `{type: instanceReference, instanceReference}`."""
    spec = as_object(specifier, "specifier")
    if spec.get("type") == "instanceReference":
        return ModelSpecifier(instance_reference=str(spec.get("instanceReference")))
    query = spec.get("query") if spec.get("type") == "query" else None
    if not isinstance(query, Mapping):
        raise InvalidRequestError("A model specifier must be a query or an instance reference.")
    text, domain = query.get("identifier") or query.get("path"), query.get("domain")
    return ModelSpecifier(
        query=str(text) if text else None,
        domain=None if domain is None else str(domain),
        vision=bool(query.get("vision")),
    )


def model_info(d: ModelDescriptor) -> dict[str, Any]:
    """A downloaded model (`ModelInfo`: `LlmInfo` or `EmbeddingModelInfo`)."""
    info: dict[str, Any] = {
        "type": d.kind.value,
        "modelKey": d.key,
        "format": d.format if d.format in _FORMATS else "gguf",
        "displayName": d.display_name,
        "path": d.rel_path,
        "sizeBytes": int(d.size_bytes),
        "maxContextLength": int(d.max_context_length or 0),
    }
    if d.params_string:
        info["paramsString"] = d.params_string
    if d.architecture:
        info["architecture"] = d.architecture
    if d.kind is ModelKind.LLM:
        info["vision"] = d.vision
        info["trainedForToolUse"] = d.trained_for_tool_use
    return info


_FORMATS = frozenset({"gguf", "safetensors", "onnx", "ggml", "mlx_placeholder", "torch_safetensors"})


def instance_info(instance: LoadedInstance) -> dict[str, Any]:
    """A loaded instance (`LlmInstanceInfo` / `EmbeddingModelInstanceInfo`)."""
    return {
        **model_info(instance.descriptor),
        "identifier": instance.identifier,
        "instanceReference": instance.reference,
        "contextLength": int(instance.context_length),
    }


# ---------------------------------------------------------------------------------------------------
# Chat history


# What a (non-image) file part becomes in the prompt: its text, or None to leave it out.
AttachFile = Callable[[Mapping[str, Any]], str | None]


def skip_files(_part: Mapping[str, Any]) -> str | None:
    return None


def history_messages(history: Any, attach: AttachFile = skip_files) -> list[dict[str, Any]]:
    """The SDK's typed chat history (`{"messages": [{role, content: [parts]}]}`) as the role/content
    messages (with OpenAI-style `tool_calls` and `tool` results) the chat templates take. Images are
    refused (no model openlms runs has vision); other files go through `attach`."""
    messages = history.get("messages") if isinstance(history, Mapping) else None
    if not isinstance(messages, list):
        raise InvalidRequestError("'history' must be {messages: [...]}.", param="history")
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        out.extend(_message(message, f"history.messages[{index}]", attach))
    return out


def _message(message: Any, where: str, attach: AttachFile) -> list[dict[str, Any]]:
    if not isinstance(message, Mapping):
        raise InvalidRequestError(f"{where} must be an object.", param=where)
    role, parts = message.get("role"), message.get("content")
    if isinstance(parts, str):
        parts = [{"type": "text", "text": parts}]
    if not isinstance(parts, list):
        raise InvalidRequestError(f"{where}.content must be a list of parts.", param=where)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, Mapping) else None
        here = f"{where}.content[{j}]"
        if kind == "text":
            texts.append(str(part.get("text") or ""))
        elif kind == "file":
            if part.get("fileType") == "image":
                raise InvalidRequestError(_image_error(part), param=here)
            text = attach(part)
            if text is not None:
                texts.append(text)
        elif kind == "toolCallRequest":
            calls.append(_call(part.get("toolCallRequest"), here))
        elif kind == "toolCallResult":
            results.append(
                {
                    "role": "tool",
                    "content": str(part.get("content") or ""),
                    "tool_call_id": part.get("toolCallId"),
                }
            )
        else:
            raise InvalidRequestError(f"{here} has an unknown content part type {kind!r}.", param=here)
    if results:
        return results
    entry: dict[str, Any] = {"role": role, "content": "".join(texts)}
    if calls:
        entry["tool_calls"] = calls
    return [entry]


def _image_error(part: Mapping[str, Any]) -> str:
    return (
        f"The image '{part.get('name', 'image')}' cannot be used: this model has no vision support. "
        "Use a vision model (one that lists 'vision' in its capabilities) for images."
    )


def _call(request: Any, where: str) -> dict[str, Any]:
    if not isinstance(request, Mapping) or not isinstance(request.get("name"), str):
        raise InvalidRequestError(f"{where}.toolCallRequest must have a 'name'.", param=where)
    arguments = request.get("arguments") or {}
    return {
        "id": str(request.get("id") or ""),
        "type": "function",
        "function": {"name": request["name"], "arguments": json.dumps(arguments)},
    }


# ---------------------------------------------------------------------------------------------------
# Prediction messages


def fragment(
    content: str, tokens: int, reasoning_type: str = "none", *, drafted: bool = False
) -> dict[str, Any]:
    return {
        "type": "fragment",
        "fragment": {
            "content": content,
            "tokensCount": tokens,
            "containsDrafted": drafted,
            "reasoningType": reasoning_type,
        },
    }


def tool_call_request(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "id": call_id, "name": name, "arguments": arguments}


def stats(s: GenerationStats, *, stop_reason: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stopReason": stop_reason or s.stop_reason.value,
        "tokensPerSecond": round(s.tokens_per_second, 3),
        "numGpuLayers": 0,
        "timeToFirstTokenSec": round(s.time_to_first_token_s, 4),
        "promptTokensCount": s.prompt_tokens,
        "predictedTokensCount": s.predicted_tokens,
        "totalTokensCount": s.total_tokens,
    }
    if s.draft_model_key:
        out["usedDraftModelKey"] = s.draft_model_key
        out["totalDraftTokensCount"] = s.draft_tokens
        out["acceptedDraftTokensCount"] = s.accepted_draft_tokens
        out["rejectedDraftTokensCount"] = s.rejected_draft_tokens
        out["ignoredDraftTokensCount"] = s.ignored_draft_tokens
    return out
