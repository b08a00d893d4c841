"""The one resolver of a prediction's settings (request > preset > the model's own > the server's), and
each protocol's conversion: what a client leaves out stays unset, what it sets is kept."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from openlms.core.settings import Settings
from openlms.core.types import ContextOverflowPolicy, SamplingParams
from openlms.parsers.templates import PromptTemplateSpec
from openlms.server.openai import convert
from openlms.server.openai.protocol import ChatCompletionRequest, CompletionRequest
from openlms.server.sdk.kvconfig import client_config
from openlms.services.params import PredictionParams, resolve

SERVER = Settings(
    context_overflow_policy=ContextOverflowPolicy.STOP_AT_LIMIT, separate_reasoning_content=False
)
NONE = PredictionParams()
TEMPLATE = PromptTemplateSpec.from_json(
    {"type": "jinja", "jinjaPromptTemplate": {"template": "{{ messages[0]['content'] }}"}}
)


def test_nothing_set_gives_the_server_defaults() -> None:
    r = resolve(NONE, None, NONE, SERVER)
    assert r.sampling == SamplingParams()  # LM Studio's sampling defaults
    assert r.overflow is ContextOverflowPolicy.STOP_AT_LIMIT and r.reasoning_parsing is False
    assert (r.max_tokens, r.stop, r.tool_call_stops, r.structured, r.tools, r.tool_choice) == (
        None,
        (),
        (),
        None,
        None,
        None,
    )
    assert (r.template, r.system_prompt, r.draft_model, r.num_draft_tokens) == (None, None, None, None)
    assert (r.min_draft_length, r.min_continue_probability) == (0, 0.75)


def test_server_settings_are_the_last_layer() -> None:
    server = Settings(
        context_overflow_policy=ContextOverflowPolicy.ROLLING_WINDOW, separate_reasoning_content=True
    )
    r = resolve(NONE, None, NONE, server)
    assert r.overflow is ContextOverflowPolicy.ROLLING_WINDOW and r.reasoning_parsing is True


@pytest.mark.parametrize(
    ("field", "request_value", "preset_value", "model_value"),
    [
        ("overflow", ContextOverflowPolicy.TRUNCATE_MIDDLE, ContextOverflowPolicy.ROLLING_WINDOW, None),
        ("reasoning_parsing", False, True, True),
        (
            "template",
            TEMPLATE,
            None,
            PromptTemplateSpec.from_json({"type": "manual", "manualPromptTemplate": {}}),
        ),
        ("temperature", 0.1, 0.5, 0.9),
        ("max_tokens", 5, 50, 500),
        ("stop", ("A",), ("B",), ("C",)),
        ("system_prompt", "request", "preset", "model"),
        ("draft_model", "d1", "d2", "d3"),
    ],
)
def test_each_layer_wins_over_the_ones_below(
    field: str, request_value: Any, preset_value: Any, model_value: Any
) -> None:
    def layer(value: Any) -> PredictionParams:
        return PredictionParams(**{field: value})

    def got(request: PredictionParams, preset: PredictionParams | None, model: PredictionParams) -> Any:
        r = resolve(request, preset, model, SERVER)
        return r.sampling.temperature if field == "temperature" else getattr(r, field)

    # request > preset > model
    assert got(layer(request_value), layer(preset_value), layer(model_value)) == request_value
    if preset_value is not None:
        assert got(NONE, layer(preset_value), layer(model_value)) == preset_value
    if model_value is not None:
        assert got(NONE, None, layer(model_value)) == model_value
        assert got(NONE, NONE, layer(model_value)) == model_value


def test_fields_are_resolved_one_by_one() -> None:
    request = PredictionParams(temperature=0.2)
    preset = PredictionParams(temperature=0.9, top_k=3, system_prompt="Be brief.")
    model = PredictionParams(top_k=7, top_p=0.5, overflow=ContextOverflowPolicy.TRUNCATE_MIDDLE)
    r = resolve(request, preset, model, SERVER)
    assert (r.sampling.temperature, r.sampling.top_k, r.sampling.top_p) == (0.2, 3, 0.5)
    assert r.sampling.min_p == SamplingParams().min_p
    assert r.system_prompt == "Be brief." and r.overflow is ContextOverflowPolicy.TRUNCATE_MIDDLE


def test_a_model_tool_choice_applies_only_to_requests_with_tools() -> None:
    model = PredictionParams(tool_choice="required")
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert resolve(PredictionParams(tools=tools), None, model, SERVER).tool_choice == "required"
    assert (
        resolve(PredictionParams(tools=tools, tool_choice="auto"), None, model, SERVER).tool_choice == "auto"
    )
    assert resolve(NONE, None, model, SERVER).tool_choice is None
    # the request's own choice is kept without tools (services then refuse it clearly)
    assert resolve(PredictionParams(tool_choice="required"), None, NONE, SERVER).tool_choice == "required"


def test_stops_join_stop_strings_and_tool_call_stop_strings() -> None:
    r = resolve(PredictionParams(stop=("END", "X"), tool_call_stops=("X", "CALL")), None, NONE, SERVER)
    assert r.stops == ("END", "X", "CALL")


def test_draft_settings_resolve_with_lm_studio_defaults() -> None:
    r = resolve(PredictionParams(draft_model="small"), PredictionParams(num_draft_tokens=4), NONE, SERVER)
    assert (r.draft_model, r.num_draft_tokens, r.min_draft_length, r.min_continue_probability) == (
        "small",
        4,
        0,
        0.75,
    )


# ---------------------------------------------------------------------------------------------------
# Each protocol's conversion: unset stays unset


def _set_fields(params: PredictionParams) -> dict[str, Any]:
    return {f.name: getattr(params, f.name) for f in fields(params) if getattr(params, f.name) is not None}


def test_openai_request_without_settings_sets_nothing() -> None:
    chat = convert.chat_request(
        ChatCompletionRequest.model_validate({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    )
    assert _set_fields(chat.params) == {}
    completion = convert.completion_request(CompletionRequest.model_validate({"model": "m", "prompt": "x"}))
    assert _set_fields(completion.params) == {} and completion.prompt == "x"


def test_openai_request_keeps_what_it_sets() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0,
        "presence_penalty": 0.5,
        "max_completion_tokens": 9,
        "max_tokens": 100,
        "stop": "END",
        "seed": 3,
        "contextOverflowPolicy": "rollingWindow",
        "tool_choice": "none",
        "draft_model": "small",
        "ttl": 60,
    }
    chat = convert.chat_request(ChatCompletionRequest.model_validate(body))
    assert _set_fields(chat.params) == {
        "temperature": 0,
        "presence_penalty": 0.5,
        "max_tokens": 9,  # max_completion_tokens wins over max_tokens
        "stop": ("END",),
        "seed": 3,
        "overflow": ContextOverflowPolicy.ROLLING_WINDOW,
        "tool_choice": "none",
        "draft_model": "small",
    }
    assert chat.ttl_seconds == 60 and chat.preset is None


def test_openai_max_tokens_minus_one_means_unset() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}
    assert convert.chat_request(ChatCompletionRequest.model_validate(body)).params.max_tokens is None


def test_sdk_empty_stack_sets_nothing_and_unchecked_fields_stay_unset() -> None:
    assert _set_fields(client_config({"layers": []}).params) == {}
    stack = {
        "layers": [
            {
                "layerName": "apiOverride",
                "config": {
                    "fields": [
                        {"key": "llm.prediction.temperature", "value": 0.3},
                        {"key": "llm.prediction.topPSampling", "value": {"checked": False, "value": 0.1}},
                        {"key": "llm.prediction.maxPredictedTokens", "value": {"checked": True, "value": 7}},
                    ]
                },
            }
        ]
    }
    assert _set_fields(client_config(stack).params) == {"temperature": 0.3, "max_tokens": 7}
