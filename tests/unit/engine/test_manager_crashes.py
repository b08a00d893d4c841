"""InstanceManager and a worker that dies: the instance is forgotten at once, the crash recorded and
counted, the other models keep serving, and loading the model again works."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from openlms.core.types import Done, GenerationRequest, LoadConfig, ModelDescriptor
from openlms.engine.fake import FakeBackend, FakeRuntime
from openlms.engine.manager import InstanceManager
from openlms.engine.process import Supervised
from openlms.engine.runtime import LoadProgress, ModelRuntime
from tests.unit.engine.test_manager import descriptor


class CrashingRuntime(FakeRuntime):
    """A fake runtime that can die like a worker process (its watchers are told from another thread)."""

    watchers: list[object]

    def watch(self, on_crash: object) -> None:
        self.watchers.append(on_crash)

    def crash(self, how: str) -> None:
        def tell() -> None:
            for watcher in self.watchers:
                assert callable(watcher)
                watcher(how)

        thread = threading.Thread(target=tell)
        thread.start()
        thread.join()


@dataclass
class CrashingBackend(FakeBackend):
    runtimes: list[CrashingRuntime] = field(default_factory=list)

    def load(self, d: ModelDescriptor, config: LoadConfig, on_progress: LoadProgress) -> ModelRuntime:
        base = super().load(d, config, on_progress)
        assert isinstance(base, FakeRuntime)
        runtime = CrashingRuntime(base.kind, base.load_config, self)
        runtime.watchers = []
        base.close()
        self.runtimes.append(runtime)
        return runtime


async def settle(runtime: CrashingRuntime) -> None:
    """Let the manager hear of the crash (it is told through the event loop) and reap the runtime."""
    for _ in range(200):
        await asyncio.sleep(0.01)
        if runtime.closed.is_set():
            return


async def test_a_crashed_instance_is_forgotten_recorded_and_can_load_again() -> None:
    backend = CrashingBackend()
    manager = InstanceManager(backend)
    alpha = await manager.load(descriptor("alpha"), identifier="a1")
    beta = await manager.load(descriptor("beta"))
    assert isinstance(alpha.runtime, Supervised)
    before = time.time()
    backend.runtimes[0].crash("killed by signal 9 (SIGKILL)")
    await settle(backend.runtimes[0])
    assert manager.find("a1") is None and manager.find("alpha") is None
    assert [i.identifier for i in manager.instances] == ["beta"]
    [record] = manager.recent_crashes
    assert (record.model_key, record.identifier, record.exit) == (
        "alpha",
        "a1",
        "killed by signal 9 (SIGKILL)",
    )
    assert before <= record.at <= time.time()
    assert manager.crash_counts == {"alpha": 1} and not manager.restart_counts
    assert backend.runtimes[0].closed.is_set()  # the dead runtime was closed (reaped)
    async with manager.use(beta):  # the other model keeps serving
        events = [e async for e in beta.runtime.generate(GenerationRequest(prompt="hi", max_tokens=2))]
    assert isinstance(events[-1], Done)
    again = await manager.get_or_load(descriptor("alpha"))
    assert again.identifier == "alpha" and manager.restart_counts == {"alpha": 1}
    await manager.close()


async def test_a_crash_after_unload_changes_nothing() -> None:
    backend = CrashingBackend()
    manager = InstanceManager(backend)
    await manager.load(descriptor("alpha"))
    await manager.unload("alpha")
    backend.runtimes[0].crash("exited with status 1")
    await asyncio.sleep(0.05)
    assert not manager.recent_crashes and not manager.crash_counts
    await manager.close()
