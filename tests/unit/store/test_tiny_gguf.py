"""The shared test models themselves: deterministic, and usable by llama.cpp (the engine tests rely on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tiny_gguf import BOS_ID, EOS_ID, write_tiny_llama_gguf


def test_tiny_llama_is_deterministic(tmp_path: Path, tiny_llama: Path) -> None:
    again = write_tiny_llama_gguf(tmp_path / "again.gguf")
    assert again.read_bytes() == tiny_llama.read_bytes()
    assert tiny_llama.stat().st_size < 1_000_000


def test_tiny_llama_loads_and_generates(tiny_llama: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    model = llama_cpp.Llama(model_path=str(tiny_llama), verbose=False, n_ctx=256, seed=1)
    assert model.token_bos() == BOS_ID and model.token_eos() == EOS_ID
    assert model.tokenize(b"hello world")[0] == BOS_ID
    first = model("hello", max_tokens=4, temperature=0.0)
    second = model("hello", max_tokens=4, temperature=0.0)
    assert first["choices"][0]["text"] == second["choices"][0]["text"]
    assert first["usage"]["completion_tokens"] == 4
    chat = model.create_chat_completion(messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert chat["usage"]["prompt_tokens"] > 5


def test_tiny_bert_embeds(tiny_bert: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    model = llama_cpp.Llama(model_path=str(tiny_bert), embedding=True, verbose=False, n_ctx=128)
    assert len(model.embed("the cat sat")) == 32
