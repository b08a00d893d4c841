"""An in-process publish/subscribe bus for `lms log stream` (one per app, on `app.state.logbus`).

Two sources: `model` (the exact text sent to and received from models) and `server` (log records).
`publish` never blocks and may be called from any thread (engine workers, logging handlers); with no
`model` subscriber it returns after one dictionary lookup, so predictions pay nothing while nobody
watches. Each subscriber gets a bounded queue: when it falls behind, the oldest events are dropped and
counted (`Subscription.dropped`), so a slow terminal never slows a prediction down.

The `server` source also keeps the last few events (`server_backlog`), which a new subscriber receives
first, like `tail -f`: the start-up lines and recent requests are visible to a stream opened later.
Model events are never kept (prompts are private and can be large).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

from openlms.core.types import GenerationStats

Source = Literal["model", "server"]
SOURCES: tuple[Source, ...] = ("model", "server")

INPUT_TYPE = "llm.prediction.input"
OUTPUT_TYPE = "llm.prediction.output"

DEFAULT_QUEUE_SIZE = 1000
DEFAULT_SERVER_BACKLOG = 100


class Subscription:
    """One subscriber's queue: filled from any thread, read with `async for` on its event loop."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, maxsize: int, initial: Iterable[dict[str, Any]] = ()
    ) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._maxsize = max(1, maxsize)
        self._items: deque[dict[str, Any]] = deque(initial)
        while len(self._items) > self._maxsize:
            self._items.popleft()
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._wake_scheduled = False
        self.dropped = 0  # events lost because this subscriber fell behind

    def push(self, event: dict[str, Any]) -> None:
        """Queue `event` (dropping the oldest one when full); never blocks. Any thread."""
        with self._lock:
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(event)
            wake = self._waiter is not None and not self._wake_scheduled
            if wake:
                self._wake_scheduled = True
        if wake:
            self._schedule_wake()

    def _schedule_wake(self) -> None:
        if threading.get_ident() == self._loop_thread:
            self._loop.call_soon(self._wake)
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to wake
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            waiter, self._waiter = self._waiter, None
            self._wake_scheduled = False
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def pending(self) -> int:
        with self._lock:
            return len(self._items)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                waiter = self._loop.create_future()
                self._waiter = waiter
            try:
                await waiter
            finally:
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None


class LogBus:
    """Fan-out of log events to the subscribers of each source. Thread-safe; no global state."""

    def __init__(
        self, *, queue_size: int = DEFAULT_QUEUE_SIZE, server_backlog: int = DEFAULT_SERVER_BACKLOG
    ) -> None:
        self._queue_size = queue_size
        self._lock = threading.Lock()
        # Copy-on-write tuples: `publish` reads them without the lock.
        self._subscribers: dict[Source, tuple[Subscription, ...]] = {s: () for s in SOURCES}
        self._backlog: dict[Source, deque[dict[str, Any]]] = {}
        if server_backlog > 0:
            self._backlog["server"] = deque(maxlen=server_backlog)

    def wants(self, source: Source) -> bool:
        """Whether `publish(source, ...)` would do anything (skip building costly events otherwise)."""
        return bool(self._subscribers[source]) or source in self._backlog

    def subscriber_count(self, source: Source) -> int:
        return len(self._subscribers[source])

    def publish(self, source: Source, event: Mapping[str, Any]) -> None:
        """Hand `event` to every subscriber of `source`. Never blocks; callable from any thread."""
        subscribers = self._subscribers[source]
        backlog = self._backlog.get(source)
        if not subscribers and backlog is None:
            return
        item = dict(event)  # one shallow copy, shared read-only by every subscriber
        if backlog is not None:
            with self._lock:  # with `subscribe`'s snapshot, each event reaches a subscriber exactly once
                backlog.append(item)
                subscribers = self._subscribers[source]
        for subscription in subscribers:
            subscription.push(item)

    @asynccontextmanager
    async def subscribe(self, source: Source) -> AsyncIterator[Subscription]:
        """Subscribe for the duration of the `async with` block; iterate the yielded subscription."""
        loop = asyncio.get_running_loop()
        with self._lock:
            subscription = Subscription(loop, self._queue_size, self._backlog.get(source, ()))
            self._subscribers[source] = (*self._subscribers[source], subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                self._subscribers[source] = tuple(
                    s for s in self._subscribers[source] if s is not subscription
                )


def now_ms() -> int:
    return int(time.time() * 1000)


def model_input_event(model_identifier: str, model_path: str, input_text: str) -> dict[str, Any]:
    """The event for the formatted prompt sent to a model (publish it right before generation)."""
    return {
        "timestamp": now_ms(),
        "type": INPUT_TYPE,
        "modelIdentifier": model_identifier,
        "modelPath": model_path,
        "input": input_text,
    }


def model_output_event(
    model_identifier: str, model_path: str, output_text: str, stats: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The event for a model's complete output; `stats` as `prediction_stats` builds them (or None)."""
    event: dict[str, Any] = {
        "timestamp": now_ms(),
        "type": OUTPUT_TYPE,
        "modelIdentifier": model_identifier,
        "modelPath": model_path,
        "output": output_text,
    }
    if stats is not None:
        event["stats"] = dict(stats)
    return event


def prediction_stats(stats: GenerationStats) -> dict[str, Any]:
    """A prediction's stats under LM Studio's names (the SDK's `LLMPredictionStats`)."""
    return {
        "tokensPerSecond": round(stats.tokens_per_second, 3),
        "timeToFirstTokenSec": round(stats.time_to_first_token_s, 3),
        "promptTokensCount": stats.prompt_tokens,
        "predictedTokensCount": stats.predicted_tokens,
        "totalTokensCount": stats.total_tokens,
        "stopReason": stats.stop_reason.value,
    }
