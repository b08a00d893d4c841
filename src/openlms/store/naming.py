"""How LM Studio names things: model keys, params strings, display names, architectures. Pure functions.

Model keys
    The key comes from the file name: drop `.gguf`, drop a split suffix (`-00001-of-00003`), drop a
    trailing quantization token (`Q4_K_M`, `IQ4_XS`, `F16`, ...; separated by `-`, `.` or `_`), lowercase.
    Embedding models get the prefix `text-embedding-`, so `all-MiniLM-L6-v2-F16.gguf` is
    `text-embedding-all-minilm-l6-v2`.

Collisions (`assign_keys`)
    When several files give the same key, each of them is keyed `key@<quant lowercase>`
    (`gemma-3-270m@q4_k_m`, `gemma-3-270m@q8_0`) and the plain key becomes an alias of the first of
    them in sorted `rel_path` order. If `key@quant` is still ambiguous (the same quantization in two
    repositories), those files are keyed `<publisher>/<key>@<quant>`, and failing that by their
    `rel_path` without `.gguf`, which is always unique.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

EMBEDDING_PREFIX: Final = "text-embedding-"

_QUANT_TOKEN = r"(?:(?:I|T)?Q\d+(?:_[A-Z0-9]+)*|BF16|FP16|FP32|F16|F32|F64|MXFP4(?:_MOE)?)"
_QUANT_SUFFIX_RE: Final = re.compile(rf"[-._]{_QUANT_TOKEN}$", re.IGNORECASE)
_SPLIT_RE: Final = re.compile(r"^(?P<base>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})$")
_GGUF_SUFFIX_RE: Final = re.compile(r"\.gguf$", re.IGNORECASE)
_TOOLS_RE: Final = re.compile(r"\btools\b")

BERT_FAMILY: Final = frozenset(
    {
        "bert",
        "nomic-bert",
        "nomic-bert-moe",
        "jina-bert-v2",
        "jina-bert-v3",
        "modern-bert",
        "neo-bert",
        "eurobert",
        "t5encoder",
        "gemma-embedding",
    }
)


@dataclass(frozen=True, slots=True)
class SplitName:
    """`name-00002-of-00003.gguf` -> base `name`, index 2, total 3."""

    base: str
    index: int
    total: int


def strip_gguf_suffix(file_name: str) -> str:
    return _GGUF_SUFFIX_RE.sub("", file_name)


def parse_split_name(file_name: str) -> SplitName | None:
    match = _SPLIT_RE.match(strip_gguf_suffix(file_name))
    if match is None:
        return None
    return SplitName(match["base"], int(match["index"]), int(match["total"]))


def shard_file_name(split: SplitName, index: int, suffix: str = ".gguf") -> str:
    return f"{split.base}-{index:05d}-of-{split.total:05d}{suffix}"


def quantization_from_name(file_name: str) -> str | None:
    """The trailing quantization token of a file name, upper-cased: `x-Q4_K_M.gguf` -> `Q4_K_M`."""
    stem = _stem_without_split(file_name)
    match = _QUANT_SUFFIX_RE.search(stem)
    return match.group(0)[1:].upper() if match else None


def model_stem(file_name: str) -> str:
    """The file name without `.gguf`, split suffix and quantization token (case kept)."""
    stem = _stem_without_split(file_name)
    stripped = _QUANT_SUFFIX_RE.sub("", stem)
    return stripped or stem


def model_key(file_name: str, *, embedding: bool = False) -> str:
    key = model_stem(file_name).lower()
    if embedding and not key.startswith(EMBEDDING_PREFIX):
        key = EMBEDDING_PREFIX + key
    return key


def _stem_without_split(file_name: str) -> str:
    stem = strip_gguf_suffix(file_name)
    split = _SPLIT_RE.match(stem)
    return split["base"] if split else stem


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """One model's wish for a key: its base key, quantization, publisher and unique rel_path."""

    base_key: str
    quantization: str | None
    publisher: str
    rel_path: str


def assign_keys(requests: Sequence[KeyRequest]) -> tuple[list[str], dict[str, int]]:
    """Unique keys for `requests` (same order), plus aliases: a collided plain key -> request index.

    See the module docstring for the rules.
    """
    keys = [r.base_key for r in requests]
    aliases: dict[str, int] = {}
    for base, indices in _duplicates(keys).items():
        aliases[base] = min(indices, key=lambda i: requests[i].rel_path)
        for i in indices:
            keys[i] = f"{base}@{(requests[i].quantization or 'unknown').lower()}"
    for key, indices in _duplicates(keys).items():
        aliases[key] = min(indices, key=lambda i: requests[i].rel_path)
        for i in indices:
            keys[i] = f"{requests[i].publisher}/{keys[i]}"
    for indices in _duplicates(keys).values():
        for i in indices:
            keys[i] = strip_gguf_suffix(requests[i].rel_path)
    return keys, aliases


def _duplicates(keys: Sequence[str]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        seen.setdefault(key.lower(), []).append(index)
    return {key: indices for key, indices in seen.items() if len(indices) > 1}


def params_string(size_label: str | None, n_params: int | None) -> str | None:
    """`general.size_label` if present, else from the parameter count: 712K, 33M, 1.5B, 7B, 70B."""
    if size_label:
        return size_label
    if not n_params or n_params <= 0:
        return None
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n_params >= scale:
            return _scaled(n_params / scale) + suffix
    return str(n_params)


def _scaled(value: float) -> str:
    if value >= 10:
        return str(round(value))
    text = f"{value:.1f}"
    return text.removesuffix(".0")


def display_name(general_name: str | None, file_name: str, basename: str | None = None) -> str:
    """The name a person recognises: `general.name`, else the file stem (no quantization, `-`/`_` as spaces).

    A file named after the model's `general.basename` (`SmolLM2-135M-Instruct-Q4_1.gguf`, basename
    `smollm2`) names it better than a `general.name` that disagrees with it (converters often write the
    training run there: `Smollm2 135M 8k Lc100K Mix1 Ep2`, or `... Instruct AWQ` for a GGUF): the file's
    words are used, cased as `general.name` writes them (`qwen2.5-coder-0.5b-instruct` ->
    `Qwen2.5 Coder 0.5B Instruct`). Files that do not start with the basename (`ggml-model-q4_0.gguf`)
    keep `general.name`.
    """
    stem = model_stem(file_name)
    name = (general_name or "").strip()
    words = [w for w in re.split(r"[-_\s]+", stem) if w]
    if not name:
        return " ".join(words)
    if _squashed(name) == _squashed(stem) or not _names_the_model(stem, basename):
        return name
    casing = {w.lower(): w for w in re.split(r"[-_\s]+", name) if w}
    return " ".join(casing.get(w.lower(), w) if w.islower() else w for w in words)


def _squashed(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def _names_the_model(stem: str, basename: str | None) -> bool:
    base = _squashed(basename or "")
    return bool(base) and _squashed(stem).startswith(base)


def is_embedding_model(arch: str | None, *, pooling_type: int | None, causal_attention: bool | None) -> bool:
    """An embedding model: a BERT-family architecture, or one with a pooling type and non-causal attention."""
    if arch and arch.lower() in BERT_FAMILY:
        return True
    return pooling_type is not None and causal_attention is False


def trained_for_tool_use(chat_template: str | None) -> bool:
    """The chat template uses a `tools` variable."""
    return bool(chat_template) and _TOOLS_RE.search(chat_template or "") is not None


def has_vision_projector(sibling_names: Iterable[str]) -> bool:
    """A `mmproj*.gguf` file sits beside the model."""
    return any(is_mmproj(name) for name in sibling_names)


def is_mmproj(file_name: str) -> bool:
    lowered = file_name.lower()
    return lowered.startswith("mmproj") and lowered.endswith(".gguf")


def default_repo_name(file_name: str) -> str:
    """The repository folder for an imported file: `Foo-7B-Q4_K_M.gguf` -> `Foo-7B-GGUF`."""
    return f"{model_stem(Path(file_name).name)}-GGUF"
