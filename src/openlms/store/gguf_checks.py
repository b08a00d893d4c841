"""Checks of a GGUF header before the file is ever handed to llama.cpp.

llama.cpp trusts a header's hyperparameters: `llama.block_count = 100000` trips a `GGML_ASSERT` and aborts
the whole process, and so do impossible expert counts. These checks refuse such files in the catalog
(listed with an `error`, not loadable), so no load or JIT chat reaches llama.cpp with them.

Two kinds of check:
- `check_tensors(meta)`, per file: unknown tensor types, duplicate names, overflowing shapes, rows
  that are not a whole number of quantization blocks, misaligned or overlapping tensor data.
- `check_hparams(meta)`, per model (a split model's shards merged): a known architecture, the layer
  count within llama.cpp's limit and matching the `blk.N` tensors, head, embedding, expert and context
  counts in range, per-layer arrays of the right length, and a vocabulary that fits the token embedding.

Each returns the first problem as a sentence (None when the header is fine). Limits mirror llama.cpp's
(`LLAMA_MAX_LAYERS`, `LLAMA_MAX_EXPERTS`, `gguf.c`'s tensor checks).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from gguf.constants import GGML_QUANT_SIZES, MODEL_ARCH_NAMES, GGMLQuantizationType

from openlms.store.gguf_meta import GGUFMetadata, KVValue, TensorInfo

MAX_LAYERS: Final = 512  # LLAMA_MAX_LAYERS
MAX_EXPERTS: Final = 512  # LLAMA_MAX_EXPERTS
MAX_EMBEDDING: Final = 1 << 20
MAX_HEADS: Final = 1 << 16
MAX_HEAD_DIM: Final = 1 << 16
U32_MAX: Final = (1 << 32) - 1
I64_MAX: Final = (1 << 63) - 1
# Architectures gguf-py knows that llama.cpp does not load as a model (vision projectors).
NOT_MODELS: Final = frozenset({"clip", "mmproj"})
KNOWN_ARCHITECTURES: Final = frozenset(MODEL_ARCH_NAMES.values()) - NOT_MODELS

_BLOCK: Final = re.compile(r"^blk\.(\d+)\.")


def check_tensors(meta: GGUFMetadata) -> str | None:
    """The first problem with one file's tensor infos, or None."""
    alignment = meta.alignment
    seen: set[str] = set()
    spans: list[tuple[int, int, str]] = []
    for tensor in meta.tensors:
        if tensor.name in seen:
            return f"duplicate tensor name '{tensor.name}'"
        seen.add(tensor.name)
        problem = _tensor_problem(tensor, alignment)
        if problem is not None:
            return problem
        spans.append((tensor.offset, tensor.offset + (tensor.n_bytes or 0), tensor.name))
    spans.sort()
    for (_, end, name), (start, _, other) in zip(spans, spans[1:], strict=False):
        if start < end:
            return f"the data of tensors '{name}' and '{other}' overlap (corrupt file)"
    return None


def _tensor_problem(tensor: TensorInfo, alignment: int) -> str | None:
    try:
        block, _ = GGML_QUANT_SIZES[GGMLQuantizationType(tensor.ggml_type)]
    except (ValueError, KeyError):
        return f"tensor '{tensor.name}' has an unknown type {tensor.ggml_type} (not supported by llama.cpp)"
    if any(dim > I64_MAX for dim in tensor.shape) or tensor.n_elements > I64_MAX:
        return f"tensor '{tensor.name}' has an impossible shape {list(tensor.shape)}"
    if tensor.shape and tensor.shape[0] % block:
        return (
            f"tensor '{tensor.name}': its row of {tensor.shape[0]} values is not a whole number of "
            f"{tensor.type_name} blocks ({block})"
        )
    if tensor.offset % alignment:
        return f"tensor '{tensor.name}' is not aligned to {alignment} bytes (offset {tensor.offset})"
    return None


def check_hparams(meta: GGUFMetadata) -> str | None:
    """The first problem with a model's hyperparameters, or None."""
    arch = meta.architecture
    if arch is None:
        return "the file has no general.architecture"
    if arch not in KNOWN_ARCHITECTURES:
        return f"architecture '{arch}' is not supported by this llama.cpp"
    for problem in _hparam_problems(meta, arch):
        return problem
    return None


def _hparam_problems(meta: GGUFMetadata, arch: str) -> Iterator[str]:
    layers = meta.block_count
    yield from _layer_problems(meta, layers)
    n_layers = layers or 0
    yield from _bounded(meta, "embedding_length", 1, MAX_EMBEDDING)
    yield from _bounded(meta, "context_length", 1, U32_MAX)
    yield from _bounded(meta, "attention.key_length", 1, MAX_HEAD_DIM)
    yield from _bounded(meta, "attention.value_length", 1, MAX_HEAD_DIM)
    for suffix in ("attention.head_count", "attention.head_count_kv", "feed_forward_length"):
        yield from _per_layer(meta, suffix, n_layers, MAX_HEADS if "head" in suffix else U32_MAX)
    yield from _expert_problems(meta)
    yield from _vocab_problems(meta)


def _layer_problems(meta: GGUFMetadata, layers: int | None) -> Iterator[str]:
    key = meta.arch_key("block_count")
    if layers is None:
        if key in meta.kv:
            yield f"{key} must be an integer, not {meta.kv[key]!r}"
        return
    if not 1 <= layers <= MAX_LAYERS:
        yield f"{key} = {layers} is out of range (llama.cpp supports 1 to {MAX_LAYERS} layers)"
        return
    indices = {int(m.group(1)) for t in meta.tensors if (m := _BLOCK.match(t.name))}
    if indices and max(indices) + 1 != layers:
        yield (
            f"{key} = {layers} does not match the file's tensors, which have {max(indices) + 1} layers "
            "(corrupt or crafted header)"
        )


def _bounded(meta: GGUFMetadata, suffix: str, low: int, high: int) -> Iterator[str]:
    key = meta.arch_key(suffix)
    if key not in meta.kv:
        return
    value = meta.get_int(key)
    if value is None or not low <= value <= high:
        yield f"{key} = {_short(meta.kv[key])} is out of range ({low} to {high})"


def _per_layer(meta: GGUFMetadata, suffix: str, n_layers: int, high: int) -> Iterator[str]:
    """A count that is one integer or one per layer (llama.cpp's `get_key_or_arr`)."""
    key = meta.arch_key(suffix)
    if key not in meta.kv and key not in meta.array_lengths:
        return
    value = meta.kv.get(key)
    if isinstance(value, tuple) or key in meta.array_lengths:
        length = len(value) if isinstance(value, tuple) else meta.array_lengths.get(key, 0)
        if n_layers and length != n_layers:
            yield f"{key} has {length} values for {n_layers} layers"
            return
        values = value if isinstance(value, tuple) else ()
    else:
        values = (value,) if value is not None else ()
    for item in values:
        if not isinstance(item, int) or isinstance(item, bool) or not 0 <= item <= high:
            yield f"{key} = {_short(value)} is out of range (0 to {high})"
            return


def _expert_problems(meta: GGUFMetadata) -> Iterator[str]:
    """llama.cpp's GGML_ASSERTs on experts, which abort the process when they fail."""
    count_key, used_key = meta.arch_key("expert_count"), meta.arch_key("expert_used_count")
    count, used = meta.get_int(count_key) or 0, meta.get_int(used_key) or 0
    groups = meta.get_int(meta.arch_key("expert_group_count")) or 0
    group_used = meta.get_int(meta.arch_key("expert_group_used_count")) or 0
    if not 0 <= count <= MAX_EXPERTS:
        yield f"{count_key} = {count} is out of range (llama.cpp supports at most {MAX_EXPERTS} experts)"
    elif not 0 <= used <= count or (count > 0 and used == 0):
        yield f"{used_key} = {used} does not fit {count_key} = {count}"
    elif count == 0 and groups:
        yield f"{meta.arch_key('expert_group_count')} is set on a model without experts"
    elif groups > 1 and (groups >= count or count % groups or not 0 < group_used < groups):
        yield f"the expert groups ({groups}, {group_used} used) do not fit {count} experts"


def _vocab_problems(meta: GGUFMetadata) -> Iterator[str]:
    n_vocab = meta.vocab_size
    embd = next((t for t in meta.tensors if t.name == "token_embd.weight"), None)
    if n_vocab is None or embd is None or len(embd.shape) < 2:
        return
    if n_vocab > embd.shape[1]:
        yield (
            f"the vocabulary has {n_vocab} tokens but token_embd.weight has rows for {embd.shape[1]} "
            "(corrupt or crafted header)"
        )


def _short(value: KVValue | None) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
