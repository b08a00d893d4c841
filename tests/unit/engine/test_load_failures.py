"""A file llama.cpp refuses is the caller's input (InvalidModelFileError, 4xx) with llama.cpp's reason;
integers for C fields are refused, never wrapped (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlms.core.errors import InvalidModelFileError, InvalidRequestError, ModelLoadError
from openlms.core.types import LoadConfig
from openlms.engine.llama.failures import LogTail, c_int, load_failure
from openlms.engine.llama.native import ContextParams, LlamaContext, LlamaModel


def load(path: Path) -> LlamaModel:
    return LlamaModel(path, LoadConfig(), architecture="llama", n_layers=None, on_progress=lambda _: True)


def test_a_truncated_file_is_a_file_error_naming_the_tensor(tiny_llama: Path, tmp_path: Path) -> None:
    data = tiny_llama.read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(data[: len(data) - 5000])
    with pytest.raises(InvalidModelFileError) as info:
        load(truncated)
    assert "not within the file bounds" in info.value.message and "truncated.gguf" in info.value.message


def test_an_unknown_architecture_is_a_file_error(tiny_llama: Path, tmp_path: Path) -> None:
    data = bytearray(tiny_llama.read_bytes())
    at = data.index(b"llama", 30)  # general.architecture's value
    data[at : at + 5] = b"xyzzy"
    odd = tmp_path / "odd.gguf"
    odd.write_bytes(bytes(data))
    with pytest.raises(InvalidModelFileError, match="unknown model architecture: 'xyzzy'"):
        load(odd)


def test_out_of_memory_and_silence_stay_server_errors() -> None:
    oom = load_failure(
        Path("m.gguf"), ["llama_model_load: error loading model: unable to allocate CPU buffer"]
    )
    assert type(oom) is ModelLoadError and "memory" in oom.message
    assert type(load_failure(Path("m.gguf"), [])) is ModelLoadError


def test_the_log_tail_gives_only_the_lines_since_a_mark() -> None:
    tail = LogTail(size=3)
    tail.add("old")
    mark = tail.count
    for line in ("a", "b", "c", "d"):
        tail.add(line)
    assert tail.since(mark) == ["b", "c", "d"]  # bounded
    assert tail.since(tail.count) == []


@pytest.mark.parametrize(("value", "ok"), [(0, False), (1, True), (2**32 - 1, True), (2**32 + 64, False)])
def test_c_integers_are_refused_outside_their_range(value: int, ok: bool) -> None:
    if ok:
        assert c_int("context_length", value, 1, 2**32 - 1) == value
    else:
        with pytest.raises(InvalidRequestError, match=str(value)):
            c_int("context_length", value, 1, 2**32 - 1)


def test_a_context_of_2_pow_32_plus_64_is_refused_not_wrapped(tiny_llama: Path) -> None:
    model = load(tiny_llama)
    try:
        with pytest.raises(InvalidRequestError, match="4294967360"):
            LlamaContext(model, ContextParams(n_ctx=2**32 + 64, n_batch=64, n_threads=1))
    finally:
        model.close()


def test_a_batch_smaller_than_the_sequences_is_raised_not_an_abort(tiny_llama: Path) -> None:
    """eval_batch_size 1 with 4 parallel sequences made llama.cpp abort the process (GGML_ASSERT on
    n_outputs_max); the batch is raised to one token per sequence."""
    model = load(tiny_llama)
    try:
        context = LlamaContext(model, ContextParams(n_ctx=256, n_batch=1, n_threads=1, n_seq_max=4))
        try:
            assert context.n_batch == 4
        finally:
            context.close()
    finally:
        model.close()
