"""The server's side of a model worker: `ProcessBackend.load()` starts the child and waits for its load,
and `ProcessRuntime` is the loaded model as a `ModelRuntime` whose work runs in the child.

One reader thread per worker receives the child's batches and hands each request its events (through an
`EventChannel`, as the in-process runtime does) or its reply (a future). When the child's end of the socket
closes without being asked to, the worker crashed: every request in flight ends with `ModelCrashedError`
naming the model and how the process ended, later calls raise it, and the watchers (the instance manager)
are told once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import openlms
from openlms.core.errors import (
    ModelCrashedError,
    ModelLoadError,
    ModelUnloadedError,
    ServerBusyError,
)
from openlms.core.types import (
    Done,
    EmbeddingResult,
    EngineUsage,
    GenerationEvent,
    GenerationRequest,
    LoadConfig,
    ModelDescriptor,
    ModelKind,
)
from openlms.engine.process.wire import WORKER_TAG, RuntimeInfo, decode_error, describe_exit, sentence
from openlms.engine.runtime import LoadProgress, ModelRuntime, validate_draft
from openlms.engine.scheduler import EventChannel, EventStream, Job

log = logging.getLogger("openlms.engine")
STOP_TIMEOUT_S = 10.0  # a worker asked to exit is killed after this long
CrashWatcher = Callable[[str], None]  # called with how the worker ended
_Pending = EventChannel[GenerationEvent] | concurrent.futures.Future[Any]


@runtime_checkable
class Supervised(Protocol):
    """A runtime whose model can die under it (a worker process): a watcher is called once on a crash,
    with how the process ended ("killed by signal 9 (SIGKILL)")."""

    def watch(self, on_crash: CrashWatcher) -> None: ...


class ProcessBackend:
    """Loads each model in its own worker process, which runs `LlamaBackend(**options)`."""

    def __init__(
        self,
        *,
        default_context_length: int = 4096,
        n_threads: int | None = None,
        prompt_cache_mb: int = 0,
        max_queued: int = 32,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self.options: dict[str, Any] = {
            "default_context_length": default_context_length,
            "n_threads": n_threads,
            "prompt_cache_mb": prompt_cache_mb,
            "max_queued": max_queued,
        }
        self.max_queued = max_queued
        self.stop_timeout_s = stop_timeout_s
        self._name: str | None = None

    @property
    def name(self) -> str:
        if self._name is None:  # the same build runs in every worker: ask it here once
            from openlms.engine.llama.runtime import LlamaBackend

            self._name = LlamaBackend(**self.options).name
        return self._name

    @property
    def version(self) -> str:
        import llama_cpp

        return str(llama_cpp.__version__)

    def load(
        self, descriptor: ModelDescriptor, config: LoadConfig, on_progress: LoadProgress
    ) -> ModelRuntime:
        proc, conn = _start_worker(descriptor.key)
        try:
            conn.send(("load", descriptor, config, self.options))
            info = _await_load(conn, on_progress)
        except (EOFError, OSError):
            conn.close()
            how = describe_exit(_reap(proc, self.stop_timeout_s))
            raise ModelLoadError(
                f"Loading {descriptor.key} failed: its worker process {sentence(how)} while loading."
            ) from None
        except BaseException:
            conn.close()
            _reap(proc, self.stop_timeout_s)
            raise
        return ProcessRuntime(descriptor.key, proc, conn, info, self.max_queued, self.stop_timeout_s)


def _start_worker(key: str) -> tuple[subprocess.Popen[bytes], Connection]:
    ours, theirs = socket.socketpair()
    env = dict(os.environ)
    source_root = str(Path(openlms.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "openlms.engine.process.child", WORKER_TAG, key, str(theirs.fileno())]
    try:
        proc = subprocess.Popen(command, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return proc, Connection(ours.detach())


def _await_load(conn: Connection, on_progress: LoadProgress) -> RuntimeInfo:
    while True:
        for item in conn.recv():
            if item[0] == "progress":
                on_progress(item[1])
            elif item[0] == "loaded":
                info: RuntimeInfo = item[1]
                return info
            elif item[0] == "err":
                raise decode_error(item[2])


def _reap(proc: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class _RemoteStream(EventStream[GenerationEvent]):
    """An `EventStream` whose cancel also reaches the worker."""

    def __init__(self, channel: EventChannel[GenerationEvent], on_cancel: Callable[[], None]) -> None:
        super().__init__(channel, Job(lambda job: None, channel.put), lambda e: isinstance(e, Done))
        self._on_cancel = on_cancel

    def cancel(self) -> None:
        super().cancel()
        self._on_cancel()


class ProcessRuntime:
    """A model loaded in a worker process (see the module's docstring)."""

    def __init__(
        self,
        key: str,
        proc: subprocess.Popen[bytes],
        conn: Connection,
        info: RuntimeInfo,
        max_queued: int,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self.key = key
        self.info = info
        self._proc = proc
        self._conn = conn
        self._max_queued = max_queued
        self._stop_timeout_s = stop_timeout_s
        self._usage = info.usage
        self._lock = threading.Lock()  # guards _pending, _generations, _closing, _crashed, _watchers
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._generations = 0
        self._ids = itertools.count(1)
        self._closing = False
        self._crashed: str | None = None  # how the worker ended, once it crashed
        self._watchers: list[CrashWatcher] = []
        self._reader = threading.Thread(target=self._read, name=f"{WORKER_TAG}-{key}", daemon=True)
        self._reader.start()

    # -- fixed properties -----------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def kind(self) -> ModelKind:
        return self.info.kind

    @property
    def context_length(self) -> int:
        return self.info.context_length

    @property
    def load_config(self) -> LoadConfig:
        return self.info.load_config

    @property
    def chat_template(self) -> str | None:
        return self.info.chat_template

    @property
    def bos_token(self) -> str:
        return self.info.bos_token

    @property
    def eos_token(self) -> str:
        return self.info.eos_token

    # -- load -----------------------------------------------------------------------------------------

    @property
    def usage(self) -> EngineUsage:
        """The worker's last snapshot; with nothing in flight here, nothing runs or waits there (the
        snapshot may lag the last reply by up to 0.25 s, and the idle TTL must not wait for it)."""
        usage = self._usage
        if self._generations == 0 and (usage.running or usage.queued):
            return replace(usage, running=0, queued=0)
        return usage

    @property
    def queued(self) -> int:
        return self.usage.queued

    @property
    def busy(self) -> bool:
        """Requests in flight (replies not received yet): exact here, whatever the snapshot says."""
        return bool(self._pending)

    # -- requests -------------------------------------------------------------------------------------

    def generate(self, request: GenerationRequest) -> EventStream[GenerationEvent]:
        if request.draft is not None:
            validate_draft(request.draft)
        channel: EventChannel[GenerationEvent] = EventChannel(asyncio.get_running_loop())
        with self._lock:
            self._check_usable()
            self._admit()
            rid = next(self._ids)
            self._pending[rid] = channel
            self._generations += 1
        self._send(("gen", rid, request))
        return _RemoteStream(channel, lambda: self._cancel(rid))

    def _admit(self) -> None:
        """The in-process runtime's rule (engine/llama/batching.py), counted here so that a refusal is
        raised by `generate()` itself, before anything streams."""
        parallel = self.info.load_config.parallel or 1
        if self._generations >= parallel + self._max_queued:
            running = min(self._generations, parallel)
            waiting = self._generations - running
            raise ServerBusyError(
                f"The model is busy: {running} predictions are running (its parallel setting is {parallel}) "
                f"and {waiting} are waiting, the most allowed (max_queued_predictions). Retry shortly, or "
                "load the model with more parallel predictions (lms load --parallel).",
                retry_after_s=max(1, waiting // parallel),
            )

    def _cancel(self, rid: int) -> None:
        with self._lock:
            live = rid in self._pending
        if live:
            self._send(("cancel", rid), quiet=True)

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        result: EmbeddingResult = await asyncio.wrap_future(self._request("embed", list(texts)))
        return result

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]:
        tokens: list[int] = self._request("tok", text, add_special, parse_special).result()
        return tokens

    def detokenize(self, tokens: Sequence[int]) -> str:
        text: str = self._request("detok", list(tokens)).result()
        return text

    def _request(self, op: str, *args: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            self._check_usable()
            rid = next(self._ids)
            self._pending[rid] = future
        self._send((op, rid, *args))
        return future

    def _check_usable(self) -> None:
        if self._crashed is not None:
            raise self._crash_error()
        if self._closing:
            raise ModelUnloadedError(f"The model '{self.key}' is being unloaded.")

    def _crash_error(self) -> ModelCrashedError:
        return ModelCrashedError(
            f"The model '{self.key}' crashed: its worker process {sentence(self._crashed or '')}. "
            "Load it again to use it."
        )

    def _send(self, message: tuple[Any, ...], *, quiet: bool = False) -> None:
        try:
            with self._send_lock:
                self._conn.send(message)
        except OSError:
            if not quiet:  # the worker is gone: the reader ends this request with the reason
                log.debug("worker %s is gone", self.key)

    # -- the reader thread ----------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            while True:
                for item in self._conn.recv():
                    self._dispatch(item)
        except (EOFError, OSError):
            pass
        except BaseException:  # pragma: no cover - a bug: treat the worker as lost
            log.exception("reading from worker %s failed", self.key)
        self._ended()

    def _dispatch(self, item: tuple[Any, ...]) -> None:
        op = item[0]
        if op == "usage":
            self._usage = item[1]
            return
        rid = item[1]
        with self._lock:
            target = self._pending.get(rid)
            last = op != "ev" or isinstance(item[2], Done)
            if last and target is not None:
                self._finish(rid, target)
        if target is None:
            return
        value = decode_error(item[2]) if op == "err" else item[2]
        _deliver(target, value)

    def _finish(self, rid: int, target: _Pending) -> None:
        del self._pending[rid]
        if isinstance(target, EventChannel):
            self._generations -= 1

    def _ended(self) -> None:
        code = _reap(self._proc, self._stop_timeout_s)
        with self._lock:
            crashed = not self._closing
            if crashed:
                self._crashed = describe_exit(code)
            pending, self._pending, self._generations = self._pending, {}, 0
            watchers = list(self._watchers) if crashed else []
        self._usage = EngineUsage(parallel=self._usage.parallel, kv_size=self._usage.kv_size)
        if crashed:
            log.error("the worker of %s %s", self.key, self._crashed)
        for watcher in watchers:  # first: the manager forgets the instance before its clients hear of it
            watcher(self._crashed or "")
        for target in pending.values():
            _deliver(
                target, self._crash_error() if crashed else ModelUnloadedError("The model was unloaded.")
            )

    # -- supervision and shutdown ---------------------------------------------------------------------

    def watch(self, on_crash: CrashWatcher) -> None:
        """Call `on_crash` (from the reader thread) when the worker dies unasked; at once if it has."""
        with self._lock:
            crashed = self._crashed
            if crashed is None:
                self._watchers.append(on_crash)
        if crashed is not None:
            on_crash(crashed)

    def close(self) -> None:
        """Ask the worker to exit (running predictions end as unloaded), kill it after a timeout, join."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._send(("close",), quiet=True)
        _reap(self._proc, self._stop_timeout_s)
        self._reader.join()
        self._conn.close()


def _deliver(target: _Pending, value: Any) -> None:
    if isinstance(target, EventChannel):
        target.put(value)
    elif not target.done():
        if isinstance(value, BaseException):
            target.set_exception(value)
        else:
            target.set_result(value)
