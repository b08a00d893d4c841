"""InstanceManager with the fake backend: identifiers, lookup, JIT, TTL, auto-evict, busy protection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openlms.core.errors import IdentifierInUseError, ModelLoadError, ModelNotFoundError
from openlms.core.types import Done, Fragment, GenerationRequest, ModelDescriptor, ModelKind
from openlms.engine.fake import FakeBackend
from openlms.engine.manager import InstanceManager


def descriptor(key: str, kind: ModelKind = ModelKind.LLM, error: str | None = None) -> ModelDescriptor:
    return ModelDescriptor(
        key=key,
        path=Path(f"/models/pub/{key}-GGUF/{key}.gguf"),
        rel_path=f"pub/{key}-GGUF/{key}.gguf",
        publisher="pub",
        kind=kind,
        display_name=key,
        size_bytes=1,
        error=error,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_identifiers_and_lookup() -> None:
    manager = InstanceManager(FakeBackend())
    a = await manager.load(descriptor("alpha"))
    a2 = await manager.load(descriptor("alpha"))
    custom = await manager.load(descriptor("alpha"), identifier="my-alpha")
    assert [a.identifier, a2.identifier, custom.identifier] == ["alpha", "alpha:2", "my-alpha"]
    with pytest.raises(IdentifierInUseError, match="already exists"):
        await manager.load(descriptor("beta"), identifier="my-alpha")
    assert manager.find("alpha:2") is a2
    assert manager.find("my-alpha") is custom
    assert manager.find("PUB/alpha-gguf") is a  # case-insensitive path prefix
    assert manager.find("nope") is None
    await manager.unload("alpha")
    assert manager.find("alpha") is a2  # the key now finds the remaining instance
    third = await manager.load(descriptor("alpha"))
    assert third.identifier == "alpha"
    await manager.close()
    assert manager.instances == []


async def test_unload_unknown_is_not_found() -> None:
    manager = InstanceManager(FakeBackend())
    with pytest.raises(ModelNotFoundError):
        await manager.unload("ghost")


async def test_broken_model_is_a_load_error() -> None:
    manager = InstanceManager(FakeBackend())
    with pytest.raises(ModelLoadError, match="truncated"):
        await manager.load(descriptor("bad", error="truncated at offset 12"))


async def test_ttl_unloads_idle_instances_only(clock: Clock) -> None:
    manager = InstanceManager(FakeBackend(), clock=clock)
    short = await manager.load(descriptor("short"), ttl_seconds=10)
    forever = await manager.load(descriptor("forever"))
    clock.now += 5
    assert await manager.expire_idle() == []
    async with manager.use(short):
        clock.now += 60  # busy: never unloaded by its TTL
        assert await manager.expire_idle() == []
    clock.now += 9  # the timer restarted when the request ended
    assert await manager.expire_idle() == []
    clock.now += 2
    assert await manager.expire_idle() == ["short"]
    assert manager.instances == [forever]
    await manager.close()


async def test_jit_reuses_loaded_and_auto_evicts_other_jit_models(clock: Clock) -> None:
    manager = InstanceManager(FakeBackend(), auto_evict=True, jit_ttl_seconds=3600, clock=clock)
    manual = await manager.load(descriptor("manual"))
    first = await manager.get_or_load(descriptor("one"))
    assert first.jit and first.ttl_seconds == 3600
    assert await manager.get_or_load(descriptor("one")) is first
    second = await manager.get_or_load(descriptor("two"), ttl_seconds=30)
    assert second.ttl_seconds == 30
    assert {i.identifier for i in manager.instances} == {"manual", "two"}  # "one" evicted, manual kept
    assert manual.runtime is not None
    await manager.close()


async def test_auto_evict_off_keeps_jit_models() -> None:
    manager = InstanceManager(FakeBackend(), auto_evict=False)
    await manager.get_or_load(descriptor("one"))
    await manager.get_or_load(descriptor("two"))
    assert {i.identifier for i in manager.instances} == {"one", "two"}
    await manager.close()


async def test_concurrent_jit_requests_load_once() -> None:
    manager = InstanceManager(FakeBackend(load_delay=0.05))
    results = await asyncio.gather(*(manager.get_or_load(descriptor("one")) for _ in range(5)))
    assert len({id(r) for r in results}) == 1
    assert len(manager.instances) == 1
    await manager.close()


async def test_auto_evict_waits_for_running_request() -> None:
    manager = InstanceManager(FakeBackend(token_delay=0.01, reply=lambda p: "a b c d e f g h"))
    one = await manager.get_or_load(descriptor("one"))
    texts: list[str] = []

    async def use_one() -> None:
        async with manager.use(one):
            async for event in one.runtime.generate(GenerationRequest("hi")):
                if isinstance(event, Fragment):
                    texts.append(event.text)
                elif isinstance(event, Done):
                    break

    task = asyncio.create_task(use_one())
    await asyncio.sleep(0.02)
    await manager.get_or_load(descriptor("two"))
    await task
    assert "".join(texts) == "a b c d e f g h"  # the request finished before "one" was evicted
    assert [i.identifier for i in manager.instances] == ["two"]
    await manager.close()
