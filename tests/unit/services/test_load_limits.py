"""Load limits (issue 10): the context is capped by the model's trained one, integers never wrap, and a
load whose estimated memory does not fit is refused before anything reaches llama.cpp."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from openlms.core.errors import InsufficientMemoryError, InvalidRequestError
from openlms.core.types import LoadConfig, ModelDescriptor, ModelKind
from openlms.services.load_limits import MARGIN_BYTES, check_load, check_ranges
from openlms.store.catalog import ModelCatalog
from openlms.store.gguf_meta import GGUFMetadata
from openlms.store.memory import SystemMemory, estimate_load, kv_bytes_per_token
from tests.support.tiny_gguf import write_tiny_llama_gguf

PLENTY = SystemMemory(total_bytes=1 << 40, available_bytes=1 << 40)
GIB = 1 << 30
Tiny = tuple[ModelDescriptor, GGUFMetadata]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    models = tmp_path_factory.mktemp("models")
    write_tiny_llama_gguf(models / "p" / "r" / "tiny.gguf", context_length=2048)
    catalog = ModelCatalog(models)
    (descriptor,) = catalog.scan()
    meta = catalog.metadata(descriptor)
    assert meta is not None
    return descriptor, meta


def check(model: Tiny, config: LoadConfig, memory: SystemMemory = PLENTY, **kw: str) -> int:
    plan = check_load(
        model[0],
        model[1],
        config,
        default_context=4096,
        guardrails=kw.get("guardrails", "strict"),
        memory=memory,
    )
    return plan.context_length


@pytest.mark.parametrize("asked", [2049, 10**9, 2**32 + 64])
def test_a_context_above_the_trained_one_is_refused_with_what_to_do(tiny: Tiny, asked: int) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check(tiny, LoadConfig(context_length=asked))
    assert "maximum context length is 2048" in info.value.message
    assert "--context-length 2048" in info.value.message
    assert info.value.param == "config.context_length"


def test_the_trained_context_itself_and_the_default_are_accepted(tiny: Tiny) -> None:
    assert check(tiny, LoadConfig(context_length=2048)) == 2048
    assert check(tiny, LoadConfig()) == 2048  # the default (4096) capped by the model


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("context_length", 0),
        ("context_length", -1),
        ("eval_batch_size", 2**31),
        ("n_threads", 0),
        ("n_threads", 10**6),
        ("seed", 2**32),
        ("seed", -(2**40)),
        ("num_experts", 2**31),
    ],
)
def test_integers_outside_their_c_types_are_refused(field: str, value: int) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_ranges(LoadConfig(**{field: value}))  # type: ignore[arg-type]
    assert info.value.param == f"config.{field}" and str(value) in info.value.message


def test_num_experts_on_a_model_without_experts_is_refused(tiny: Tiny) -> None:
    with pytest.raises(InvalidRequestError, match="not a mixture of experts"):
        check(tiny, LoadConfig(num_experts=2))


def test_memory_that_does_not_fit_is_refused_unless_the_guardrails_are_off(tiny: Tiny) -> None:
    descriptor, meta = tiny
    small = SystemMemory(total_bytes=2 * GIB, available_bytes=MARGIN_BYTES + (1 << 20))
    with pytest.raises(InsufficientMemoryError) as info:
        check(tiny, LoadConfig(context_length=2048), small)
    assert "smaller context length" in info.value.message
    assert check(tiny, LoadConfig(context_length=2048), small, guardrails="relaxed") == 2048
    assert check(tiny, LoadConfig(context_length=2048), SystemMemory(1, 1), guardrails="off") == 2048


def test_a_huge_context_on_a_model_without_a_trained_context_is_refused_by_memory(tiny: Tiny) -> None:
    descriptor, meta = tiny
    unbounded = replace(descriptor, max_context_length=None)
    memory = SystemMemory(total_bytes=64 * GIB, available_bytes=32 * GIB)
    with pytest.raises(InsufficientMemoryError):
        check_load(
            unbounded,
            meta,
            LoadConfig(context_length=10**9),
            default_context=4096,
            guardrails="strict",
            memory=memory,
        )


def test_the_kv_estimate_follows_the_cache_types(tiny: Tiny) -> None:
    _, meta = tiny
    # tiny llama: 2 layers, 2 KV heads of 16 dims, K and V
    assert kv_bytes_per_token(meta, "f16", "f16") == 2 * 2 * (16 * 2 + 16 * 2)
    assert kv_bytes_per_token(meta, "f32", "f32") == 2 * kv_bytes_per_token(meta, "f16", "f16")
    assert kv_bytes_per_token(meta, "q8_0", "q8_0") < kv_bytes_per_token(meta, "f16", "f16")
    estimate = estimate_load(meta, 1000)  # llama.cpp pads the cells to a multiple of 256
    assert estimate.kv_cells == 1024
    assert estimate.kv_cache_bytes == 1024 * kv_bytes_per_token(meta, "f16", "f16")
    assert estimate.weights_bytes == meta.tensor_bytes
    assert estimate.total_bytes > estimate.weights_bytes + estimate.kv_cache_bytes


def test_the_estimate_of_a_real_model_is_in_its_ballpark() -> None:
    from tests.unit.store.conftest import SMOLLM_REL, real_model

    path = real_model(SMOLLM_REL)
    catalog = ModelCatalog(path.parent.parent.parent)
    descriptor = next(d for d in catalog.scan() if d.path == path)
    meta = catalog.metadata(descriptor)
    assert meta is not None and descriptor.kind is ModelKind.LLM
    # SmolLM2-135M: 30 layers, 3 KV heads of 64 dims: 30 * 3 * 64 * 2 (K, V) * 2 bytes = 23040 bytes/token
    assert kv_bytes_per_token(meta, "f16", "f16") == 23040
    assert estimate_load(meta, 8192).total_bytes < 2 * GIB


def test_the_service_refuses_unreadable_files_with_a_4xx_error(tmp_path: Path) -> None:
    from openlms.core.errors import InvalidModelFileError
    from openlms.server.errors import status_of

    assert status_of(InvalidModelFileError("x"))[0] == 422
    assert status_of(InsufficientMemoryError("x"))[0] == 400


def test_memory_the_jit_eviction_gives_back_counts_as_available(tiny: Tiny) -> None:
    """A JIT load that evicts the other JIT model first (auto-evict) may use that model's memory."""
    descriptor, meta = tiny
    need = estimate_load(meta, 2048).total_bytes
    tight = SystemMemory(total_bytes=64 * GIB, available_bytes=MARGIN_BYTES + need // 2)
    with pytest.raises(InsufficientMemoryError):
        check(tiny, LoadConfig(context_length=2048), tight)
    plan = check_load(
        descriptor,
        meta,
        LoadConfig(context_length=2048),
        default_context=4096,
        guardrails="strict",
        memory=tight,
        reclaimable_bytes=need,
    )
    assert plan.context_length == 2048


def test_a_quantized_v_cache_without_flash_attention_is_refused(tiny: Tiny) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check(tiny, LoadConfig(v_cache_type="q8_0", flash_attention=False))
    assert info.value.param == "config.flash_attention"
    assert (
        check(tiny, LoadConfig(context_length=512, v_cache_type="q8_0")) == 512
    )  # auto: llama.cpp enables it
    assert check(tiny, LoadConfig(context_length=512, v_cache_type="f16", flash_attention=False)) == 512
