"""One worker thread per loaded instance, and the bridge that carries its events to asyncio.

The worker owns the llama context: every job that touches it runs there, one at a time, in order.
Jobs report through an `EventChannel`, which hands items to the event loop with
`call_soon_threadsafe`, so llama.cpp calls never block the loop. A request's async iterator ends after
exactly one `Done`, or raises the job's error.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from openlms.core.errors import EngineError, ModelUnloadedError, OpenLMSError
from openlms.core.types import StopReason

log = logging.getLogger("openlms.engine")

T = TypeVar("T")
_CLOSE = object()


class EventChannel(Generic[T]):
    """A one-way channel from the worker thread to one asyncio consumer.

    Waking the event loop costs a context switch that, on a machine whose cores all run llama.cpp's
    threads, stalls the next decode step. So items that `can_wait` (text fragments) are handed over at
    most once per `interval` while they arrive faster than that; the consumer then gets them merged
    (`merge`). Anything else (first token, progress, the end) wakes the loop at once and flushes.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        interval: float = 0.0,
        can_wait: Callable[[T], bool] = lambda item: False,
        merge: Callable[[T, T], T | None] = lambda a, b: None,
    ) -> None:
        self._loop = loop
        self._interval = interval
        self._can_wait = can_wait
        self._merge = merge
        self._lock = threading.Lock()
        self._items: collections.deque[T | BaseException] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._wake_scheduled = False
        self._last_wake = -1e9

    def put(self, item: T | BaseException) -> None:
        """Thread-safe."""
        with self._lock:
            self._items.append(item)
            if self._wake_scheduled:
                return
            waitable = not isinstance(item, BaseException) and self._can_wait(item)
            if waitable:
                now = time.monotonic()
                if now - self._last_wake < self._interval:
                    return  # the next item (there always is one: at least the final Done) carries it
                self._last_wake = now
            self._wake_scheduled = True
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_scheduled = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self) -> T | BaseException:
        while True:
            with self._lock:
                if self._items:
                    return self._pop_merged()
                self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _pop_merged(self) -> T | BaseException:
        item = self._items.popleft()
        while self._items and not isinstance(item, BaseException):
            following = self._items[0]
            if isinstance(following, BaseException):
                break
            merged = self._merge(item, following)
            if merged is None:
                break
            item = merged
            self._items.popleft()
        return item


class Cancellation(threading.Event):
    """A cancel flag that also says why: the client stopped, or the model is being unloaded."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = StopReason.USER_STOPPED

    def cancel(self, reason: StopReason = StopReason.USER_STOPPED) -> None:
        if not self.is_set():
            self.reason = reason
            self.set()


class Job:
    """A unit of work for the worker thread. `cancelled` is checked by the job at step boundaries."""

    def __init__(self, work: Callable[[Job], None], on_error: Callable[[OpenLMSError], None]) -> None:
        self.cancelled = Cancellation()
        self._work = work
        self._on_error = on_error

    def run(self) -> None:
        try:
            self._work(self)
        except OpenLMSError as exc:
            self._on_error(exc)
        except Exception as exc:  # a bug or a llama.cpp failure: report it, keep the worker alive
            log.exception("engine job failed")
            self._on_error(EngineError(f"The engine failed: {exc}"))

    def abandon(self) -> None:
        self._on_error(ModelUnloadedError("The model was unloaded before the request could run."))


class Worker:
    """Runs jobs one at a time on a dedicated thread. Thread-safe `submit`; `close` drains and joins."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._running: Job | None = None
        self._queued = 0
        self._finalizer: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        return self._queued

    @property
    def busy(self) -> bool:
        return self._running is not None

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._closed:
                raise ModelUnloadedError("The model is being unloaded.")
            self._queued += 1
        self._jobs.put(job)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the worker thread and wait for it (for set-up and tear-down, not requests)."""
        return call_on(self.submit, fn)

    def close(self, finalizer: Callable[[], None] | None = None) -> None:
        """Stop accepting jobs, cancel the running one, fail queued ones, run `finalizer` on the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._finalizer = finalizer
        running = self._running
        if running is not None:
            running.cancelled.cancel(StopReason.MODEL_UNLOADED)
        self._jobs.put(_CLOSE)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            item = self._jobs.get()
            if item is _CLOSE:
                break
            assert isinstance(item, Job)
            with self._lock:
                self._queued -= 1
                self._running = item
            try:
                if self._closed:
                    item.abandon()
                else:
                    item.run()
            finally:
                self._running = None
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                item = self._jobs.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Job):
                item.abandon()
        finalizer = self._finalizer
        if finalizer is not None:
            try:
                finalizer()
            except Exception:
                log.exception("freeing the model failed")


def call_on(submit: Callable[[Job], None], fn: Callable[[], T]) -> T:
    """Run `fn` as a job given to `submit` (a worker thread's queue) and wait for its result or error."""
    done = threading.Event()
    box: list[T | BaseException] = []

    def work(_: Job) -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # re-raised in the caller
            box.append(exc)
        done.set()

    def fail(exc: OpenLMSError) -> None:
        box.append(exc)
        done.set()

    submit(Job(work, fail))
    done.wait()
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return result


class EventStream(Generic[T]):
    """The async side of one request: iterate its events; `cancel()` (or `aclose()`) stops it."""

    def __init__(self, channel: EventChannel[T], job: Job, is_last: Callable[[T], bool]) -> None:
        self._channel = channel
        self._job = job
        self._is_last = is_last
        self._finished = False

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._finished:
            raise StopAsyncIteration
        try:
            item = await self._channel.get()
        except BaseException:  # the consumer was cancelled (client gone): stop the job
            self.cancel()
            raise
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        if self._is_last(item):
            self._finished = True
        return item

    def cancel(self) -> None:
        if not self._finished:
            self._job.cancelled.cancel()

    async def aclose(self) -> None:
        self.cancel()
        self._finished = True
