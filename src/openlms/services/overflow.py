"""Fitting a conversation into the context window, by the request's `contextOverflowPolicy`.

- stopAtLimit: a prompt that does not fit is an error (nothing is cut).
- truncateMiddle: keep the system prompt, the first user message and the last message; drop whole messages
  from the middle, oldest first (a tool result goes with the call it answers).
- rollingWindow: keep the system prompt and the last message; drop the oldest messages.

When dropping messages is not enough, tokens are cut (truncateMiddle: from the middle of the prompt, keeping
its head; rollingWindow: from its start). Whatever is cut is reported, never silent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openlms.core.errors import ContextLengthExceededError
from openlms.core.types import ContextOverflowPolicy

Message = Mapping[str, Any]
Tokenize = Callable[[Sequence[Message], bool], list[int]]  # (messages, add_generation_prompt) -> tokens


@dataclass(frozen=True, slots=True)
class Truncation:
    """What was cut from a prompt to make it fit."""

    policy: ContextOverflowPolicy
    dropped_messages: int
    dropped_tokens: int  # tokens the prompt lost, messages and token cuts together
    token_cut: bool = False  # tokens were cut from the rendered prompt itself

    def describe(self) -> str:
        return f"{self.policy.value}: dropped {self.dropped_messages} messages, {self.dropped_tokens} tokens"


@dataclass(frozen=True, slots=True)
class FittedPrompt:
    tokens: list[int]
    keep_tokens: int  # prompt tokens a context shift during generation must keep
    truncation: Truncation | None = None
    messages: Sequence[Message] = ()  # the messages the prompt was rendered from

    @property
    def token_cut(self) -> bool:
        """Tokens were cut out of the rendered prompt (dropping messages was not enough)."""
        return self.truncation is not None and self.truncation.token_cut


def reserve_for_reply(n_ctx: int, max_tokens: int | None) -> int:
    """Room left for the answer when a prompt is truncated to fit."""
    wanted = max_tokens if max_tokens is not None and max_tokens > 0 else 512
    return max(1, min(wanted, n_ctx // 4))


def fit(
    messages: Sequence[Message],
    tokenize: Tokenize,
    *,
    n_ctx: int,
    policy: ContextOverflowPolicy,
    max_tokens: int | None,
) -> FittedPrompt:
    tokens = tokenize(messages, True)
    head = _protected_head(messages, policy)
    if len(tokens) < n_ctx:
        keep = _keep_tokens(messages[:head], tokens, tokenize, policy)
        return FittedPrompt(tokens, keep, None, messages)
    if policy is ContextOverflowPolicy.STOP_AT_LIMIT:
        raise ContextLengthExceededError(len(tokens), n_ctx)
    budget = n_ctx - reserve_for_reply(n_ctx, max_tokens)
    kept, dropped = _drop_messages(list(messages), head, tokenize, budget)
    fitted = tokenize(kept, True)
    keep = _keep_tokens(kept[:head], fitted, tokenize, policy)
    cut = len(fitted) > budget
    if cut:
        fitted = _cut_tokens(fitted, budget, keep if policy is ContextOverflowPolicy.TRUNCATE_MIDDLE else 1)
        keep = min(keep, budget // 2)
    truncation = Truncation(policy, dropped, len(tokens) - len(fitted), cut)
    return FittedPrompt(fitted, keep, truncation, kept)


def _protected_head(messages: Sequence[Message], policy: ContextOverflowPolicy) -> int:
    """How many leading messages are never dropped: the system messages, and for truncateMiddle the first
    user message too."""
    head = 0
    while head < len(messages) and messages[head].get("role") in ("system", "developer"):
        head += 1
    first_user = head < len(messages) - 1 and messages[head].get("role") == "user"
    if policy is ContextOverflowPolicy.TRUNCATE_MIDDLE and first_user:
        head += 1
    return head


def _drop_messages(
    messages: list[Message], head: int, tokenize: Tokenize, budget: int
) -> tuple[list[Message], int]:
    """Drop the fewest messages after the protected `head`, oldest first (a tool result goes with the call
    it answers), for the prompt to fit `budget`; never the last message.

    The candidates are the conversations after 1, 2, ... drops; a shorter conversation never renders to
    more tokens, so the fewest drops that fit are found by binary search: O(log n) renders instead of one
    per dropped message."""
    starts = _drop_points(messages, head)

    def fits(k: int) -> bool:
        return len(tokenize([*messages[:head], *messages[starts[k] :]], True)) <= budget

    low, high = 0, len(starts) - 1  # the answer is in [low, high]; `high` (all dropped) if nothing fits
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return [*messages[:head], *messages[starts[low] :]], starts[low] - head


def _drop_points(messages: Sequence[Message], head: int) -> list[int]:
    """Where the kept tail starts after 0, 1, 2, ... drops (each drop takes the oldest message after the
    head, and the tool results that follow it)."""
    points = [head]
    start, last = head, len(messages) - 1
    while start < last:
        start += 1
        while start < last and messages[start].get("role") == "tool":
            start += 1  # a tool result without its call confuses templates
        points.append(start)
    return points


def _keep_tokens(
    head: Sequence[Message], tokens: list[int], tokenize: Tokenize, policy: ContextOverflowPolicy
) -> int:
    """Length of the protected head as tokens (0 if it is not a clean prefix of the whole prompt)."""
    if policy is ContextOverflowPolicy.ROLLING_WINDOW or not head:
        return 1 if tokens else 0
    try:
        prefix = tokenize(head, False)
    except Exception:  # a template may refuse a conversation that stops after the user turn
        return 0
    return len(prefix) if tokens[: len(prefix)] == prefix else 0


def _cut_tokens(tokens: list[int], budget: int, keep: int) -> list[int]:
    keep = max(0, min(keep, budget // 2))
    return tokens[:keep] + tokens[len(tokens) - (budget - keep) :]
