"""Model workers (engine/process) on the tiny random-weight GGUFs: a real child process per load that
answers as the in-process runtime does, and ends its requests cleanly when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from openlms.core.errors import (
    ContextLengthExceededError,
    InvalidModelFileError,
    ModelCrashedError,
    ModelLoadError,
    ServerBusyError,
    WrongModelTypeError,
)
from openlms.core.types import Done, Fragment, GenerationRequest, LoadConfig, ModelKind, StopReason
from openlms.engine.llama.runtime import LlamaBackend
from openlms.engine.process import ProcessBackend, ProcessRuntime
from openlms.engine.process.wire import WORKER_TAG
from openlms.engine.runtime import ModelRuntime
from tests.support.tiny_gguf import write_tiny_bert_gguf
from tests.unit.engine.test_llama_runtime import GREEDY, describe


def workers() -> list[psutil.Process]:
    """This process's model workers, found as users and e2e tests find them: by the tag in the command
    line."""
    found = []
    for child in psutil.Process().children():
        try:
            if WORKER_TAG in child.cmdline():
                found.append(child)
        except psutil.Error:  # gone, or a zombie not reaped yet
            continue
    return found


async def load(
    path: Path, config: LoadConfig, kind: ModelKind = ModelKind.LLM, **options: int
) -> ProcessRuntime:
    runtime = await asyncio.to_thread(
        ProcessBackend(**options).load, describe(path, kind), config, lambda f: None
    )
    assert isinstance(runtime, ProcessRuntime)
    return runtime


@pytest.fixture
async def worker(tiny_llama: Path) -> AsyncIterator[ProcessRuntime]:
    runtime = await load(tiny_llama, LoadConfig(context_length=256))
    yield runtime
    await asyncio.to_thread(runtime.close)


async def run(runtime: ModelRuntime, request: GenerationRequest) -> tuple[str, Done]:
    text = ""
    async for event in runtime.generate(request):
        if isinstance(event, Fragment):
            text += event.text
        elif isinstance(event, Done):
            return text, event
    raise AssertionError("no Done")


async def test_worker_answers_as_the_in_process_runtime(tiny_llama: Path, worker: ProcessRuntime) -> None:
    local = await asyncio.to_thread(
        LlamaBackend().load, describe(tiny_llama), LoadConfig(context_length=256), lambda f: None
    )
    try:
        request = GenerationRequest(prompt="hello world the cat", sampling=GREEDY, max_tokens=12)
        text, done = await run(worker, request)
        assert (text, done.stats.predicted_tokens) == ((await run(local, request))[0], 12)
        assert worker.tokenize("hello world") == local.tokenize("hello world")
        assert worker.detokenize(local.tokenize("hello world")) == local.detokenize(
            local.tokenize("hello world")
        )
        assert (worker.context_length, worker.chat_template, worker.eos_token) == (
            local.context_length,
            local.chat_template,
            local.eos_token,
        )
        assert worker.load_config == local.load_config
    finally:
        await asyncio.to_thread(local.close)
    [child] = workers()
    assert child.pid == worker.pid and tiny_llama.stem in child.cmdline()


async def test_cancel_reaches_the_worker(worker: ProcessRuntime) -> None:
    stream = worker.generate(GenerationRequest(prompt="hello", sampling=GREEDY, max_tokens=100_000))
    async for event in stream:
        if isinstance(event, Fragment):
            stream.cancel()
        if isinstance(event, Done):
            assert event.stats.stop_reason is StopReason.USER_STOPPED
            break
    text, done = await run(worker, GenerationRequest(prompt="hello", sampling=GREEDY, max_tokens=3))
    assert done.stats.predicted_tokens == 3  # the worker serves the next request
    # idle as soon as the last reply is in (the idle TTL counts from there)
    assert not worker.busy and (worker.usage.running, worker.queued) == (0, 0)


async def test_errors_keep_their_class_and_message(worker: ProcessRuntime, tiny_llama: Path) -> None:
    local = await asyncio.to_thread(
        LlamaBackend().load, describe(tiny_llama), LoadConfig(context_length=256), lambda f: None
    )
    too_long = GenerationRequest(prompt=tuple([5] * 300), sampling=GREEDY, max_tokens=2)
    try:
        with pytest.raises(ContextLengthExceededError) as expected:
            await run(local, too_long)
        with pytest.raises(ContextLengthExceededError) as got:
            await run(worker, too_long)
        assert (got.value.message, got.value.param, got.value.prompt_tokens) == (
            expected.value.message,
            expected.value.param,
            300,
        )
    finally:
        await asyncio.to_thread(local.close)
    with pytest.raises(WrongModelTypeError, match="not an embedding model"):
        await worker.embed(["hi"])


async def test_embeddings_in_a_worker(tmp_path: Path) -> None:
    path = write_tiny_bert_gguf(tmp_path / "tiny-bert-F32.gguf")
    runtime = await load(path, LoadConfig(), ModelKind.EMBEDDING)
    local = await asyncio.to_thread(
        LlamaBackend().load, describe(path, ModelKind.EMBEDDING), LoadConfig(), lambda f: None
    )
    try:
        got = await runtime.embed(["hello world", "the cat"])
        expected = await local.embed(["hello world", "the cat"])
        assert got.prompt_tokens == expected.prompt_tokens
        assert len(got.vectors) == 2
        for vector, reference in zip(got.vectors, expected.vectors, strict=True):
            assert vector == pytest.approx(reference, abs=1e-5)
        assert runtime.kind is ModelKind.EMBEDDING
    finally:
        await asyncio.to_thread(local.close)
        await asyncio.to_thread(runtime.close)


async def test_sigkill_ends_in_flight_and_later_requests(worker: ProcessRuntime) -> None:
    crashes: list[str] = []
    worker.watch(crashes.append)
    stream = worker.generate(GenerationRequest(prompt="hello", sampling=GREEDY, max_tokens=100_000))
    with pytest.raises(
        ModelCrashedError,
        match=r"'tiny-llama-F32' crashed: its worker process was killed by signal 9 \(SIGKILL\)",
    ):
        async for event in stream:
            if isinstance(event, Fragment):
                os.kill(worker.pid, signal.SIGKILL)
    assert crashes == ["killed by signal 9 (SIGKILL)"]
    with pytest.raises(ModelCrashedError, match="SIGKILL"):
        worker.generate(GenerationRequest(prompt="hello", max_tokens=2))
    with pytest.raises(ModelCrashedError):
        worker.tokenize("hello")
    late: list[str] = []
    worker.watch(late.append)  # told at once: it has crashed
    assert late == crashes and not workers()


async def test_close_ends_the_worker(tiny_llama: Path) -> None:
    runtime = await load(tiny_llama, LoadConfig(context_length=256))
    child = psutil.Process(runtime.pid)
    crashes: list[str] = []
    runtime.watch(crashes.append)
    stream = runtime.generate(GenerationRequest(prompt="hello", sampling=GREEDY, max_tokens=100_000))
    async for event in stream:
        if isinstance(event, Fragment):
            break
    await asyncio.to_thread(runtime.close)
    assert not child.is_running() and not workers()
    ended: list[object] = []
    async for event in stream:  # the running prediction ended as unloaded, not as a crash
        ended.append(event)
    assert isinstance(ended[-1], Done) and ended[-1].stats.stop_reason is StopReason.MODEL_UNLOADED
    assert crashes == []


async def test_admission_beyond_parallel_and_queue_is_busy(tiny_llama: Path) -> None:
    runtime = await load(tiny_llama, LoadConfig(context_length=256, parallel=1), max_queued=1)
    try:
        long = GenerationRequest(prompt="hello", sampling=GREEDY, max_tokens=100_000)
        streams = [runtime.generate(long), runtime.generate(long)]
        with pytest.raises(ServerBusyError, match="busy"):
            runtime.generate(long)
        for stream in streams:
            await stream.aclose()
    finally:
        await asyncio.to_thread(runtime.close)


async def test_load_errors_and_crashes_while_loading(tmp_path: Path) -> None:
    bad = tmp_path / "bad-F32.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(InvalidModelFileError):
        await load(bad, LoadConfig())

    stuck = tmp_path / "stuck-F32.gguf"
    os.mkfifo(stuck)  # the worker's load blocks opening it: it is killed while loading, every time
    loading = asyncio.create_task(
        asyncio.to_thread(ProcessBackend().load, describe(stuck), LoadConfig(), lambda f: None)
    )
    while not workers():
        await asyncio.sleep(0.02)
    for child in workers():
        child.kill()
    with pytest.raises(ModelLoadError, match="stuck-F32 failed: its worker process was killed by signal 9"):
        await loading
    assert not workers()
