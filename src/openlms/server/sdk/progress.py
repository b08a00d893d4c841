"""Progress messages on a channel while something long runs (model loads): updates only go up, are sent
in order, at most every few milliseconds, and at least every `HEARTBEAT_S` so the SDK's 60-second receive
timeout never fires."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from openlms.server.sdk.transport import Channel

HEARTBEAT_S = 20.0


class ProgressPump:
    def __init__(self, channel: Channel, message_type: str) -> None:
        self.channel = channel
        self.message_type = message_type
        self.queue: asyncio.Queue[Mapping[str, Any] | None] = asyncio.Queue()
        self.sent = 0.0
        self.latest = 0.0
        self.task: asyncio.Task[None] | None = None

    def post(self, message: Mapping[str, Any]) -> None:
        """Queue a message to send in order with the progress updates."""
        self.queue.put_nowait(message)

    def update(self, fraction: float) -> None:
        """Record progress (0..1); called on the event loop."""
        fraction = max(0.0, min(1.0, float(fraction)))
        if fraction > self.latest + 0.005 or (fraction >= 1.0 > self.latest):
            self.latest = fraction
            self.queue.put_nowait({"type": self.message_type, "progress": round(fraction, 4)})

    async def _pump(self) -> None:
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    message = await self.queue.get()
            except TimeoutError:  # a slow load: repeat a tiny step forward to keep the client waiting
                if self.sent < 0.99:
                    self.sent = min(0.99, self.sent + 0.0001)
                    await self.channel.send({"type": self.message_type, "progress": self.sent})
                continue
            if message is None:
                return
            progress = message.get("progress")
            if message.get("type") == self.message_type and isinstance(progress, float):
                if progress <= self.sent:
                    continue
                self.sent = progress
            await self.channel.send(message)

    async def __aenter__(self) -> ProgressPump:
        self.task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.task is not None
        if exc_type is None:
            self.queue.put_nowait(None)
            await self.task
        else:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
