"""The tiny random-weight llama every engine test runs on: written once per session, loaded per test with
the context length its module asks for (`TINY_CONTEXT`, default 256)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from openlms.core.types import LoadConfig
from openlms.engine.llama.runtime import LlamaBackend
from openlms.engine.runtime import ModelRuntime
from tests.support.tiny_gguf import write_tiny_llama_gguf
from tests.unit.engine.test_llama_runtime import describe


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("m") / "tiny-llama-F32.gguf")


async def load_tiny(path: Path, context_length: int) -> ModelRuntime:
    config = LoadConfig(context_length=context_length)
    return await asyncio.to_thread(LlamaBackend().load, describe(path), config, lambda p: None)


@pytest.fixture
async def llm(tiny_llama: Path, request: pytest.FixtureRequest) -> AsyncIterator[ModelRuntime]:
    rt = await load_tiny(tiny_llama, getattr(request.module, "TINY_CONTEXT", 256))
    yield rt
    await asyncio.to_thread(rt.close)
