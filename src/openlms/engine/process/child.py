"""A model worker process: `python -m openlms.engine.process.child openlms-worker <model key> <fd>`.

It reads ("load", descriptor, config, backend options) from the socket `fd`, loads the model with the
in-process llama.cpp backend (progress forwarded), then serves the runtime on an asyncio loop: requests
come in on the socket, replies and events go out batched, one write per loop turn. It exits when the
server says ("close",) or its end of the socket closes (the server is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from openlms.core.types import EngineUsage, GenerationEvent, GenerationRequest
from openlms.engine.process.wire import WORKER_TAG, RuntimeInfo, encode_error
from openlms.engine.runtime import ModelRuntime
from openlms.engine.scheduler import EventStream

log = logging.getLogger("openlms.worker")
USAGE_INTERVAL_S = 0.25  # how often usage (running/queued/KV) is compared with what was last sent


def load(conn: Connection) -> ModelRuntime | None:
    """Load the model the first message names; report progress, then "loaded" or the error."""
    from openlms.engine.llama.runtime import LlamaBackend

    _, descriptor, config, options = conn.recv()
    sent = [-1.0]

    def progress(fraction: float) -> None:
        if fraction - sent[0] >= 0.01 or fraction >= 1.0:  # not one write per tensor
            sent[0] = fraction
            conn.send([("progress", fraction)])

    try:
        runtime = LlamaBackend(**options).load(descriptor, config, progress)
    except BaseException as exc:
        conn.send([("err", 0, encode_error(exc))])
        return None
    info = RuntimeInfo(
        runtime.kind,
        runtime.context_length,
        runtime.load_config,
        runtime.chat_template,
        runtime.bos_token,
        runtime.eos_token,
        runtime.usage,
    )
    conn.send([("loaded", info)])
    return runtime


class Server:
    """Serves one runtime over the connection (all on the event loop's thread)."""

    def __init__(self, conn: Connection, runtime: ModelRuntime) -> None:
        self.conn = conn
        self.runtime = runtime
        self.loop = asyncio.get_running_loop()
        self.streams: dict[int, EventStream[GenerationEvent]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.outbox: list[tuple[Any, ...]] = []
        self.usage_sent: EngineUsage | None = None
        self.stopped = asyncio.Event()

    async def serve(self) -> None:
        self.loop.add_reader(self.conn.fileno(), self._readable)
        ticker = asyncio.create_task(self._tick())
        await self.stopped.wait()
        self.loop.remove_reader(self.conn.fileno())
        ticker.cancel()
        await asyncio.to_thread(self.runtime.close)  # running predictions end with Done (unloaded)
        if self.tasks:
            await asyncio.wait(self.tasks)
        self._flush()

    def _readable(self) -> None:
        try:
            while self.conn.poll():
                self._handle(self.conn.recv())
        except (EOFError, OSError):  # the server is gone
            for stream in self.streams.values():
                stream.cancel()
            self.stopped.set()

    def _handle(self, message: tuple[Any, ...]) -> None:
        op = message[0]
        if op == "gen":
            self._generate(message[1], message[2])
        elif op == "cancel":
            stream = self.streams.get(message[1])
            if stream is not None:
                stream.cancel()
        elif op == "embed":
            self._spawn(self._embed(message[1], message[2]))
        elif op == "tok":
            self._call(
                message[1],
                lambda: self.runtime.tokenize(message[2], add_special=message[3], parse_special=message[4]),
            )
        elif op == "detok":
            self._call(message[1], lambda: self.runtime.detokenize(message[2]))
        elif op == "close":
            self.stopped.set()

    def _generate(self, rid: int, request: GenerationRequest) -> None:
        try:
            stream = self.runtime.generate(request)
        except BaseException as exc:
            self._send(("err", rid, encode_error(exc)))
            return
        self.streams[rid] = stream
        self._spawn(self._pump(rid, stream))

    async def _pump(self, rid: int, stream: EventStream[GenerationEvent]) -> None:
        try:
            async for event in stream:
                self._send(("ev", rid, event))
        except BaseException as exc:
            self._send(("err", rid, encode_error(exc)))
        finally:
            del self.streams[rid]

    async def _embed(self, rid: int, texts: Sequence[str]) -> None:
        try:
            self._send(("ok", rid, await self.runtime.embed(texts)))
        except BaseException as exc:
            self._send(("err", rid, encode_error(exc)))

    def _call(self, rid: int, fn: Any) -> None:
        try:
            self._send(("ok", rid, fn()))
        except BaseException as exc:
            self._send(("err", rid, encode_error(exc)))

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _send(self, item: tuple[Any, ...]) -> None:
        if not self.outbox:
            self.loop.call_soon(self._flush)
        self.outbox.append(item)

    def _flush(self) -> None:
        usage = self.runtime.usage
        if usage != self.usage_sent:
            self.usage_sent = usage
            self.outbox.append(("usage", usage))
        if not self.outbox:
            return
        items, self.outbox = self.outbox, []
        with contextlib.suppress(OSError):  # the server is gone: the reader sees it and stops
            self.conn.send(items)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(USAGE_INTERVAL_S)
            if self.runtime.usage != self.usage_sent and not self.outbox:
                self._flush()


async def serve(conn: Connection, runtime: ModelRuntime) -> None:
    await Server(conn, runtime).serve()


def main(argv: Sequence[str]) -> int:
    if len(argv) != 3 or argv[0] != WORKER_TAG:
        print(f"usage: python -m openlms.engine.process.child {WORKER_TAG} <model key> <fd>", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("OPENLMS_WORKER_LOG_LEVEL", "WARNING"))
    # Ctrl-C in the server's terminal reaches its whole process group: the server stops its workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(int(argv[2]))
    runtime = load(conn)
    if runtime is None:
        return 1
    asyncio.run(serve(conn, runtime))
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
