"""The load estimate's inputs, read from tiny GGUFs and the default models' headers, against what the
engine's llama.cpp build allocates (its own log: `llama_kv_cache: size = 45.00 MiB (2048 cells, 30
layers, 4/1 seqs)` for SmolLM2 at 2048 tokens, 6 + 30 MiB for Gemma 3 270M). Measured RSS is compared
in bench/memory_estimate.py, never here."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from openlms.core.types import LoadConfig
from openlms.store import ModelCatalog
from openlms.store.gguf_meta import read_gguf_metadata
from openlms.store.memory import (
    DEFAULT_UBATCH,
    compute_reserved_bytes,
    estimate_load,
    gpu_ratio,
    kv_cache_bytes,
    kv_cells,
    kv_shape,
    output_bytes,
    projector_bytes,
    vocab_bytes,
)
from tests.support.tiny_gguf import write_tiny_llama_gguf
from tests.unit.store.conftest import MINILM_REL, real_model

MIB = 1 << 20


def test_a_tiny_llamas_kv_inputs(tiny_llama: Path) -> None:
    meta = read_gguf_metadata(tiny_llama)
    shape = kv_shape(meta)  # 2 layers, 4 heads of 16 dims, 2 of them K/V heads
    assert shape.kv_heads == (2, 2) and (shape.key_length, shape.value_length) == (16, 16)
    assert shape.swa_layers == (False, False) and shape.sliding_window == 0
    assert kv_cache_bytes(meta, 1) == 2 * 2 * (16 + 16) * 2  # f16 K and V
    assert kv_cache_bytes(meta, 1, "f32", "f32") == 2 * kv_cache_bytes(meta, 1)
    assert kv_cache_bytes(meta, 32, "q8_0", "q8_0") == 2 * 2 * (16 + 16) * 34 // 32 * 32  # 34 B a 32-block
    assert kv_cache_bytes(meta, 32, "q4_0", "f16") < kv_cache_bytes(meta, 32, "q8_0", "f16")


def test_cells_are_padded_and_shared_by_parallel_sequences(tiny_llama: Path) -> None:
    meta = read_gguf_metadata(tiny_llama)
    assert [kv_cells(meta, n) for n in (1, 256, 257, 1000, 2048)] == [256, 256, 512, 1024, 2048]
    one, eight = (estimate_load(meta, 1000, LoadConfig(parallel=p)) for p in (1, 8))
    assert one.kv_cells == eight.kv_cells == 1024
    assert one.kv_cache_bytes == eight.kv_cache_bytes  # a unified cache: parallel shares the cells
    vocab = meta.vocab_size or 0
    assert eight.compute_bytes - one.compute_bytes == 7 * vocab * 4  # one row of logits a sequence
    assert output_bytes(meta, 4) == vocab * 4 * 4


def test_the_totals_add_up_and_follow_the_load_config(tiny_llama: Path) -> None:
    meta = read_gguf_metadata(tiny_llama)
    base = estimate_load(meta, 2048)
    assert base.weights_bytes == meta.tensor_bytes
    assert base.runtime_bytes == vocab_bytes(meta) > 0
    assert base.total_bytes == sum(
        (base.weights_bytes, base.kv_cache_bytes, base.compute_bytes, base.runtime_bytes)
    )
    quantized = estimate_load(meta, 2048, LoadConfig(k_cache_type="q8_0", v_cache_type="q8_0"))
    assert quantized.kv_cache_bytes < base.kv_cache_bytes
    assert estimate_load(meta, 2048, k_cache_type="q4_0").kv_cache_bytes < base.kv_cache_bytes
    with_projector = estimate_load(meta, 2048, mmproj_bytes=5 * MIB)
    assert with_projector.total_bytes == base.total_bytes + 5 * MIB


def test_the_gpu_share_follows_the_gpu_setting(tiny_llama: Path) -> None:
    meta = read_gguf_metadata(tiny_llama)
    assert (gpu_ratio(None), gpu_ratio("max"), gpu_ratio("off"), gpu_ratio(0.25)) == (1.0, 1.0, 0.0, 0.25)
    cpu_only = estimate_load(meta, 2048, LoadConfig(gpu="max"))  # the runtime cannot offload
    assert cpu_only.gpu_bytes == 0
    off = estimate_load(meta, 2048, LoadConfig(gpu="off"), gpu_offload=True)
    assert off.gpu_bytes == 0 and off.compute_bytes == cpu_only.compute_bytes
    full = estimate_load(meta, 2048, LoadConfig(gpu="max"), gpu_offload=True, mmproj_bytes=MIB)
    half = estimate_load(meta, 2048, LoadConfig(gpu=0.5), gpu_offload=True, mmproj_bytes=MIB)
    reserved = compute_reserved_bytes(meta, 2048, DEFAULT_UBATCH)
    assert full.gpu_bytes == full.weights_bytes + full.kv_cache_bytes + reserved + MIB
    assert half.gpu_bytes == (full.weights_bytes + full.kv_cache_bytes) // 2 + reserved + MIB
    assert full.compute_bytes > cpu_only.compute_bytes  # a GPU allocates its compute buffer in full


def test_flash_attention_off_reserves_the_kq_matrix(smollm_path: Path) -> None:
    meta = read_gguf_metadata(smollm_path)
    on = compute_reserved_bytes(meta, 8192, 512)
    off = compute_reserved_bytes(meta, 8192, 512, flash_attention=False)
    assert off - on >= 8192 * 512 * 9 * 4 - 49152 * 512 * 4  # 9 heads of f32 KQ over the logits
    # llama.cpp reports 102.5 MiB (flash attention) and 166.4 MiB (off) for this load
    assert 95 * MIB < on < 110 * MIB and 155 * MIB < off < 175 * MIB
    estimate = estimate_load(meta, 8192, LoadConfig(flash_attention=False), gpu_offload=True)
    assert estimate.compute_bytes == off + output_bytes(meta, 4)


def test_split_files_count_every_shard(tmp_path: Path) -> None:
    whole = write_tiny_llama_gguf(tmp_path / "one" / "pub" / "m-GGUF" / "Whole-F32.gguf")
    write_tiny_llama_gguf(tmp_path / "split" / "pub" / "m-GGUF" / "Split-F32.gguf", split_max_tensors=8)
    catalog = ModelCatalog(tmp_path / "split")
    [descriptor] = catalog.scan()
    merged = catalog.metadata(descriptor)
    assert merged is not None and len(descriptor.shard_paths) > 1
    assert estimate_load(merged, 512).weights_bytes == read_gguf_metadata(whole).tensor_bytes


def test_smollm2_header(smollm_path: Path) -> None:
    meta = read_gguf_metadata(smollm_path)
    shape = kv_shape(meta)
    assert shape.n_layers == 30 and set(shape.kv_heads) == {3}
    assert (shape.key_length, shape.value_length, shape.sliding_window) == (64, 64, 0)
    assert estimate_load(meta, 2048).kv_cache_bytes == 45 * MIB  # llama.cpp: 45.00 MiB, 2048 cells
    assert estimate_load(meta, 8192).kv_cache_bytes == 180 * MIB
    assert meta.vocab_size == 49152 and meta.array_lengths["tokenizer.ggml.merges"] > 0


def test_gemma3_sliding_window_layers(gemma_path: Path) -> None:
    meta = read_gguf_metadata(gemma_path)
    shape = kv_shape(meta)
    assert shape.n_layers == 18 and set(shape.kv_heads) == {1}
    assert (shape.key_length, shape.value_length, shape.sliding_window) == (256, 256, 512)
    dense = [i for i, swa in enumerate(shape.swa_layers) if not swa]
    assert dense == [5, 11, 17]  # llama.cpp's gemma3 pattern: 5 windowed layers, then a global one
    # the engine keeps llama.cpp's swa_full: every layer holds every cell (6 + 30 MiB at 2048)
    assert estimate_load(meta, 2048).kv_cache_bytes == 36 * MIB
    row = 256 * 2 * 2  # K and V of one head, f16
    windowed = kv_cache_bytes(meta, 8192, parallel=4, ubatch=512, swa_full=False)
    assert windowed == (3 * 8192 + 15 * 2560) * row  # min(8192, 512 * 4 + 512) cells per SWA layer
    assert kv_cache_bytes(meta, 8192, parallel=1, swa_full=False) == (3 * 8192 + 15 * 1024) * row
    assert estimate_load(meta, 8192).kv_cache_bytes == 18 * 8192 * row


def test_sliding_window_pattern_from_the_header(tiny_llama: Path, tmp_path: Path) -> None:
    meta = read_gguf_metadata(tiny_llama)
    windowed = replace(meta, kv={**meta.kv, "llama.attention.sliding_window": 64})
    assert kv_shape(windowed).swa_layers == (False, False)  # llama.cpp runs llama without a window
    period = replace(windowed, kv={**windowed.kv, "llama.attention.sliding_window_pattern": 2})
    assert kv_shape(period).swa_layers == (True, False)
    flags = replace(windowed, kv={**windowed.kv, "llama.attention.sliding_window_pattern": (False, True)})
    assert kv_shape(flags).swa_layers == (False, True)


def test_embedding_models(tiny_bert: Path) -> None:
    minilm = read_gguf_metadata(real_model(MINILM_REL))
    estimate = estimate_load(minilm, 512, embedding=True)
    assert estimate.kv_cache_bytes == 0  # BERT is an encoder: llama.cpp gives it no KV cache
    assert estimate.weights_bytes == minilm.tensor_bytes
    assert estimate_load(minilm, 256, embedding=True).compute_bytes < estimate.compute_bytes
    # llama.cpp's encode reserves a row of logits and one of embeddings for every token of an input
    assert output_bytes(minilm, 512, embedding=True) == (30522 + 384) * 4 * 512
    assert estimate.compute_bytes > output_bytes(minilm, 512, embedding=True)
    assert kv_cells(minilm, 512, embedding=True) == 16 * 256  # 16 sequences of at least 256 cells
    bert = read_gguf_metadata(tiny_bert)
    assert estimate_load(bert, 300, embedding=True).kv_cache_bytes == 0


def test_the_projector_beside_a_model(tmp_path: Path) -> None:
    model = tmp_path / "Vision-Q4_K_M.gguf"
    model.write_bytes(b"x")
    assert projector_bytes(model) == 0
    (tmp_path / "mmproj-Vision-F16.gguf").write_bytes(b"p" * 3000)
    (tmp_path / "mmproj-Vision-Q8_0.gguf").write_bytes(b"p" * 1000)
    assert projector_bytes(model) == 3000
    assert projector_bytes(tmp_path / "missing" / "x.gguf") == 0
