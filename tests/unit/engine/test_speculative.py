"""Speculative decoding on the real llama.cpp runtime: tiny random-weight GGUFs as target and draft (the
same model, another seed's weights, other vocabularies), and SmolLM2 drafting for itself."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.core.types import (
    ContextOverflowPolicy,
    Done,
    DraftSpec,
    Fragment,
    GenerationRequest,
    GenerationStats,
    LoadConfig,
    ModelDescriptor,
    ModelKind,
    SamplingParams,
    StopReason,
)
from openlms.engine.fake import FakeBackend
from openlms.engine.llama.runtime import LlamaBackend
from openlms.engine.runtime import ModelRuntime
from openlms.parsers.grammar_pieces import gbnf_literal
from tests.support import tiny_gguf
from tests.unit.engine.conftest import load_tiny
from tests.unit.engine.test_lazy_grammar import ascii_prefix
from tests.unit.engine.test_llama_runtime import describe, run

GREEDY = SamplingParams(temperature=0.0, repeat_penalty=1.0)
PROMPTS = ("hello world", "the cat sat on the mat", "what is")


@pytest.fixture(scope="module")
def other_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same vocabulary, other weights: a draft the target mostly disagrees with."""
    return tiny_gguf.write_tiny_llama_gguf(tmp_path_factory.mktemp("d") / "tiny-other-F32.gguf", seed=1)


def self_draft(path: Path, **settings: Any) -> DraftSpec:
    return DraftSpec(describe(path), **settings)


def assert_counts(stats: GenerationStats, key: str) -> None:
    assert stats.draft_model_key == key
    total = stats.accepted_draft_tokens + stats.rejected_draft_tokens + stats.ignored_draft_tokens
    assert total == stats.draft_tokens


async def both(
    rt: ModelRuntime, request: GenerationRequest, draft: DraftSpec
) -> tuple[tuple[str, Done], tuple[str, Done, list[object]]]:
    plain, plain_done, _ = await run(rt, request)
    spec = await run(rt, replace(request, draft=draft))
    return (plain, plain_done), spec


@pytest.mark.parametrize(
    "settings",
    [{"num_draft_tokens": 4}, {"num_draft_tokens": 1}, {"min_continue_probability": 0.0}, {}],
    ids=["exact4", "exact1", "adaptive-p0", "defaults"],
)
async def test_greedy_output_is_identical_with_a_draft(
    llm: ModelRuntime, tiny_llama: Path, settings: dict[str, float]
) -> None:
    for prompt in PROMPTS:
        request = GenerationRequest(prompt, GREEDY, max_tokens=60)
        (plain, plain_done), (text, done, events) = await both(
            llm, request, self_draft(tiny_llama, **settings)
        )
        assert text == plain and done.stats.predicted_tokens == plain_done.stats.predicted_tokens == 60
        stats = done.stats
        assert_counts(stats, tiny_llama.stem)
        assert stats.rejected_draft_tokens == 0  # the same model at temperature 0 agrees with itself
        if settings:  # random weights are never 75% sure: the default threshold drafts nothing
            assert stats.accepted_draft_tokens >= 29
            assert any(isinstance(e, Fragment) and e.contains_drafted for e in events)
        fragments = [e for e in events if isinstance(e, Fragment)]
        assert sum(f.token_count for f in fragments) == 60


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingParams(temperature=0.0, repeat_penalty=1.3),  # penalties make the target differ at times
        SamplingParams(temperature=0.7, seed=3),
        SamplingParams(temperature=1.5, seed=5, top_k=0, top_p=1.0, min_p=0.0),
    ],
    ids=["greedy-penalties", "seeded-t0.7", "seeded-t1.5"],
)
async def test_rejected_drafts_roll_back_and_the_output_is_unchanged(
    llm: ModelRuntime, tiny_llama: Path, sampling: SamplingParams
) -> None:
    """The target samples every output token itself (penalties, temperature and seed included), so the
    text is the one it writes alone, whatever the draft proposed."""
    for prompt in PROMPTS[:2]:
        request = GenerationRequest(prompt, sampling, max_tokens=80)
        (plain, _), (text, done, _) = await both(llm, request, self_draft(tiny_llama, num_draft_tokens=5))
        assert text == plain
        assert_counts(done.stats, tiny_llama.stem)
    if sampling.greedy:
        assert done.stats.accepted_draft_tokens > 0 and done.stats.rejected_draft_tokens > 0


async def test_a_draft_that_disagrees_changes_nothing(llm: ModelRuntime, other_llama: Path) -> None:
    for prompt in PROMPTS:
        request = GenerationRequest(prompt, GREEDY, max_tokens=50)
        (plain, _), (text, done, _) = await both(llm, request, self_draft(other_llama, num_draft_tokens=3))
        assert text == plain
        stats = done.stats
        assert_counts(stats, other_llama.stem)
        assert stats.rejected_draft_tokens > 0 and stats.draft_tokens > 0


async def test_stop_strings_max_tokens_and_eos_are_exact(llm: ModelRuntime, tiny_llama: Path) -> None:
    draft = self_draft(tiny_llama, num_draft_tokens=6)
    long_text, _, _ = await run(llm, GenerationRequest("hello world", GREEDY, max_tokens=40))
    stop = long_text[10:14]
    request = GenerationRequest("hello world", GREEDY, max_tokens=40, stop=(stop,))
    (plain, plain_done), (text, done, _) = await both(llm, request, draft)
    assert text == plain and stop not in text and done.stats.stop_reason is StopReason.STOP_STRING
    assert done.stats.stop_string == stop and done.stats.predicted_tokens == plain_done.stats.predicted_tokens
    assert_counts(done.stats, tiny_llama.stem)
    for max_tokens in (1, 2, 7, 13):
        request = GenerationRequest("the cat", GREEDY, max_tokens=max_tokens)
        (plain, _), (text, done, _) = await both(llm, request, draft)
        assert text == plain and done.stats.predicted_tokens == max_tokens
        assert done.stats.stop_reason is StopReason.MAX_TOKENS
        assert done.stats.ignored_draft_tokens == 0  # drafts never run past max_tokens
    eos = replace(GREEDY, logit_bias={tiny_gguf.EOS_ID: 100.0})
    text, done, _ = await run(llm, GenerationRequest("hello", eos, max_tokens=9, draft=draft))
    assert text == "" and done.stats.stop_reason is StopReason.EOS and done.stats.predicted_tokens == 1


async def test_short_drafts_are_ignored(llm: ModelRuntime, tiny_llama: Path) -> None:
    request = GenerationRequest("hello world", GREEDY, max_tokens=20)
    draft = self_draft(tiny_llama, num_draft_tokens=2, min_draft_length=3)
    (plain, _), (text, done, _) = await both(llm, request, draft)
    stats = done.stats
    assert text == plain and stats.accepted_draft_tokens == 0 and stats.rejected_draft_tokens == 0
    assert stats.ignored_draft_tokens == 0 and stats.draft_tokens == 0  # 2 < 3: never worth drafting
    draft = self_draft(tiny_llama, min_continue_probability=0.0, min_draft_length=3)
    (plain, _), (text, done, _) = await both(llm, request, draft)
    assert text == plain and done.stats.accepted_draft_tokens > 0
    assert_counts(done.stats, tiny_llama.stem)


async def test_prefix_reuse_and_several_requests(llm: ModelRuntime, tiny_llama: Path) -> None:
    draft = self_draft(tiny_llama, num_draft_tokens=4)
    first, _, _ = await run(llm, GenerationRequest("the dog sat", GREEDY, max_tokens=20, draft=draft))
    again, done, _ = await run(llm, GenerationRequest("the dog sat", GREEDY, max_tokens=20, draft=draft))
    assert first == again and done.stats.cached_prompt_tokens == done.stats.prompt_tokens - 1
    longer = "the dog sat" + first
    plain, _, _ = await run(llm, GenerationRequest(longer, GREEDY, max_tokens=20))
    text, done, _ = await run(llm, GenerationRequest(longer, GREEDY, max_tokens=20, draft=draft))
    assert text == plain and done.stats.cached_prompt_tokens > 0


async def test_grammar_still_constrains_the_output(llm: ModelRuntime, tiny_llama: Path) -> None:
    grammar = 'root ::= ("yes" | "no" | " the cat") (" " [a-z]+)* "."'
    request = GenerationRequest("hello", GREEDY, max_tokens=30, grammar=grammar)
    (plain, _), (text, done, _) = await both(llm, request, self_draft(tiny_llama, num_draft_tokens=4))
    assert text == plain and text
    assert_counts(done.stats, tiny_llama.stem)


async def test_a_lazy_grammar_takes_over_at_its_trigger(llm: ModelRuntime, tiny_llama: Path) -> None:
    trigger = await ascii_prefix(llm)
    grammar = f'root ::= {gbnf_literal(trigger)} [0-9]{{3}} "!"'
    request = GenerationRequest(
        "hello world", GREEDY, max_tokens=60, grammar=grammar, grammar_trigger=trigger
    )
    (plain, _), (text, done, _) = await both(llm, request, self_draft(tiny_llama, num_draft_tokens=4))
    assert text == plain and re.fullmatch(re.escape(trigger) + r"[0-9]{3}!", text), text
    assert done.stats.accepted_draft_tokens > 0 and done.stats.rejected_draft_tokens > 0
    assert_counts(done.stats, tiny_llama.stem)


@pytest.mark.parametrize(
    "overflow", [ContextOverflowPolicy.STOP_AT_LIMIT, ContextOverflowPolicy.ROLLING_WINDOW]
)
async def test_the_end_of_the_context(tiny_llama: Path, overflow: ContextOverflowPolicy) -> None:
    rt = await load_tiny(tiny_llama, 64)
    try:
        request = GenerationRequest("the cat sat on the mat", GREEDY, max_tokens=120, overflow=overflow)
        (plain, plain_done), (text, done, _) = await both(
            rt, request, self_draft(tiny_llama, num_draft_tokens=8)
        )
        assert text == plain and done.stats.stop_reason is plain_done.stats.stop_reason
        assert done.stats.predicted_tokens == plain_done.stats.predicted_tokens
        assert done.stats.context_shift_tokens == plain_done.stats.context_shift_tokens
        assert_counts(done.stats, tiny_llama.stem)
        again, _, _ = await run(rt, GenerationRequest("hello", GREEDY, max_tokens=10))
        assert again  # the caches are consistent afterwards
    finally:
        await asyncio.to_thread(rt.close)


async def test_cancel_stops_a_speculative_generation(llm: ModelRuntime, tiny_llama: Path) -> None:
    draft = self_draft(tiny_llama, num_draft_tokens=4)
    stream = llm.generate(GenerationRequest("hello", GREEDY, draft=draft))  # until the context ends
    async for event in stream:
        if isinstance(event, Fragment):
            break
    await stream.aclose()
    for _ in range(100):
        if not llm.busy:
            break
        await asyncio.sleep(0.01)
    assert not llm.busy
    plain, _, _ = await run(llm, GenerationRequest("hello", GREEDY, max_tokens=12))
    text, done, _ = await run(llm, GenerationRequest("hello", GREEDY, max_tokens=12, draft=draft))
    assert text == plain and done.stats.predicted_tokens == 12


@pytest.fixture(scope="module")
def other_vocabularies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    folder = tmp_path_factory.mktemp("v")
    tokens, scores, types = tiny_gguf.tiny_spm_vocab()
    bigger = (tokens + [f"extra{i}" for i in range(200)], scores + [0.0] * 200, types + [1] * 200)
    renamed = (tokens[:-1] + ["zzz"], scores, types)
    paths = {}
    for name, vocab in (("bigger", bigger), ("renamed", renamed)):
        with mock.patch.object(tiny_gguf, "tiny_spm_vocab", lambda vocab=vocab: vocab):
            paths[name] = tiny_gguf.write_tiny_llama_gguf(folder / f"tiny-{name}-F32.gguf")
    paths["no-bos"] = tiny_gguf.write_tiny_llama_gguf(folder / "tiny-no-bos-F32.gguf", add_bos=False)
    yield paths


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("bigger", "its vocabulary has 738 tokens and the main model's 538"),
        ("renamed", "token 537 is 'zzz' in the draft model but 'llo' in the main model"),
        ("no-bos", "its add-BOS setting differs"),
    ],
)
async def test_an_incompatible_draft_is_refused_clearly(
    llm: ModelRuntime, other_vocabularies: dict[str, Path], name: str, why: str
) -> None:
    path = other_vocabularies[name]
    draft = DraftSpec(describe(path))
    for _ in range(2):  # the second refusal comes from the cache
        with pytest.raises(InvalidRequestError) as caught:
            await run(llm, GenerationRequest("hello", GREEDY, max_tokens=5, draft=draft))
        assert caught.value.param == "draftModel"
        assert f"The draft model '{path.stem}' cannot draft for this model: {why}" in caught.value.message
    text, done, _ = await run(llm, GenerationRequest("hello", GREEDY, max_tokens=5))
    assert done.stats.predicted_tokens == 5 and done.stats.draft_model_key is None


async def test_bad_draft_settings_fail_before_anything_runs(llm: ModelRuntime, tiny_llama: Path) -> None:
    embedding = DraftSpec(describe(tiny_llama, ModelKind.EMBEDDING))
    bad = [
        embedding,
        self_draft(tiny_llama, num_draft_tokens=0),
        self_draft(tiny_llama, min_draft_length=-1),
        self_draft(tiny_llama, min_continue_probability=1.5),
    ]
    for draft in bad:
        with pytest.raises(InvalidRequestError) as caught:
            llm.generate(GenerationRequest("hello", GREEDY, draft=draft))
        assert caught.value.param == "draftModel"
    assert "embedding model" in str(_raised(llm, embedding))


def _raised(rt: ModelRuntime, draft: DraftSpec) -> InvalidRequestError:
    try:
        rt.generate(GenerationRequest("hello", GREEDY, draft=draft))
    except InvalidRequestError as exc:
        return exc
    raise AssertionError("no error")


async def test_the_fake_backend_reports_drafts() -> None:
    backend = FakeBackend(
        reply=lambda _: "one two three four five six seven eight nine ten", incompatible_drafts=("x",)
    )
    target = describe_fake("target")
    rt = await asyncio.to_thread(backend.load, target, LoadConfig(), lambda p: None)
    try:
        text, done, events = await run(rt, GenerationRequest("hi", draft=DraftSpec(describe_fake("d"))))
        stats = done.stats
        assert text.startswith("one two") and stats.predicted_tokens == 10 and stats.draft_model_key == "d"
        # steps of 4 drafted after the first token: 3 accepted + 1 rejected each; the third step ends early
        assert (stats.draft_tokens, stats.accepted_draft_tokens, stats.rejected_draft_tokens) == (12, 7, 2)
        assert stats.ignored_draft_tokens == 3
        assert any(e.contains_drafted for e in events if isinstance(e, Fragment))  # merged by the channel
        _, done, _ = await run(rt, GenerationRequest("hi", max_tokens=3))
        assert done.stats.draft_model_key is None and done.stats.draft_tokens == 0
        with pytest.raises(InvalidRequestError) as caught:
            await run(rt, GenerationRequest("hi", draft=DraftSpec(describe_fake("x"))))
        assert caught.value.param == "draftModel"
    finally:
        rt.close()


def describe_fake(key: str) -> ModelDescriptor:
    path = Path(f"/models/p/r/{key}.gguf")
    return ModelDescriptor(key, path, f"p/r/{key}.gguf", "p", ModelKind.LLM, key, 1)


@pytest.mark.slow
async def test_smollm2_drafting_for_itself_writes_the_same_text() -> None:
    from openlms.store import ModelCatalog
    from tests.support.server import CHAT_MODEL, default_models_dir

    found = ModelCatalog(default_models_dir()).find(CHAT_MODEL)
    if found is None:
        pytest.skip(f"{CHAT_MODEL} is not installed (run openlms-setup-models)")
    rt = await asyncio.to_thread(LlamaBackend().load, found, LoadConfig(context_length=1024), lambda p: None)
    try:
        prompt = "<|im_start|>user\nList the first ten prime numbers.<|im_end|>\n<|im_start|>assistant\n"
        request = GenerationRequest(prompt, GREEDY, max_tokens=80, add_bos=False)
        (plain, _), (text, done, _) = await both(rt, request, DraftSpec(found))
        stats = done.stats
        assert text == plain and stats.draft_model_key == found.key
        assert stats.accepted_draft_tokens > stats.rejected_draft_tokens  # it mostly agrees with itself
        assert_counts(stats, found.key)
    finally:
        await asyncio.to_thread(rt.close)
