"""Restoring the loaded models on start (`restore_loaded_models`): the real app over the fake engine."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from openlms.core.settings import Settings
from openlms.core.types import LoadConfig
from openlms.engine.fake import FakeBackend
from openlms.engine.manager import InstanceManager
from openlms.services.models import ModelService
from openlms.services.restore import ModelRestorer, SavedModel, dumps, loads
from openlms.store import ModelCatalog
from tests.unit.server.conftest import make_app


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield http


async def loaded(http: httpx.AsyncClient, *, count: int) -> list[dict[str, object]]:
    """The loaded instances once `count` are there (the restore runs in the background)."""
    for _ in range(500):
        models = (await http.get("/api/v1/models")).json()["models"]
        instances = [i for m in models for i in m["loaded_instances"] if i["status"] != "loading"]
        if len(instances) >= count:
            return instances
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} loaded instances, got {instances}")


def saved_file(home: Path) -> Path:
    return Settings(home=home).loaded_models_file


async def test_loaded_models_come_back_with_their_settings(home: Path, fake: FakeBackend) -> None:
    async with serving(make_app(home, fake, restore_loaded_models=True)) as http:
        body = {"model": "tiny-chat", "identifier": "chat-a", "ttl": 900, "config": {"context_length": 1024}}
        assert (await http.post("/api/v1/models/load", json=body)).status_code == 200
        await http.post("/api/v1/models/load", json={"model": "text-embedding-tiny-embed"})
        await http.post("/api/v1/models/load", json={"model": "tiny-chat"})
        await http.post("/api/v1/models/unload", json={"instance_id": "tiny-chat"})
        # A JIT load is not restored: the next request brings it back by itself.
        chat = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}
        assert (await http.post("/v1/chat/completions", json=chat)).status_code == 200
    saved = loads(saved_file(home).read_text())
    assert [(s.identifier, s.model_key) for s in saved] == [
        ("chat-a", "tiny-chat"),
        ("text-embedding-tiny-embed", "text-embedding-tiny-embed"),
    ]

    async with serving(make_app(home, FakeBackend(), restore_loaded_models=True)) as http:
        instances = await loaded(http, count=2)
        by_id = {i["id"]: i for i in instances}
        assert set(by_id) == {"chat-a", "text-embedding-tiny-embed"}
        assert by_id["chat-a"]["config"]["context_length"] == 1024  # type: ignore[index]


async def test_nothing_is_saved_or_restored_when_the_setting_is_off(home: Path, fake: FakeBackend) -> None:
    async with serving(make_app(home, fake)) as http:
        await http.post("/api/v1/models/load", json={"model": "tiny-chat"})
    assert not saved_file(home).exists()
    saved_file(home).parent.mkdir(parents=True, exist_ok=True)
    saved_file(home).write_text(dumps([SavedModel("tiny-chat", "tiny-chat", LoadConfig())]))
    async with serving(make_app(home, fake)) as http:
        await asyncio.sleep(0.05)
        assert (await http.get("/api/v0/models")).status_code == 200
        models = (await http.get("/api/v1/models")).json()["models"]
        assert all(m["loaded_instances"] == [] for m in models)


async def test_a_missing_model_is_skipped_with_a_warning(
    home: Path, fake: FakeBackend, caplog: pytest.LogCaptureFixture
) -> None:
    entries = [
        SavedModel("gone", "acme/deleted-model", LoadConfig(context_length=512)),
        SavedModel("tiny-chat", "tiny-chat", LoadConfig(context_length=768), ttl_seconds=60.0),
    ]
    saved_file(home).parent.mkdir(parents=True, exist_ok=True)
    saved_file(home).write_text(dumps(entries))
    with caplog.at_level(logging.WARNING, logger="openlms.server"):
        async with serving(make_app(home, fake, restore_loaded_models=True)) as http:
            (instance,) = await loaded(http, count=1)
            assert instance["id"] == "tiny-chat"
            assert instance["config"]["context_length"] == 768  # type: ignore[index]
    assert "not restoring gone: model acme/deleted-model is no longer downloaded" in caplog.text
    assert [s.identifier for s in loads(saved_file(home).read_text())] == ["tiny-chat"]


async def test_a_failing_load_does_not_stop_the_server(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    saved_file(home).parent.mkdir(parents=True, exist_ok=True)
    saved_file(home).write_text(dumps([SavedModel("tiny-chat", "tiny-chat", LoadConfig())]))
    with caplog.at_level(logging.WARNING, logger="openlms.server"):
        async with serving(make_app(home, FakeBackend(fail_load=True), restore_loaded_models=True)) as http:
            for _ in range(200):
                if "could not restore tiny-chat" in caplog.text:
                    break
                await asyncio.sleep(0.01)
            assert (await http.get("/lmstudio-greeting")).json() == {"lmstudio": True}
    assert "could not restore tiny-chat (tiny-chat): fake backend refused" in caplog.text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        "[]",
        '{"models": 3}',
        json.dumps(
            {"models": [1, {"identifier": "x"}, {"identifier": "x", "modelKey": "k", "ttlSeconds": -1}]}
        ),
        json.dumps({"models": [{"identifier": "x", "modelKey": "k", "loadConfig": {"bogus": 1}}]}),
    ],
)
def test_a_malformed_file_restores_nothing_bad(text: str) -> None:
    restored = loads(text)
    assert all(isinstance(s, SavedModel) for s in restored)
    assert [s.identifier for s in restored] == (["x"] if "bogus" in text else [])


def test_round_trip_keeps_the_load_settings() -> None:
    config = LoadConfig(
        context_length=2048, gpu="off", flash_attention=True, k_cache_type="q8_0", seed=7, parallel=2
    )
    saved = [SavedModel("a", "k", config, 120.0), SavedModel("b", "k", LoadConfig())]
    assert loads(dumps(saved)) == saved


async def test_a_model_unloaded_by_its_ttl_leaves_the_saved_list(home: Path, fake: FakeBackend) -> None:
    now = [1000.0]
    settings = Settings(home=home, restore_loaded_models=True)
    manager = InstanceManager(fake, clock=lambda: now[0])
    models = ModelService(settings, ModelCatalog(settings.resolved_models_dir), manager)
    restorer = ModelRestorer(settings, models, watch_interval_s=0.01)
    models.loaded_listeners.append(restorer.save)
    restorer.start()
    try:
        await models.load("tiny-chat", LoadConfig(), ttl_seconds=5)
        await models.load("tiny-chat", LoadConfig(), identifier="kept")
        assert [s.identifier for s in loads(saved_file(home).read_text())] == ["tiny-chat", "kept"]
        now[0] += 10
        assert await manager.expire_idle() == ["tiny-chat"]  # the engine's reaper, not the service
        for _ in range(500):
            if [s.identifier for s in loads(saved_file(home).read_text())] == ["kept"]:
                break
            await asyncio.sleep(0.01)
        assert [s.identifier for s in loads(saved_file(home).read_text())] == ["kept"]
    finally:
        await restorer.close()
        await manager.close()
