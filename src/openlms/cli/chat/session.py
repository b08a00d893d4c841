"""The conversation `lms chat` keeps, and the stats of an answer (LM Studio's `lms chat --stats`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CHAT_PATH = "/api/v0/chat/completions"
# LM Studio's `lms chat` default system prompt.
DEFAULT_SYSTEM_PROMPT = (
    "You are a technical AI assistant. Answer questions clearly, concisely and to-the-point."
)
STOPPED = "userStopped"  # LM Studio's stop reason for an answer the user stopped


@dataclass(frozen=True, slots=True)
class Stats:
    """What the server reported after an answer (None where it did not say)."""

    stop_reason: str
    tokens_per_second: float | None = None
    time_to_first_token_s: float | None = None
    prompt_tokens: int | None = None
    predicted_tokens: int | None = None
    total_tokens: int | None = None

    @classmethod
    def from_chunk(cls, chunk: Mapping[str, Any]) -> Stats:
        """From the last chunk of `/api/v0/chat/completions` (its `stats` and `usage`)."""
        stats = _mapping(chunk.get("stats"))
        usage = _mapping(chunk.get("usage"))
        reason = stats.get("stop_reason")
        return cls(
            stop_reason=reason if isinstance(reason, str) else "unknown",
            tokens_per_second=_number(stats.get("tokens_per_second")),
            time_to_first_token_s=_number(stats.get("time_to_first_token")),
            prompt_tokens=_whole(usage.get("prompt_tokens")),
            predicted_tokens=_whole(usage.get("completion_tokens")),
            total_tokens=_whole(usage.get("total_tokens")),
        )

    def lines(self) -> list[str]:
        """LM Studio's "Prediction Stats" block."""
        rows = [("Stop Reason", self.stop_reason)]
        if self.tokens_per_second is not None:
            rows.append(("Tokens/Second", f"{self.tokens_per_second:.2f}"))
        if self.time_to_first_token_s is not None:
            rows.append(("Time to First Token", f"{self.time_to_first_token_s:.3f}s"))
        for label, count in (
            ("Prompt Tokens", self.prompt_tokens),
            ("Predicted Tokens", self.predicted_tokens),
            ("Total Tokens", self.total_tokens),
        ):
            if count is not None:
                rows.append((label, str(count)))
        return ["Prediction Stats:", *(f"  {label}: {value}" for label, value in rows)]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class ChatSession:
    """The model, the system prompt, the messages so far and the last answer's stats."""

    model: str
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    messages: list[dict[str, str]] = field(default_factory=list)
    last_stats: Stats | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # more request fields (tests: `--request-json`)

    def body(self) -> dict[str, Any]:
        """The streaming request for an answer to the conversation so far."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return {**self.extra, "model": self.model, "messages": system + self.messages, "stream": True}

    def ask(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def answered(self, content: str, stats: Stats | None) -> None:
        """Keep the answer (a stopped one too, as far as it went); an empty one drops its question, so that
        the next question does not follow another."""
        if content:
            self.messages.append({"role": "assistant", "content": content})
        elif self.messages and self.messages[-1]["role"] == "user":
            self.messages.pop()
        if stats is not None:
            self.last_stats = stats

    def failed(self) -> None:
        """The question got no answer (an error): forget it."""
        if self.messages and self.messages[-1]["role"] == "user":
            self.messages.pop()

    def clear(self) -> None:
        self.messages.clear()
        self.last_stats = None
