"""Per-request counts, checked in services (the one place every surface goes through) before any work:
messages, tools, stop strings, images and each image's decoded size. Each refusal is a 400 that names
the limit and the setting that raises it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.settings import Settings
from openlms.services.params import PredictionParams

_IMAGE_PART_TYPES = frozenset({"image_url", "input_image", "image"})


def check_counts(
    settings: Settings, params: PredictionParams, messages: Sequence[Mapping[str, Any]] | None = None
) -> None:
    """Raise an InvalidRequestError for the first count over its limit (or a max_tokens of 0)."""
    if params.max_tokens == 0:  # not "no limit" (-1 or unset), and a prediction writes at least a token
        raise InvalidRequestError(
            "max_tokens must be at least 1 (or -1 / unset for no limit).", param="max_tokens"
        )
    if messages is not None:
        _at_most(len(messages), settings.max_messages, "messages", "max_messages", "messages")
    _at_most(len(params.tools or ()), settings.max_tools, "tools", "max_tools", "tools")
    stops = len(params.stop or ()) + len(params.tool_call_stops or ())
    _at_most(stops, settings.max_stop_strings, "stop strings", "max_stop_strings", "stop")
    if messages is not None:
        _check_images(settings, messages)


def _at_most(count: int, limit: int, what: str, setting: str, param: str) -> None:
    if count > limit:
        raise InvalidRequestError(
            f"The request has {count} {what}; at most {limit} are allowed (server setting {setting}).",
            param=param,
        )


def _check_images(settings: Settings, messages: Sequence[Mapping[str, Any]]) -> None:
    for count, (where, size) in enumerate(_images(messages), start=1):
        _at_most(count, settings.max_images, "images", "max_images", where)
        if size is not None and size > settings.max_image_bytes:
            raise InvalidRequestError(
                f"The image at {where} is {size} bytes; at most {settings.max_image_bytes} bytes are "
                "allowed (server setting max_image_bytes).",
                param=where,
            )


def _images(messages: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, int | None]]:
    """(where, decoded size if known) of each image part: OpenAI's `image_url` / `input_image`, an
    Anthropic-style `image`, or an SDK file part of type image."""
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list | tuple):
            continue
        for j, part in enumerate(content):
            if not isinstance(part, Mapping):
                continue
            where = f"messages[{i}].content[{j}]"
            if part.get("type") in _IMAGE_PART_TYPES:
                yield where, _image_size(part)
            elif part.get("type") == "file" and part.get("fileType") == "image":
                size = part.get("sizeBytes")
                yield where, size if isinstance(size, int) else None


def _image_size(part: Mapping[str, Any]) -> int | None:
    """Decoded bytes of a base64 image (a `data:` URL or an inline source), without decoding it."""
    source = part.get("image_url", part.get("source"))
    if isinstance(source, Mapping):
        source = source.get("url", source.get("data"))
    if not isinstance(source, str):
        return None
    data = source.split(",", 1)[1] if source.startswith("data:") and "," in source else source
    if source.startswith(("http://", "https://")):
        return None
    data = data.strip()
    return len(data) * 3 // 4 - data[-2:].count("=")
