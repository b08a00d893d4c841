"""/metrics: the engine's usage per loaded model (predictions running/queued, slots, KV cache cells) and
the worker crash and restart counters, parsed with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from starlette.testclient import TestClient

from openlms.core.types import EngineUsage, LoadConfig, ModelDescriptor, ModelKind
from openlms.engine.fake import FakeBackend
from openlms.server.metrics.collector import LoadedCollector, WorkerCollector
from tests.unit.server.conftest import make_app
from tests.unit.server.test_metrics import CHAT, LOADED, openai_client, parse, scrape, value


@dataclass
class Loaded:
    """A loaded instance as the server sees it (core.types.LoadedInstance)."""

    identifier: str
    usage: EngineUsage
    active: int = 0
    context_length: int = 4096
    reference: str = "r"
    descriptor: ModelDescriptor = field(
        default_factory=lambda: ModelDescriptor(
            "m", Path("/m.gguf"), "p/m/m.gguf", "p", ModelKind.LLM, "m", 1
        )
    )
    load_config: LoadConfig = field(default_factory=LoadConfig)
    jit: bool = False
    ttl_seconds: float | None = None
    unloading: bool = False
    status: str = "generating"

    @property
    def queued(self) -> int:
        return self.usage.queued


def test_usage_of_each_loaded_model() -> None:
    registry = CollectorRegistry(auto_describe=False)
    busy = Loaded("chat", EngineUsage(running=3, queued=2, parallel=4, kv_used=700, kv_size=4096), active=5)
    idle = Loaded("chat:2", EngineUsage(parallel=1, kv_size=2048))
    registry.register(LoadedCollector(lambda: [busy, idle]))
    samples = parse(generate_latest(registry).decode())
    expected = {
        "openlms_predictions_running": (3, 0),
        "openlms_predictions_queued": (2, 0),
        "openlms_parallel_slots": (4, 1),
        "openlms_kv_cache_used_cells": (700, 0),
        "openlms_kv_cache_size_cells": (4096, 2048),
        "openlms_requests_processing": (3, 0),
        "openlms_requests_queued": (2, 0),
    }
    for name, (first, second) in expected.items():
        assert (value(samples, name, model="chat"), value(samples, name, model="chat:2")) == (
            first,
            second,
        ), name
    assert value(samples, "openlms_models_loaded") == 2


def test_worker_counters() -> None:
    registry = CollectorRegistry(auto_describe=False)
    crashes = {"qwen": 2, "smollm": 1}
    registry.register(WorkerCollector(lambda: crashes, lambda: {"qwen": 1}))
    samples = parse(generate_latest(registry).decode())
    assert value(samples, "openlms_worker_crashes_total", model="qwen") == 2
    assert value(samples, "openlms_worker_crashes_total", model="smollm") == 1
    assert value(samples, "openlms_worker_restarts_total", model="qwen") == 1
    assert value(samples, "openlms_worker_restarts_total", model="smollm") == 0


@pytest.fixture
def client(home: Path, fake: FakeBackend) -> Iterator[TestClient]:
    with TestClient(make_app(home, fake)) as test_client:
        yield test_client


def test_the_app_reports_usage_and_the_managers_crash_counts(client: TestClient) -> None:
    openai_client(client).chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "hi"}])
    samples = scrape(client)
    assert value(samples, "openlms_parallel_slots", model=LOADED) >= 1
    assert value(samples, "openlms_predictions_running", model=LOADED) == 0
    assert not [k for k in samples if k[0] == "openlms_worker_crashes_total"]
    manager = client.app.state.openlms.models.manager  # type: ignore[attr-defined]
    manager.crash_counts["tiny-chat"] += 1  # as a crashed worker leaves it
    samples = scrape(client)
    assert value(samples, "openlms_worker_crashes_total", model="tiny-chat") == 1
