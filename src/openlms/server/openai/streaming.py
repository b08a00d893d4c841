"""One streamed prediction as OpenAI chunks (chat or text completion), shared by /v1 and /api/v0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from openlms.core.types import Done, Fragment, GenerationStats
from openlms.server.openai import convert
from openlms.services.generation import Predictor, PreparedPrediction


@dataclass(frozen=True, slots=True)
class ChunkShape:
    """How one response frames its chunks: chat deltas or completion text."""

    cid: str
    model: str
    created: int
    chat: bool

    @classmethod
    def new(cls, model: str, *, chat: bool) -> ChunkShape:
        return cls(convert.new_id("chatcmpl" if chat else "cmpl"), model, convert.now(), chat)

    def role(self) -> dict[str, Any]:
        return convert.chat_chunk(self.cid, self.model, self.created, {"role": "assistant", "content": ""})

    def text(self, text: str, finish: str | None = None) -> dict[str, Any]:
        if self.chat:
            delta = {"content": text} if text else {}
            return convert.chat_chunk(self.cid, self.model, self.created, delta, finish)
        return convert.text_chunk(self.cid, self.model, self.created, text, finish)

    def usage(self, stats: GenerationStats) -> dict[str, Any]:
        kind = "chat.completion.chunk" if self.chat else "text_completion"
        return convert.usage_chunk(self.cid, self.model, self.created, stats, kind)


async def stream_chunks(
    predictor: Predictor,
    prepared: PreparedPrediction,
    shape: ChunkShape,
    *,
    include_usage: bool = False,
    echo: str = "",
    final_extras: Callable[[GenerationStats], dict[str, Any]] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Chunks of one prediction: a role (chat) or echo (completion) first, text deltas, a chunk with the
    finish reason (plus `final_extras`), then a usage chunk if asked for."""
    async with predictor.run(prepared) as prediction:
        if shape.chat:
            yield shape.role()
        elif echo:
            yield shape.text(echo)
        async for event in prediction.events:
            if isinstance(event, Fragment):
                if event.text:
                    yield shape.text(event.text)
            elif isinstance(event, Done):
                last = shape.text("", convert.FINISH_REASONS.get(event.stats.stop_reason, "stop"))
                yield (last | final_extras(event.stats)) if final_extras else last
                if include_usage:
                    yield shape.usage(event.stats)
