"""The reasoning switch: one effort (off|low|medium|high|on) set as the variables the template reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from openlms.core.errors import InvalidRequestError
from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.parsers.templates import ChatTemplate, PromptTemplateSpec
from openlms.services.params import PredictionParams, resolve
from openlms.services.reasoning import check_effort, reasoning_variables, template_reads
from tests.unit.server.conftest import home, make_app, model_files  # noqa: F401 (fixtures)

QWEN = (
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
    "{% if enable_thinking is defined and enable_thinking is false %}<think></think>{% endif %}"
    "[thinking={{ enable_thinking }}]"
)
GPT_OSS = (
    "{% for m in messages %}{{ m.content }}{% endfor %}[effort={{ reasoning_effort | default('none') }}]"
)
PLAIN = "{% for thinking in messages %}{{ thinking.content }}{% endfor %}"  # a loop name is no switch
USER = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("effort", "thinking"), [("off", False), ("low", True), ("medium", True), ("high", True), ("on", True)]
)
def test_a_boolean_switch_is_off_only_for_off(effort: str, thinking: bool) -> None:
    assert reasoning_variables(effort, QWEN, {}) == {"enable_thinking": thinking}


@pytest.mark.parametrize(
    ("effort", "level"),
    [("off", "low"), ("low", "low"), ("medium", "medium"), ("high", "high"), ("on", "medium")],
)
def test_an_effort_switch_gets_a_level(effort: str, level: str) -> None:
    assert reasoning_variables(effort, GPT_OSS, {}) == {"reasoning_effort": level}


def test_unset_or_no_switch_leaves_the_variables_alone(caplog: pytest.LogCaptureFixture) -> None:
    mine = {"other": 1}
    assert reasoning_variables(None, QWEN, mine) is mine
    assert template_reads(PLAIN) == frozenset()
    with caplog.at_level("DEBUG", logger="openlms.services.reasoning"):
        assert reasoning_variables("off", PLAIN, mine, "acme/plain") is mine
    assert "acme/plain has no reasoning switch" in caplog.text


def test_a_custom_field_variable_gets_the_same_mapping() -> None:
    # model.yaml: enableThinking -> enable_thinking (default true, per-model value false); the template
    # itself may read it under another path (a macro, an include): the variable is what counts
    custom = {"enable_thinking": False, "other": "kept"}
    assert reasoning_variables("high", "{{ messages }}", custom) == {"enable_thinking": True, "other": "kept"}
    assert reasoning_variables(None, "{{ messages }}", custom) == custom


def test_the_rendered_prompt_follows_the_effort() -> None:
    template = ChatTemplate(QWEN)
    off = template.render(USER, variables=reasoning_variables("off", QWEN, {}))
    on = template.render(USER, variables=reasoning_variables("on", QWEN, {}))
    assert off.endswith("<think></think>[thinking=False]") and on.endswith("[thinking=True]")
    assert "<think>" not in on
    gpt = ChatTemplate(GPT_OSS).render(USER, variables=reasoning_variables("high", GPT_OSS, {}))
    assert gpt.endswith("[effort=high]")


def test_efforts_are_checked_by_name() -> None:
    assert check_effort("medium", "reasoning.effort") == "medium" and check_effort(None, "x") is None
    with pytest.raises(InvalidRequestError) as err:
        check_effort("max", "reasoning.effort")
    assert err.value.param == "reasoning.effort" and "off, low, medium, high, on" in err.value.message


def test_effort_resolves_request_over_preset() -> None:
    server = Settings()
    preset = PredictionParams(reasoning_effort="high")
    assert resolve(PredictionParams(), None, PredictionParams(), server).reasoning_effort is None
    assert resolve(PredictionParams(), preset, PredictionParams(), server).reasoning_effort == "high"
    request = PredictionParams(reasoning_effort="off")
    assert resolve(request, preset, PredictionParams(), server).reasoning_effort == "off"


@pytest.fixture
async def app(home: Path) -> AsyncIterator[FastAPI]:  # noqa: F811
    app = make_app(home, FakeBackend())
    async with app.router.lifespan_context(app):
        yield app


def _params(source: str, effort: str | None) -> PredictionParams:
    spec = PromptTemplateSpec.from_json({"type": "jinja", "jinjaPromptTemplate": {"template": source}})
    return PredictionParams(template=spec, reasoning_effort=effort)


async def test_the_predictor_applies_the_effort_when_it_builds_the_prompt(app: FastAPI) -> None:
    predictor = app.state.openlms.predictor
    off = await predictor.apply_template("tiny-chat", USER, _params(QWEN, "off"))
    unset = await predictor.apply_template("tiny-chat", USER, _params(QWEN, None))
    assert off.prompt.endswith("<think></think>[thinking=False]") and unset.prompt.endswith("[thinking=]")
    gpt = await predictor.apply_template("tiny-chat", USER, _params(GPT_OSS, "on"))
    assert gpt.prompt.endswith("[effort=medium]")


async def test_a_model_yaml_switch_is_overridden_by_the_effort(app: FastAPI, home: Path) -> None:  # noqa: F811
    (home / "models/acme/tiny-chat-GGUF/model.yaml").write_text(
        "customFields:\n  - key: enableThinking\n    defaultValue: true\n"
        "    effects:\n      - type: setJinjaVariable\n        variable: enable_thinking\n"
    )
    predictor = app.state.openlms.predictor
    default = await predictor.apply_template("tiny-chat", USER, _params(QWEN, None))
    off = await predictor.apply_template("tiny-chat", USER, _params(QWEN, "off"))
    assert default.prompt.endswith("[thinking=True]") and off.prompt.endswith("[thinking=False]")
