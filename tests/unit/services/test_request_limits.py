"""Per-request counts (messages, tools, stop strings, images, image size) and lone surrogates."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.core.settings import Settings
from openlms.parsers.unicode import check_unicode, surrogate_path
from openlms.services.params import PredictionParams
from openlms.services.request_limits import check_counts

TOOL = {"type": "function", "function": {"name": "f"}}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path, max_messages=3, max_tools=2, max_stop_strings=2, max_images=1, max_image_bytes=1024
    )


def _image(size: int) -> dict[str, Any]:
    data = base64.b64encode(b"x" * size).decode()
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}


def test_within_limits_passes(settings: Settings) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, _image(1024)]},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]
    check_counts(settings, PredictionParams(tools=[TOOL] * 2, stop=("a", "b")), messages)


@pytest.mark.parametrize(
    ("params", "messages", "setting", "param"),
    [
        (PredictionParams(), [{"role": "user", "content": "hi"}] * 4, "max_messages", "messages"),
        (PredictionParams(tools=[TOOL] * 3), [], "max_tools", "tools"),
        (PredictionParams(stop=("a", "b", "c")), [], "max_stop_strings", "stop"),
        (PredictionParams(stop=("a",), tool_call_stops=("b", "c")), [], "max_stop_strings", "stop"),
        (
            PredictionParams(),
            [{"role": "user", "content": [_image(10), _image(10)]}],
            "max_images",
            "messages[0].content[1]",
        ),
        (
            PredictionParams(),
            [{"role": "user", "content": [{"type": "text", "text": "x"}, _image(1025)]}],
            "max_image_bytes",
            "messages[0].content[1]",
        ),
        (
            PredictionParams(),
            [{"role": "user", "content": [{"type": "file", "fileType": "image", "sizeBytes": 5000}]}],
            "max_image_bytes",
            "messages[0].content[0]",
        ),
    ],
)
def test_over_a_limit_is_a_request_error_naming_the_setting(
    settings: Settings, params: PredictionParams, messages: list[dict[str, Any]], setting: str, param: str
) -> None:
    with pytest.raises(InvalidRequestError, match=setting) as info:
        check_counts(settings, params, messages)
    assert info.value.param == param


def test_lone_surrogates_are_found_by_path() -> None:
    messages = [
        {"role": "user", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "a\ud800"}]},
    ]
    assert surrogate_path(messages, "messages") == "messages[1].content[0].text"
    assert surrogate_path({"k\udfff": 1}, "tools") == "tools"
    assert surrogate_path(["emoji \U0001f600", "\ufffd", {"a": [1, None, 2.5]}], "x") is None
    with pytest.raises(InvalidRequestError, match="lone UTF-16 surrogate") as info:
        check_unicode("x\udc00", "prompt")
    assert info.value.param == "prompt"


def test_max_tokens_zero_is_refused_not_unlimited() -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_counts(Settings(), PredictionParams(max_tokens=0))
    assert info.value.param == "max_tokens"
    check_counts(Settings(), PredictionParams(max_tokens=1))
    check_counts(Settings(), PredictionParams())
