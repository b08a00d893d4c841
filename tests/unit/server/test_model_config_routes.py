"""Per-model settings over HTTP (GET|PUT|DELETE /api/v1/models/config), their load defaults, and the
prompt setup the prediction service reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from openlms.core.types import ContextOverflowPolicy, LoadConfig
from openlms.engine.fake import FakeBackend
from openlms.services.models import with_load_defaults
from openlms.services.params import PredictionParams
from openlms.store.model_config import LoadDefaults
from tests.unit.server.conftest import make_app

URL = "/api/v1/models/config"
REL = "acme/tiny-chat-GGUF/tiny-chat-F32.gguf"
TEMPLATE = {
    "type": "jinja",
    "jinjaPromptTemplate": {"template": "{% for m in messages %}[{{ m.content }}]{% endfor %}"},
    "stopStrings": ["[END]"],
}
CONFIG: dict[str, Any] = {
    "load": {"contextLength": 1536, "flashAttention": True},
    "prediction": {"promptTemplate": TEMPLATE, "contextOverflowPolicy": "truncateMiddle"},
}


async def test_get_put_get_delete(client: httpx.AsyncClient, home: Path) -> None:
    empty = await client.get(URL, params={"model": "tiny-chat"})
    assert empty.status_code == 200 and empty.json() == {"load": {}, "prediction": {}}

    put = await client.put(URL, params={"model": "tiny-chat"}, json=CONFIG)
    assert put.status_code == 200 and put.json() == CONFIG
    shown = (await client.get(URL, params={"model": "tiny-chat"})).json()
    assert shown["prediction"]["promptTemplate"] == TEMPLATE and shown == CONFIG
    stored = home / "openlms/model-config" / f"{REL}.json"
    assert json.loads(stored.read_text()) == CONFIG

    reset = await client.delete(URL, params={"model": "tiny-chat"})
    assert reset.json() == {"model": "tiny-chat", "reset": True} and not stored.exists()
    assert (await client.get(URL, params={"model": "tiny-chat"})).json() == {"load": {}, "prediction": {}}


async def test_unknown_model_is_a_404_in_the_usual_format(client: httpx.AsyncClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(method, URL, params={"model": "nope"}, json={})
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "model_not_found" and error["param"] == "model" and "nope" in error["message"]
    missing = await client.get(URL)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "query.model"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"load": {"contextLength": 5}}, "load.contextLength"),
        ({"prediction": {"promptTemplate": {"type": "raw"}}}, "prediction.promptTemplate.type"),
        (
            {
                "prediction": {
                    "promptTemplate": {"type": "jinja", "jinjaPromptTemplate": {"template": "{% if %}"}}
                }
            },
            "prediction.promptTemplate.jinjaPromptTemplate.template",
        ),
        (["not", "an", "object"], None),
    ],
)
async def test_invalid_configs_are_400_naming_the_field(
    client: httpx.AsyncClient, body: object, param: str | None
) -> None:
    response = await client.put(URL, params={"model": "tiny-chat"}, json=body)
    assert response.status_code == 400
    if param is not None:
        assert response.json()["error"]["param"] == param
    assert (await client.get(URL, params={"model": "tiny-chat"})).json() == {"load": {}, "prediction": {}}


async def test_writes_are_local_only(home: Path) -> None:
    app = make_app(home, FakeBackend())
    async with app.router.lifespan_context(app):
        remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=remote, base_url="http://localhost") as http:
            assert (await http.get(URL, params={"model": "tiny-chat"})).status_code == 200
            for method in ("PUT", "DELETE"):
                denied = await http.request(method, URL, params={"model": "tiny-chat"}, json=CONFIG)
                assert denied.status_code == 403 and "local machine" in denied.json()["error"]["message"]


async def test_a_corrupt_settings_file_is_a_clear_error_and_can_be_reset(
    client: httpx.AsyncClient, home: Path
) -> None:
    stored = home / "openlms/model-config" / f"{REL}.json"
    stored.parent.mkdir(parents=True)
    stored.write_text("{oops")
    broken = await client.get(URL, params={"model": "tiny-chat"})
    assert broken.status_code == 500 and str(stored) in broken.json()["error"]["message"]
    assert (await client.delete(URL, params={"model": "tiny-chat"})).json()["reset"] is True
    assert (await client.get(URL, params={"model": "tiny-chat"})).status_code == 200


async def _loaded_context(client: httpx.AsyncClient) -> dict[str, int]:
    models = (await client.get("/api/v1/models")).json()["models"]
    return {i["id"]: i["config"]["context_length"] for m in models for i in m.get("loaded_instances", [])}


async def test_loads_take_the_per_model_defaults_and_explicit_values_win(client: httpx.AsyncClient) -> None:
    await client.put(URL, params={"model": "tiny-chat"}, json=CONFIG)
    default = (await client.post("/api/v1/models/load", json={"model": "tiny-chat"})).json()
    assert default["config"]["context_length"] == 1536 and default["config"]["flash_attention"] is True
    explicit = (
        await client.post(
            "/api/v1/models/load", json={"model": "tiny-chat", "config": {"context_length": 1024}}
        )
    ).json()
    assert explicit["config"]["context_length"] == 1024 and explicit["config"]["flash_attention"] is True


async def test_a_jit_load_takes_the_per_model_defaults(client: httpx.AsyncClient) -> None:
    await client.put(URL, params={"model": "tiny-chat"}, json={"load": {"contextLength": 1280}})
    chat = await client.post(
        "/v1/chat/completions", json={"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]}
    )
    assert chat.status_code == 200
    assert (await _loaded_context(client)) == {"tiny-chat": 1280}


async def test_model_setup_reads_the_template_variables_and_policies(home: Path) -> None:
    (home / "models/acme/tiny-chat-GGUF/model.yaml").write_text(
        "customFields:\n  - key: enableThinking\n    defaultValue: true\n"
        "    effects:\n      - type: setJinjaVariable\n        variable: enable_thinking\n"
    )
    app = make_app(home, FakeBackend())
    models = app.state.openlms.models
    descriptor = await models.find_downloaded("tiny-chat")
    assert models.model_setup(descriptor) == (PredictionParams(), {"enable_thinking": True})

    prediction = dict(CONFIG["prediction"], reasoningParsing=False, customFields={"enableThinking": False})
    await models.put_model_config("tiny-chat", dict(CONFIG, prediction=prediction))
    setup = models.model_setup(descriptor)
    assert setup.params.template is not None and setup.params.template.to_json() == TEMPLATE
    assert setup.variables == {"enable_thinking": False}
    assert setup.params.overflow is ContextOverflowPolicy.TRUNCATE_MIDDLE
    assert setup.params.reasoning_parsing is False


def test_with_load_defaults_fills_only_unset_fields() -> None:
    defaults = LoadDefaults(context_length=8192, gpu="off", seed=7, try_mmap=False)
    merged = with_load_defaults(LoadConfig(context_length=2048, gpu=0.5), defaults)
    assert merged == LoadConfig(context_length=2048, gpu=0.5, seed=7, try_mmap=False)
    assert with_load_defaults(LoadConfig(), LoadDefaults()) == LoadConfig()
