"""The real llama.cpp runtime on tiny random-weight GGUFs: generation, stops, reuse, cancel, embeddings."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openlms.core.errors import ContextLengthExceededError, WrongModelTypeError
from openlms.core.types import (
    Done,
    FirstToken,
    Fragment,
    GenerationRequest,
    LoadConfig,
    ModelDescriptor,
    ModelKind,
    PromptProgress,
    SamplingParams,
    StopReason,
)
from openlms.engine.llama.runtime import LlamaBackend
from openlms.engine.runtime import ModelRuntime
from tests.support.tiny_gguf import write_tiny_bert_gguf

GREEDY = SamplingParams(temperature=0.0, repeat_penalty=1.0)


def describe(path: Path, kind: ModelKind = ModelKind.LLM) -> ModelDescriptor:
    return ModelDescriptor(
        key=path.stem,
        path=path,
        rel_path=f"t/t/{path.name}",
        publisher="t",
        kind=kind,
        display_name=path.stem,
        size_bytes=path.stat().st_size,
        architecture="llama",
    )


@pytest.fixture
async def llm(tiny_llama: Path) -> AsyncIterator[ModelRuntime]:
    progress: list[float] = []
    rt = await asyncio.to_thread(
        LlamaBackend().load, describe(tiny_llama), LoadConfig(context_length=256), progress.append
    )
    assert progress and progress[-1] == pytest.approx(1.0)
    yield rt
    await asyncio.to_thread(rt.close)


async def run(rt: ModelRuntime, request: GenerationRequest) -> tuple[str, Done, list[object]]:
    text, events = "", []
    async for event in rt.generate(request):
        events.append(event)
        if isinstance(event, Fragment):
            text += event.text
        elif isinstance(event, Done):
            return text, event, events
    raise AssertionError("no Done event")


async def test_greedy_generation_is_deterministic_and_reuses_the_prefix(llm: ModelRuntime) -> None:
    request = GenerationRequest("hello world", GREEDY, max_tokens=12)
    first, done1, events = await run(llm, request)
    second, done2, _ = await run(llm, request)
    assert first == second and first
    assert done1.stats.stop_reason is StopReason.MAX_TOKENS and done1.stats.predicted_tokens == 12
    assert done2.stats.cached_prompt_tokens == done2.stats.prompt_tokens - 1  # all but the last token reused
    kinds = [type(e) for e in events]
    assert kinds[0] is PromptProgress and FirstToken in kinds and kinds[-1] is Done


async def test_stop_string_is_cut_and_reported(llm: ModelRuntime) -> None:
    text, _, _ = await run(llm, GenerationRequest("hello world", GREEDY, max_tokens=12))
    stop = text[3:6]
    cut, done, _ = await run(llm, GenerationRequest("hello world", GREEDY, max_tokens=12, stop=(stop,)))
    assert done.stats.stop_reason is StopReason.STOP_STRING and done.stats.stop_string == stop
    assert cut == text[: text.index(stop)] and stop not in cut


async def test_context_end_and_overflow(llm: ModelRuntime) -> None:
    long_prompt = tuple([5] * 250)
    _, done, _ = await run(llm, GenerationRequest(long_prompt, GREEDY))
    assert done.stats.stop_reason is StopReason.CONTEXT_LENGTH
    assert done.stats.prompt_tokens + done.stats.predicted_tokens <= 256
    with pytest.raises(ContextLengthExceededError):
        await run(llm, GenerationRequest(tuple([5] * 300), GREEDY))


async def test_cancel_stops_generation(llm: ModelRuntime) -> None:
    stream = llm.generate(GenerationRequest("hello", GREEDY))  # no max_tokens: until the context ends
    async for event in stream:
        if isinstance(event, Fragment):
            break
    await stream.aclose()
    for _ in range(50):
        if not llm.busy:
            break
        await asyncio.sleep(0.01)
    assert not llm.busy
    text, done, _ = await run(llm, GenerationRequest("hello", GREEDY, max_tokens=3))
    assert done.stats.predicted_tokens == 3  # the runtime still serves after a cancel


async def test_tokenize_round_trip_and_llm_refuses_embeddings(llm: ModelRuntime) -> None:
    tokens = llm.tokenize("hello world")
    assert tokens and llm.detokenize(tokens).strip() == "hello world"
    assert llm.chat_template and "im_start" in llm.chat_template
    with pytest.raises(WrongModelTypeError):
        await llm.embed(["x"])


async def test_embeddings_are_unit_vectors_and_batched(tmp_path: Path) -> None:
    path = write_tiny_bert_gguf(tmp_path / "tiny-bert-F32.gguf")
    rt = await asyncio.to_thread(
        LlamaBackend().load, describe(path, ModelKind.EMBEDDING), LoadConfig(), lambda p: None
    )
    try:
        texts = [f"the cat sat {i}" for i in range(40)]
        result = await rt.embed(texts)
        single = await rt.embed([texts[7]])
        assert len(result.vectors) == 40 and result.prompt_tokens > 40
        assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in result.vectors)
        assert result.vectors[7] == pytest.approx(
            single.vectors[0], abs=1e-4
        )  # batching does not change results
        with pytest.raises(WrongModelTypeError):
            rt.generate(GenerationRequest("x"))
        # the limit is the model's trained length, not llama.cpp's padded multi-sequence context
        trained = rt.model.n_ctx_train  # type: ignore[attr-defined]
        assert rt.context_length == rt.load_config.context_length == min(trained, 512)
        with pytest.raises(ContextLengthExceededError):
            await rt.embed(["word " * (rt.context_length + 5)])
    finally:
        await asyncio.to_thread(rt.close)


def test_every_kv_cache_type_has_its_ggml_type() -> None:
    from openlms.core.types import KV_CACHE_TYPES
    from openlms.engine.llama.native import GGML_TYPES

    assert sorted(GGML_TYPES) == sorted(KV_CACHE_TYPES)


@pytest.mark.parametrize("context_length", [40, 100])  # the tiny BERT is trained on 128
def test_an_embedding_model_loads_with_a_context_not_a_multiple_of_64(
    tmp_path: Path, context_length: int
) -> None:
    """llama.cpp aborted the whole process (a ggml assert) for such a context: run it in a child process."""
    path = write_tiny_bert_gguf(tmp_path / "tiny-bert-F32.gguf")
    script = f"""
import asyncio
import subprocess
import sys
from pathlib import Path
from openlms.core.types import LoadConfig, ModelKind
from openlms.engine.llama.runtime import LlamaBackend
from tests.unit.engine.test_llama_runtime import describe
config = LoadConfig(context_length={context_length})
rt = LlamaBackend().load(describe(Path({str(path)!r}), ModelKind.EMBEDDING), config, lambda p: None)
result = asyncio.run(rt.embed(["the cat sat " * 5, "x"]))
print("embedded", rt.context_length, len(result.vectors))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=Path.cwd()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"embedded {context_length} 2" in done.stdout
