"""Fitting a conversation into the context: each policy keeps what it promises and reports the cut."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from openlms.core.errors import ContextLengthExceededError
from openlms.core.types import ContextOverflowPolicy as P
from openlms.services.overflow import fit, reserve_for_reply


def tokenize(messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool) -> list[int]:
    """One token per word, plus 2 per message; ids encode the message index for checking."""
    out = [0]  # BOS
    for index, message in enumerate(messages):
        words = str(message["content"]).split()
        out += [1000 + index] + [10_000 + len(words)] * len(words) + [2]
    return out + ([3] if add_generation_prompt else [])


def conversation(n_turns: int, words: int = 10) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [{"role": "system", "content": "sys " * 5}]
    for i in range(n_turns):
        msgs.append({"role": "user", "content": f"u{i} " * words})
        msgs.append({"role": "assistant", "content": f"a{i} " * words})
    msgs.append({"role": "user", "content": "last question"})
    return msgs


def test_fits_untouched() -> None:
    msgs = conversation(2)
    fitted = fit(msgs, tokenize, n_ctx=4096, policy=P.STOP_AT_LIMIT, max_tokens=None)
    assert fitted.truncation is None
    assert fitted.tokens == tokenize(msgs, True)


def test_stop_at_limit_refuses() -> None:
    with pytest.raises(ContextLengthExceededError):
        fit(conversation(20), tokenize, n_ctx=128, policy=P.STOP_AT_LIMIT, max_tokens=None)


def test_truncate_middle_keeps_system_first_user_and_last() -> None:
    msgs = conversation(20)
    fitted = fit(msgs, tokenize, n_ctx=160, policy=P.TRUNCATE_MIDDLE, max_tokens=16)
    kept = list(fitted.messages)
    assert kept[0] == msgs[0] and kept[1] == msgs[1] and kept[-1] == msgs[-1]
    assert len(fitted.tokens) <= 160 - reserve_for_reply(160, 16)
    assert fitted.truncation is not None and fitted.truncation.dropped_messages == len(msgs) - len(kept)
    assert fitted.truncation.dropped_tokens == len(tokenize(msgs, True)) - len(fitted.tokens)
    assert fitted.keep_tokens == len(tokenize(kept[:2], False))
    assert kept[2:-1] == msgs[len(msgs) - len(kept) + 2 : -1]  # the newest middle messages survive


def test_rolling_window_drops_the_oldest_turns() -> None:
    msgs = conversation(20)
    fitted = fit(msgs, tokenize, n_ctx=160, policy=P.ROLLING_WINDOW, max_tokens=16)
    kept = list(fitted.messages)
    assert kept[0] == msgs[0] and kept[-1] == msgs[-1]
    assert msgs[1] not in kept
    assert kept[1:] == msgs[len(msgs) - len(kept) + 1 :]
    assert fitted.keep_tokens == 1


def test_tool_results_go_with_their_call() -> None:
    msgs: list[dict[str, Any]] = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "first " * 30},
        {"role": "assistant", "content": "call " * 30},
        {"role": "tool", "content": "result " * 30},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "next"},
    ]
    fitted = fit(msgs, tokenize, n_ctx=64, policy=P.ROLLING_WINDOW, max_tokens=8)
    roles = [m["role"] for m in fitted.messages]
    assert "tool" not in roles or roles[roles.index("tool") - 1] == "assistant"
    assert roles[0] != "tool" and (len(roles) < 2 or roles[1] != "tool")


def test_token_cut_when_one_message_is_too_long() -> None:
    msgs = [{"role": "system", "content": "sys"}, {"role": "user", "content": "w " * 500}]
    for policy in (P.TRUNCATE_MIDDLE, P.ROLLING_WINDOW):
        fitted = fit(msgs, tokenize, n_ctx=100, policy=policy, max_tokens=10)
        assert fitted.token_cut
        assert len(fitted.tokens) == 100 - reserve_for_reply(100, 10)
        assert fitted.tokens[-1] == 3  # the generation prompt survives
        assert fitted.tokens[0] == 0  # so does the start of the prompt


def _one_at_a_time(
    messages: list[dict[str, Any]], head: int, budget: int
) -> tuple[list[dict[str, Any]], int]:
    """The old (quadratic) semantics, as the reference: drop one message at a time until it fits."""
    kept, dropped = list(messages), 0
    while len(tokenize(kept, True)) > budget and head < len(kept) - 1:
        del kept[head]
        dropped += 1
        while head < len(kept) - 1 and kept[head].get("role") == "tool":
            del kept[head]
            dropped += 1
    return kept, dropped


@pytest.mark.parametrize("policy", [P.TRUNCATE_MIDDLE, P.ROLLING_WINDOW])
@pytest.mark.parametrize("n_ctx", [48, 96, 160, 300, 500])
def test_search_drops_what_dropping_one_at_a_time_drops(policy: P, n_ctx: int) -> None:
    msgs = conversation(30, words=7)
    msgs[5:5] = [
        {"role": "assistant", "content": "call", "tool_calls": [{"id": "1"}]},
        {"role": "tool", "content": "result one"},
        {"role": "tool", "content": "result two"},
    ]
    fitted = fit(msgs, tokenize, n_ctx=n_ctx, policy=policy, max_tokens=16)
    head = 2 if policy is P.TRUNCATE_MIDDLE else 1
    expected, dropped = _one_at_a_time(msgs, head, n_ctx - reserve_for_reply(n_ctx, 16))
    assert list(fitted.messages) == expected
    assert fitted.truncation is not None and fitted.truncation.dropped_messages == dropped


def test_many_short_messages_take_few_renders() -> None:
    """2001 short messages: the cut renders the conversation O(log n) times, not once per dropped one."""
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(2001)]
    calls = []

    def counting(messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool) -> list[int]:
        calls.append(len(messages))
        return tokenize(messages, add_generation_prompt)

    fitted = fit(msgs, counting, n_ctx=512, policy=P.TRUNCATE_MIDDLE, max_tokens=64)
    assert fitted.truncation is not None and fitted.truncation.dropped_messages > 1800
    assert len(calls) <= 20
