"""A lazy grammar (tool_choice auto): free text until the trigger appears in the output, then every token
obeys the grammar from the trigger on; a trigger never written changes nothing."""

from __future__ import annotations

import re

from openlms.core.types import GenerationRequest, SamplingParams, StopReason
from openlms.engine.runtime import ModelRuntime
from openlms.parsers.grammar_pieces import gbnf_literal
from tests.unit.engine.test_llama_runtime import run

GREEDY = SamplingParams(temperature=0.0, repeat_penalty=1.0)


TINY_CONTEXT = 512


async def free_text(llm: ModelRuntime, n: int) -> str:
    text, done, _ = await run(llm, GenerationRequest("hello world", GREEDY, max_tokens=n))
    assert done.stats.stop_reason is StopReason.MAX_TOKENS and text
    return text


async def ascii_prefix(llm: ModelRuntime) -> str:
    """What the model writes anyway in its first k tokens, for a k where that is plain ASCII."""
    for k in range(8, 2, -1):
        text = await free_text(llm, k)
        if text.isascii() and text.isprintable():
            return text
    raise AssertionError("no ASCII prefix in the tiny model's greedy output")


async def test_the_grammar_takes_over_at_the_trigger(llm: ModelRuntime) -> None:
    trigger = await ascii_prefix(llm)  # the model writes it again, then the grammar takes over
    grammar = f'root ::= {gbnf_literal(trigger)} [0-9]{{3}} "!"'
    request = GenerationRequest(
        "hello world", GREEDY, max_tokens=60, grammar=grammar, grammar_trigger=trigger
    )
    text, done, _ = await run(llm, request)
    assert re.fullmatch(re.escape(trigger) + r"[0-9]{3}!", text), text
    assert done.stats.stop_reason is StopReason.EOS  # the grammar ended, then only end-of-generation


async def test_a_trigger_never_written_changes_nothing(llm: ModelRuntime) -> None:
    free = await free_text(llm, 24)
    request = GenerationRequest(
        "hello world", GREEDY, max_tokens=24, grammar='root ::= "QQ" [0-9]', grammar_trigger="QQ\x01"
    )
    text, _, _ = await run(llm, request)
    assert text == free


async def test_a_trigger_inside_a_token_leaves_the_text_free(llm: ModelRuntime) -> None:
    free = await free_text(llm, 24)
    prefix = await ascii_prefix(llm)
    assert prefix.startswith(" ")  # the first token is " word": a trigger without the space starts inside it
    trigger = prefix[1:]
    grammar = f'root ::= {gbnf_literal(trigger)} "\\x01" [0-9]'
    request = GenerationRequest(
        "hello world", GREEDY, max_tokens=24, grammar=grammar, grammar_trigger=trigger
    )
    text, _, _ = await run(llm, request)
    assert text == free  # never armed: nothing constrained, nothing crashed


async def test_a_token_that_already_breaks_the_grammar_leaves_the_text_free(llm: ModelRuntime) -> None:
    free = await free_text(llm, 24)
    prefix = await ascii_prefix(llm)
    first_word = prefix.split()[0]  # " three..." is one token: the trigger " thr" ends inside it
    trigger = " " + first_word[:3]
    grammar = f'root ::= {gbnf_literal(trigger)} "\\x01" [0-9]'
    request = GenerationRequest(
        "hello world", GREEDY, max_tokens=24, grammar=grammar, grammar_trigger=trigger
    )
    text, _, _ = await run(llm, request)
    assert text == free  # the grammar refused that token's rest: never armed, nothing crashed
