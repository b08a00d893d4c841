"""Loaded instances: load/unload, identifiers, lookup, JIT get-or-load, idle TTL and auto-evict.

Rules (LM Studio's, see ttl-and-auto-evict.md):
- The first instance of a model is identified by its key, later ones by `key:2`, `key:3`, ...
- An idle TTL unloads an instance that has served no request for `ttl` seconds; every request resets the
  timer, and a busy instance (running or queued work) is never unloaded by its TTL.
- Auto-evict: loading a model just-in-time first unloads the other JIT-loaded instances (waiting for their
  running requests to finish); manually loaded instances are never evicted.
- Crashes: an instance whose worker process dies (a `Supervised` runtime, engine/process) is removed at
  once (its requests already ended with ModelCrashedError; JIT or a load brings it back) and recorded in
  `recent_crashes` and the per-model counters that listings and /metrics read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from openlms.core.errors import IdentifierInUseError, InvalidModelFileError, ModelNotFoundError
from openlms.core.types import CrashRecord, EngineUsage, LoadConfig, ModelDescriptor, ModelKind
from openlms.engine.process.runtime import Supervised
from openlms.engine.runtime import Backend, LoadProgress, ModelRuntime

log = logging.getLogger("openlms.engine")

Clock = Callable[[], float]
RECENT_CRASHES = 10  # crash records kept for listings


@dataclass(eq=False)
class Instance:
    """One loaded copy of a model."""

    identifier: str
    descriptor: ModelDescriptor
    runtime: ModelRuntime
    jit: bool
    ttl_seconds: float | None
    last_used: float
    reference: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    active: int = 0
    unloading: bool = False
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    context_length: int = field(init=False)  # as loaded (fixed for the instance's life)
    load_config: LoadConfig = field(init=False)

    def __post_init__(self) -> None:
        self.idle.set()
        self.context_length, self.load_config = self.runtime.context_length, self.runtime.load_config

    @property
    def busy(self) -> bool:
        return self.active > 0 or self.runtime.busy or self.runtime.queued > 0

    @property
    def status(self) -> str:
        if self.unloading:
            return "unloading"
        return "generating" if self.active > 0 or self.runtime.busy else "idle"

    @property
    def queued(self) -> int:
        """Predictions waiting for a free slot."""
        return self.runtime.usage.queued

    @property
    def usage(self) -> EngineUsage:
        return self.runtime.usage


@dataclass
class Loading:
    """A load in progress, visible to listings."""

    identifier: str
    descriptor: ModelDescriptor
    progress: float = 0.0


class InstanceManager:
    def __init__(
        self,
        backend: Backend,
        *,
        auto_evict: bool = True,
        jit_ttl_seconds: float | None = 3600,
        clock: Clock = time.monotonic,
    ) -> None:
        self.backend = backend
        self.auto_evict = auto_evict
        self.jit_ttl_seconds = jit_ttl_seconds or None
        self._clock = clock
        self._instances: dict[str, Instance] = {}
        self._loading: dict[str, Loading] = {}
        self._lock = asyncio.Lock()  # serialises loads and unloads
        self._wake = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        self.recent_crashes: deque[CrashRecord] = deque(maxlen=RECENT_CRASHES)  # newest first
        self.crash_counts: Counter[str] = Counter()  # worker crashes by model key
        self.restart_counts: Counter[str] = Counter()  # loads of a model key after it crashed
        self._closing: set[asyncio.Task[None]] = set()  # crashed runtimes being reaped

    # -- queries -------------------------------------------------------------------------------------

    @property
    def instances(self) -> list[Instance]:
        return list(self._instances.values())

    @property
    def loading(self) -> list[Loading]:
        return list(self._loading.values())

    def find(self, query: str, kind: ModelKind | None = None) -> Instance | None:
        """An instance (of `kind`) by identifier, then by model key, then by case-insensitive path prefix."""
        live = [
            i
            for i in self._instances.values()
            if not i.unloading and (kind is None or i.descriptor.kind is kind)
        ]
        lowered = query.lower().strip("/")
        rules: tuple[Callable[[Instance], bool], ...] = (
            lambda i: i.identifier == query,
            lambda i: i.descriptor.key == query,
            lambda i: bool(lowered) and i.descriptor.rel_path.lower().startswith(lowered),
        )
        for matches in rules:
            found = next((i for i in live if matches(i)), None)
            if found is not None:
                return found
        return None

    # -- load / unload -------------------------------------------------------------------------------

    async def load(
        self,
        descriptor: ModelDescriptor,
        config: LoadConfig | None = None,
        *,
        identifier: str | None = None,
        ttl_seconds: float | None = None,
        jit: bool = False,
        on_progress: LoadProgress | None = None,
    ) -> Instance:
        async with self._lock:
            return await self._load_locked(
                descriptor, config or LoadConfig(), identifier, ttl_seconds, jit, on_progress
            )

    async def get_or_load(
        self,
        descriptor: ModelDescriptor,
        *,
        ttl_seconds: float | None = None,
        config: LoadConfig | None = None,
        on_progress: LoadProgress | None = None,
    ) -> Instance:
        """JIT: the loaded instance of this model, or a new JIT instance (evicting other JIT ones)."""
        existing = self.find(descriptor.key)
        if existing is not None:
            return existing
        async with self._lock:
            existing = self.find(descriptor.key)
            if existing is not None:
                return existing
            if self.auto_evict:
                for other in [i for i in self._instances.values() if i.jit]:
                    await self._unload_locked(other, wait_idle=True)
            ttl = ttl_seconds if ttl_seconds is not None else self.jit_ttl_seconds
            return await self._load_locked(descriptor, config or LoadConfig(), None, ttl, True, on_progress)

    async def _load_locked(
        self,
        descriptor: ModelDescriptor,
        config: LoadConfig,
        identifier: str | None,
        ttl_seconds: float | None,
        jit: bool,
        on_progress: LoadProgress | None,
    ) -> Instance:
        if descriptor.error is not None:
            raise InvalidModelFileError(f"Cannot load {descriptor.key}: {descriptor.error}", param="model")
        name = self._new_identifier(descriptor.key, identifier)
        loading = Loading(name, descriptor)
        self._loading[name] = loading
        loop = asyncio.get_running_loop()

        def progress(fraction: float) -> None:
            loading.progress = fraction
            if on_progress is not None:
                loop.call_soon_threadsafe(on_progress, fraction)

        try:
            runtime = await asyncio.to_thread(self.backend.load, descriptor, config, progress)
        finally:
            del self._loading[name]
        instance = Instance(name, descriptor, runtime, jit, ttl_seconds or None, self._clock())
        self._instances[name] = instance
        self._supervise(instance, loop)
        self._wake.set()
        log.info("loaded %s as %s (jit=%s, ttl=%s)", descriptor.key, name, jit, ttl_seconds)
        return instance

    def _supervise(self, instance: Instance, loop: asyncio.AbstractEventLoop) -> None:
        key = instance.descriptor.key
        if self.crash_counts[key]:
            self.restart_counts[key] += 1
        runtime = instance.runtime
        if not isinstance(runtime, Supervised):
            return

        def crashed(how: str) -> None:  # the runtime's reader thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
                loop.call_soon_threadsafe(self._crashed, instance, how)

        runtime.watch(crashed)

    def _crashed(self, instance: Instance, how: str) -> None:
        """The instance's worker died: forget it now (the next request loads the model again), reap it."""
        if self._instances.get(instance.identifier) is not instance:
            return  # already unloaded
        del self._instances[instance.identifier]
        instance.unloading = True
        key = instance.descriptor.key
        self.recent_crashes.appendleft(CrashRecord(key, instance.identifier, time.time(), how))
        self.crash_counts[key] += 1
        task = asyncio.create_task(asyncio.to_thread(instance.runtime.close), name="openlms-reap")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        self._wake.set()
        log.error("model %s (%s) crashed: its worker process %s", instance.identifier, key, how)

    def _new_identifier(self, key: str, requested: str | None) -> str:
        taken = set(self._instances) | set(self._loading)
        if requested:
            if requested in taken:
                raise IdentifierInUseError(requested)
            return requested
        if key not in taken:
            return key
        n = 2
        while f"{key}:{n}" in taken:
            n += 1
        return f"{key}:{n}"

    async def unload(self, identifier: str) -> Instance:
        async with self._lock:
            instance = self._instances.get(identifier) or self.find(identifier)
            if instance is None:
                raise ModelNotFoundError(
                    identifier,
                    available=list(self._instances),
                    reason=f"No loaded model matches '{identifier}'.",
                )
            await self._unload_locked(instance, wait_idle=False)
            return instance

    async def unload_all(self) -> list[Instance]:
        async with self._lock:
            gone = list(self._instances.values())
            for instance in gone:
                await self._unload_locked(instance, wait_idle=False)
            return gone

    async def _unload_locked(self, instance: Instance, *, wait_idle: bool) -> None:
        instance.unloading = True
        if wait_idle:
            await instance.idle.wait()
        self._instances.pop(instance.identifier, None)
        await asyncio.to_thread(instance.runtime.close)
        self._wake.set()
        log.info("unloaded %s", instance.identifier)

    # -- usage and TTL -------------------------------------------------------------------------------

    @asynccontextmanager
    async def use(self, instance: Instance) -> AsyncIterator[Instance]:
        """Mark a request in flight on `instance` (resets its idle timer before and after)."""
        if instance.unloading or instance.identifier not in self._instances:
            raise ModelNotFoundError(
                instance.identifier, reason=f"The model '{instance.identifier}' was unloaded."
            )
        instance.active += 1
        instance.idle.clear()
        instance.last_used = self._clock()
        try:
            yield instance
        finally:
            instance.active -= 1
            instance.last_used = self._clock()
            if instance.active == 0:
                instance.idle.set()
            self._wake.set()

    def idle_seconds(self, instance: Instance) -> float:
        return 0.0 if instance.busy else max(0.0, self._clock() - instance.last_used)

    def start(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever(), name="openlms-ttl")

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await self.unload_all()
        if self._closing:
            await asyncio.wait(self._closing)

    async def expire_idle(self) -> list[str]:
        """Unload every instance whose idle TTL has run out; returns their identifiers."""
        now = self._clock()
        expired = [
            i
            for i in self._instances.values()
            if i.ttl_seconds and not i.busy and not i.unloading and now - i.last_used >= i.ttl_seconds
        ]
        gone: list[str] = []
        for instance in expired:
            async with self._lock:
                if instance.identifier in self._instances and not instance.busy:
                    await self._unload_locked(instance, wait_idle=False)
                    gone.append(instance.identifier)
                    log.info("TTL expired for %s", instance.identifier)
        return gone

    def _next_deadline(self) -> float | None:
        """When the reaper should look again: the first idle TTL to run out; soon when an instance with a TTL
        is still busy in its engine after its last request ended (nothing else wakes the reaper then)."""
        deadlines = [
            i.last_used + i.ttl_seconds for i in self._instances.values() if i.ttl_seconds and not i.busy
        ]
        if any(i.ttl_seconds and i.busy and i.active == 0 for i in self._instances.values()):
            deadlines.append(self._clock() + 1.0)
        return min(deadlines) if deadlines else None

    async def _reap_forever(self) -> None:
        while True:
            self._wake.clear()
            await self.expire_idle()
            deadline = self._next_deadline()
            timeout = 60.0 if deadline is None else min(60.0, max(0.05, deadline - self._clock()))
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass
