"""The `parallel` load setting through the APIs (fake engine): `POST /api/v1/models/load` validates and
echoes it, `/api/v1/models` and `/api/v0/models` list it with running and queued predictions, the SDK's
`llm.load.numParallelSessions` sets it and `getLoadConfig` reports it; per-model defaults and JIT loads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from openlms.core.types import MAX_PARALLEL
from openlms.engine.fake import FakeBackend
from openlms.engine.runtime import DEFAULT_PARALLEL
from tests.unit.server.conftest import make_app
from tests.unit.server.test_sdk_protocol import connect, query

CHAT = "tiny-chat"
EMBED = "text-embedding-tiny-embed"
SDK_KEY = "llm.load.numParallelSessions"


async def loaded_config(http: httpx.AsyncClient, key: str = CHAT) -> dict[str, Any]:
    models = (await http.get("/api/v1/models")).json()["models"]
    [instance] = [i for m in models if m["key"] == key for i in m["loaded_instances"]]
    assert instance["active_requests"] == 0 and instance["queued_requests"] == 0
    config: dict[str, Any] = instance["config"]
    return config


async def test_load_echoes_parallel_and_lists_it(client: httpx.AsyncClient) -> None:
    loaded = await client.post("/api/v1/models/load", json={"model": CHAT, "config": {"parallel": 2}})
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["config"]["parallel"] == 2
    assert (await loaded_config(client))["parallel"] == 2
    v0 = (await client.get(f"/api/v0/models/{CHAT}")).json()
    assert (v0["parallel"], v0["active_requests"], v0["queued_requests"]) == (2, 0, 0)
    [listed] = [m for m in (await client.get("/api/v0/models")).json()["data"] if m["id"] == CHAT]
    assert listed["parallel"] == 2
    assert all(
        "parallel" not in m for m in (await client.get("/api/v0/models")).json()["data"] if m["id"] != CHAT
    )


async def test_a_load_without_parallel_reports_the_engine_default(client: httpx.AsyncClient) -> None:
    loaded = await client.post("/api/v1/models/load", json={"model": CHAT})
    assert loaded.json()["config"]["parallel"] == DEFAULT_PARALLEL == 4


@pytest.mark.parametrize("bad", [0, -3, MAX_PARALLEL + 1, 2.5, "four"])
async def test_parallel_out_of_range_is_a_400_naming_the_field(
    client: httpx.AsyncClient, bad: object
) -> None:
    response = await client.post("/api/v1/models/load", json={"model": CHAT, "config": {"parallel": bad}})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "config.parallel" and "config.parallel" in error["message"]
    assert (await client.get("/api/v1/models")).json()["models"][0]["loaded_instances"] == []


async def test_a_per_model_default_applies_to_api_and_jit_loads(client: httpx.AsyncClient) -> None:
    saved = await client.put(f"/api/v1/models/config?model={CHAT}", json={"load": {"parallel": 3}})
    assert saved.status_code == 200, saved.text
    assert saved.json()["load"] == {"parallel": 3}
    # JIT: a chat request loads the model with its per-model defaults
    chat = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]}
    assert (await client.post("/v1/chat/completions", json=chat)).status_code == 200
    assert (await loaded_config(client))["parallel"] == 3
    await client.post("/api/v1/models/unload", json={"instance_id": CHAT})
    # an explicit value wins over the default
    await client.post("/api/v1/models/load", json={"model": CHAT, "config": {"parallel": 1}})
    assert (await loaded_config(client))["parallel"] == 1


async def test_a_per_model_default_out_of_range_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.put(f"/api/v1/models/config?model={CHAT}", json={"load": {"parallel": 65}})
    assert response.status_code == 400 and response.json()["error"]["param"] == "load.parallel"


async def test_embedding_models_list_no_parallel(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v1/models/load", json={"model": EMBED})).status_code == 200
    assert "parallel" not in await loaded_config(client, EMBED)
    assert "parallel" not in (await client.get(f"/api/v0/models/{EMBED}")).json()


@pytest.fixture
def sdk(home: Path, fake: FakeBackend) -> Iterator[Any]:
    with TestClient(make_app(home, fake)) as app_client:
        yield from connect(app_client, "llm")


def stack(**fields: Any) -> dict[str, Any]:
    kv = [{"key": key, "value": value} for key, value in fields.items()]
    return {"layers": [{"layerName": "apiOverride", "config": {"fields": kv}}]}


def test_the_sdk_load_key_sets_parallel_and_get_load_config_reports_it(sdk: Any) -> None:
    frames = sdk.channel("loadModel", {"modelKey": CHAT, "loadConfigStack": stack(**{SDK_KEY: 2})})
    assert frames[-1]["type"] == "channelClose", frames
    fields = {
        f["key"]: f["value"]
        for f in sdk.call("getLoadConfig", {"specifier": query(CHAT)})["result"]["fields"]
    }
    assert fields[SDK_KEY] == 2 and fields["llm.load.useUnifiedKvCache"] is True


def test_the_sdk_get_or_load_without_the_key_reports_the_default(sdk: Any) -> None:
    frames = sdk.channel("getOrLoad", {"identifier": CHAT, "loadConfigStack": {"layers": []}})
    assert frames[-1]["type"] == "channelClose", frames
    fields = {
        f["key"]: f["value"]
        for f in sdk.call("getLoadConfig", {"specifier": query(CHAT)})["result"]["fields"]
    }
    assert fields[SDK_KEY] == DEFAULT_PARALLEL


@pytest.mark.parametrize("bad", [0, MAX_PARALLEL + 1, "2"])
def test_the_sdk_load_key_out_of_range_is_a_channel_error_naming_it(sdk: Any, bad: object) -> None:
    frame = sdk.channel("loadModel", {"modelKey": CHAT, "loadConfigStack": stack(**{SDK_KEY: bad})})[-1]
    assert frame["type"] == "channelError"
    assert SDK_KEY in frame["error"]["title"] and frame["error"]["errorData"]["param"] == SDK_KEY
