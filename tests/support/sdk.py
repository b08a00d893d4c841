"""Helpers for driving openlms with the official `lmstudio` Python SDK in end-to-end tests."""

from __future__ import annotations

import contextlib
import json
import math
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import lmstudio as lms

from tests.support.server import CHAT_MODEL, Server

# The chat the SDK tests send. What SmolLM2 answers is the model's (its words and length differ from one
# CPU to another): tests check what the server guarantees about an answer, never its words.
SYSTEM_PROMPT = "You are a helpful assistant."
FRANCE = "What is the capital of France?"
# A GBNF grammar that never completes: the model cannot end a prediction before its maxTokens.
ENDLESS_GRAMMAR = "root ::= [a-z ] root"


def france_chat() -> lms.Chat:
    chat = lms.Chat(SYSTEM_PROMPT)
    chat.add_user_message(FRANCE)
    return chat


def greedy(max_tokens: int = 8, **extra: Any) -> lms.LlmPredictionConfigDict:
    """A prediction config: temperature 0 and few tokens (the machine has 2 slow cores)."""
    return cast(lms.LlmPredictionConfigDict, {"temperature": 0, "maxTokens": max_tokens, **extra})


def host_of(server: Server) -> str:
    return f"127.0.0.1:{server.port}"


@dataclass
class Callbacks:
    """Records every prediction callback the SDK offers, to check that each one was called."""

    messages: list[Any] = field(default_factory=list)
    fragments: list[Any] = field(default_factory=list)
    progress: list[float] = field(default_factory=list)
    first_tokens: int = 0

    def _first_token(self) -> None:
        self.first_tokens += 1

    def kwargs(self) -> dict[str, Any]:
        return {
            "on_message": self.messages.append,
            "on_prediction_fragment": self.fragments.append,
            "on_prompt_processing_progress": self.progress.append,
            "on_first_token": self._first_token,
        }

    def check(self, result: lms.PredictionResult) -> None:
        assert self.first_tokens == 1
        assert "".join(f.content for f in self.fragments) == result.content
        assert self.progress and self.progress == sorted(self.progress) and self.progress[-1] == 1.0
        assert all(0.0 <= p <= 1.0 for p in self.progress)
        assert len(self.messages) == 1 and isinstance(self.messages[0], lms.AssistantResponse)
        parts = self.messages[0].content
        assert len(parts) == 1 and isinstance(parts[0], lms.TextData) and parts[0].text == result.content


def check_stats(result: lms.PredictionResult, stop_reason: str | None = None) -> None:
    stats = result.stats
    if stop_reason is not None:
        assert stats.stop_reason == stop_reason, stats
    assert stats.predicted_tokens_count is not None and stats.predicted_tokens_count >= 1
    assert stats.prompt_tokens_count is not None and stats.prompt_tokens_count >= 1
    assert stats.total_tokens_count == stats.prompt_tokens_count + stats.predicted_tokens_count
    assert stats.tokens_per_second is not None and stats.tokens_per_second >= 0
    if stats.predicted_tokens_count > 1:  # a rate needs two tokens (the model may end at once)
        assert stats.tokens_per_second > 0
    assert stats.time_to_first_token_sec is not None and stats.time_to_first_token_sec > 0


def check_limit(result: lms.PredictionResult, max_tokens: int) -> None:
    """maxTokens was kept: the prediction stopped there, or the model ended it before."""
    stats = result.stats
    assert stats.stop_reason in ("maxPredictedTokensReached", "eosFound"), stats
    assert stats.predicted_tokens_count is not None and 1 <= stats.predicted_tokens_count <= max_tokens
    if stats.stop_reason == "maxPredictedTokensReached":
        assert stats.predicted_tokens_count == max_tokens


def loaded(client: lms.Client) -> dict[str, list[str]]:
    """The identifiers of the loaded instances, per namespace."""
    return {
        "llm": sorted(m.identifier for m in client.llm.list_loaded()),
        "embedding": sorted(m.identifier for m in client.embedding.list_loaded()),
    }


def unload_all(client: lms.Client) -> None:
    for namespace in (client.llm, client.embedding):
        for handle in namespace.list_loaded():
            handle.unload()
    assert loaded(client) == {"llm": [], "embedding": []}


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@contextlib.contextmanager
def forced_tool_calls(server: Server, model: str = CHAT_MODEL) -> Iterator[None]:
    """SmolLM2 never calls a tool on its own: openlms's per-model `toolChoice: required` makes it call one
    whenever a request offers tools (a grammar keeps the arguments valid for the tool's schema)."""
    with server.http() as http:
        response = http.put(
            "/api/v1/models/config", params={"model": model}, json={"prediction": {"toolChoice": "required"}}
        )
        assert response.status_code == 200, response.text
        try:
            yield
        finally:
            http.delete("/api/v1/models/config", params={"model": model})


def write_preset(server: Server, stem: str, preset: dict[str, Any]) -> Path:
    directory = server.home / "config-presets"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.preset.json"
    path.write_text(json.dumps(preset))
    return path


def tiny_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (128, 0, 128)) -> bytes:
    """A valid PNG image, written by hand (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    return float(dot / norm)
