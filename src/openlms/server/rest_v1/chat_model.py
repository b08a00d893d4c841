"""Which instance serves an `/api/v1/chat` request, and its JIT load (with the request's
`context_length`) reported as it goes, for the stream's `model_load.*` events.

A loaded instance is used as it is; with a `context_length` that differs from the one it was loaded
with, the request is refused (a 400 saying how to get that context): openlms never reloads a model
under another request. A model not loaded is loaded now (JIT on) with the request's `context_length`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from openlms.core.errors import InvalidRequestError
from openlms.core.types import LoadConfig, LoadedInstance, ModelDescriptor, ModelKind
from openlms.services.models import ModelService


@dataclass
class ModelPick:
    """The instance when it is loaded already; otherwise a JIT load under way (`progress()`, `finish()`)."""

    query: str
    instance: LoadedInstance | None = None
    key: str = ""  # the model being loaded
    started: float = field(default_factory=time.monotonic)
    load_time_s: float | None = None
    _task: asyncio.Task[tuple[LoadedInstance, bool]] | None = None
    _progress: asyncio.Queue[float | None] = field(default_factory=asyncio.Queue)

    @classmethod
    async def begin(
        cls, models: ModelService, query: str, context_length: int | None, ttl: int | None
    ) -> ModelPick:
        """A loaded instance, or a load that has started: every error of the request (no such model,
        JIT off, a context the model or the memory cannot take) is raised here, before any answer."""
        pick = cls(query)
        loaded = models.find_loaded(query, ModelKind.LLM)
        if loaded is not None:
            _check_context(loaded, context_length)
            pick.instance = loaded
            return pick
        if not models.settings.jit:  # refused as every route refuses it
            pick.instance = await models.for_inference(query, ModelKind.LLM)
            _check_context(pick.instance, context_length)
            return pick
        await pick._start(models, LoadConfig(context_length=context_length), ttl)
        return pick

    async def _start(self, models: ModelService, config: LoadConfig, ttl: int | None) -> None:
        loop = asyncio.get_running_loop()
        began = asyncio.Event()

        def on_start(descriptor: ModelDescriptor) -> None:
            self.key = descriptor.key
            began.set()

        def on_progress(fraction: float) -> None:
            loop.call_soon_threadsafe(self._progress.put_nowait, fraction)

        self._task = asyncio.create_task(
            models.get_or_load(
                self.query,
                ModelKind.LLM,
                config,
                ttl_seconds=ttl,
                on_start=on_start,
                on_progress=on_progress,
            )
        )
        self._task.add_done_callback(lambda _: loop.call_soon_threadsafe(self._progress.put_nowait, None))
        waiter = asyncio.create_task(began.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if self._task.done():
            self.instance, loaded = self._task.result()  # raises the load's error
            if loaded:
                self.load_time_s = time.monotonic() - self.started

    @property
    def loading(self) -> bool:
        return self._task is not None and self.instance is None

    async def progress(self) -> AsyncIterator[float]:
        """The load's progress (0..1) until it ends."""
        if self._task is None or self._task.done():
            return
        while (fraction := await self._progress.get()) is not None:
            yield fraction

    async def finish(self) -> LoadedInstance:
        if self.instance is None:
            assert self._task is not None
            self.instance, loaded = await self._task
            if loaded:
                self.load_time_s = time.monotonic() - self.started
        return self.instance


def _check_context(instance: LoadedInstance, context_length: int | None) -> None:
    if context_length is None or context_length == instance.context_length:
        return
    raise InvalidRequestError(
        f"'{instance.identifier}' is loaded with a context length of {instance.context_length}, not "
        f"{context_length}. Leave 'context_length' out to use it as loaded, or unload it (`lms unload "
        f"{instance.identifier}`) so that this request loads it with {context_length}.",
        param="context_length",
    )
