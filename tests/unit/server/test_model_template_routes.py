"""`GET /api/v1/models/template`: the template a model uses without an override (what the app's prompt
template editor starts from): the GGUF's chat template, else the built-in one for its family, else none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from openlms.engine.fake import FakeBackend
from openlms.parsers.templates import builtin_source
from openlms.services.model_template import own_template
from openlms.store import ModelCatalog
from tests.support.tiny_gguf import CHATML, write_tiny_llama_gguf
from tests.unit.server.conftest import make_app

URL = "/api/v1/models/template"


@pytest.fixture
async def http(home: Path, fake: FakeBackend, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    folder = home / "models" / "acme" / "bare-GGUF"
    folder.mkdir(parents=True)
    write_tiny_llama_gguf(folder / "bare-llama-F32.gguf", chat_template=None, name="Bare Llama")
    app = make_app(home, fake)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


async def test_the_gguf_template(http: httpx.AsyncClient) -> None:
    response = await http.get(URL, params={"model": "tiny-chat"})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "tiny-chat" and body["source"] == "gguf" and body["builtin"] is None
    assert body["promptTemplate"] == {
        "type": "jinja",
        "jinjaPromptTemplate": {"template": CHATML},
        "stopStrings": [],
    }


async def test_a_model_without_one_has_none_and_an_override_does_not_change_what_is_shown(
    http: httpx.AsyncClient,
) -> None:
    body = (await http.get(URL, params={"model": "bare-llama"})).json()
    assert body == {"model": "bare-llama", "source": "none", "builtin": None, "promptTemplate": None}
    manual = {
        "type": "manual",
        "manualPromptTemplate": {"beforeUser": "U: ", "afterUser": "\n"},
        "stopStrings": [],
    }
    put = await http.put(
        "/api/v1/models/config",
        params={"model": "bare-llama"},
        json={"prediction": {"promptTemplate": manual}},
    )
    assert put.status_code == 200, put.text
    assert (
        await http.get(URL, params={"model": "bare-llama"})
    ).json() == body  # the model's own, not the override


def test_a_gemma_without_a_template_shows_the_builtin_one(home: Path) -> None:
    catalog = ModelCatalog(home / "models")
    llama = catalog.find("tiny-chat")
    assert llama is not None
    gemma = replace(llama, key="tiny-gemma", architecture="gemma3")
    shown = own_template(_NoMetadata(), gemma)  # type: ignore[arg-type]
    assert (shown.source, shown.builtin) == ("builtin", "gemma")
    assert shown.template is not None and shown.template.jinja == builtin_source("gemma")
    assert shown.to_json()["promptTemplate"]["stopStrings"] == ["<end_of_turn>"]


class _NoMetadata:
    def metadata(self, model: object) -> None:
        return None


async def test_errors_in_the_api_format(http: httpx.AsyncClient) -> None:
    missing = await http.get(URL, params={"model": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    no_model = await http.get(URL)
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "query.model"


async def test_apply_template_renders_an_unsaved_template(http: httpx.AsyncClient) -> None:
    """The editor's preview: `prompt_template` renders in place of the model's (nothing is saved)."""
    manual = {
        "type": "manual",
        "manualPromptTemplate": {"beforeUser": "U: ", "afterUser": "\n", "beforeAssistant": "A: "},
        "stopStrings": [],
    }
    body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}], "prompt_template": manual}
    response = await http.post("/api/v1/apply-template", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["prompt"] == "U: Hi\nA: "
    assert (await http.get("/api/v1/models/config", params={"model": "tiny-chat"})).json()["prediction"] == {}
    own = (await http.post("/api/v1/apply-template", json=body | {"prompt_template": None})).json()["prompt"]
    assert "<|im_start|>user" in own  # without it: the model's own template
    bad = await http.post("/api/v1/apply-template", json=body | {"prompt_template": {"type": "jinja"}})
    assert bad.status_code == 400 and bad.json()["error"]["param"].startswith("prompt_template")
