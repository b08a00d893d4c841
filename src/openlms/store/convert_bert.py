"""Convert a BERT sentence-transformers folder (Hugging Face layout) to GGUF, with only gguf and numpy.

Input: `config.json` (`model_type` "bert"), `model.safetensors`, `vocab.txt` (WordPiece), optionally
`special_tokens_map.json`, `modules.json` and the pooling module's `config.json` (`1_Pooling/`).
Output: a GGUF with architecture `bert` that llama.cpp embeds with.

* Tensor names are mapped with `gguf.get_tensor_name_map(MODEL_ARCH.BERT, n_layers)`; the pooler,
  the masked-LM head and `position_ids` are dropped.
* The vocabulary is written in llama.cpp's phantom-space form: `##x` -> `x`, `[X]` unchanged, any
  other token -> `▁x`. Special tokens ([PAD], [UNK], [CLS], [SEP], [MASK] and those named in
  `special_tokens_map.json`) are CONTROL tokens. Special ids come from the vocabulary itself;
  BOS is [CLS] and EOS is [SEP]; BOS and EOS are added, SEP is not (as llama.cpp's own converter
  writes them), so llama.cpp tokenizes "the cat" as [CLS] the cat [SEP].
* The pooling type comes from the pooling module (mean: 1, cls: 2; mean when there is none).
* With `outtype="f16"`, 2-D weights become F16 except `position_embd` and `token_types`, which must stay
  F32 (an F16 `token_types` aborts ggml); 1-D tensors stay F32.

The GGUF is written to a hidden temporary file in the destination folder and renamed into place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import gguf
import numpy as np
import numpy.typing as npt

from openlms.store._files import fsync_file, temp_sibling
from openlms.store.safetensors_np import SafetensorsError, read_safetensors

OutType = Literal["f16", "f32"]

STANDARD_SPECIAL_TOKENS: Final = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
KEEP_F32: Final = frozenset({"position_embd.weight", "token_types.weight"})
_SKIPPED_PREFIXES: Final = ("pooler.", "cls.")
_SKIPPED_NAMES: Final = frozenset({"embeddings.position_ids"})
_POOLING_FLAGS: Final = (
    ("pooling_mode_mean_tokens", gguf.PoolingType.MEAN),
    ("pooling_mode_cls_token", gguf.PoolingType.CLS),
)


class ConversionError(ValueError):
    """The folder is not a BERT model this converter supports, or its files are broken."""


@dataclass(frozen=True, slots=True)
class BertHParams:
    n_layers: int
    hidden_size: int
    intermediate_size: int
    n_heads: int
    max_positions: int
    layer_norm_eps: float
    type_vocab_size: int


def is_bert_folder(folder: Path) -> bool:
    """True when `check_bert_folder` would accept the folder."""
    try:
        check_bert_folder(folder)
    except ConversionError:
        return False
    return True


def check_bert_folder(folder: Path) -> dict[str, Any]:
    """The folder's `config.json`, or a `ConversionError` saying why the folder cannot be converted."""
    if not folder.is_dir():
        raise ConversionError(f"{folder} is not a folder")
    config = _read_json(folder / "config.json", required=True)
    model_type = config.get("model_type")
    if model_type != "bert":
        raise ConversionError(
            f"{folder}: model_type {model_type!r} is not supported; "
            "only BERT ('bert') models can be converted"
        )
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(f"{folder}: only absolute position embeddings are supported")
    if not (folder / "model.safetensors").is_file():
        found = (
            " (found pytorch_model.bin: only safetensors weights are supported)"
            if (folder / "pytorch_model.bin").exists()
            else ""
        )
        raise ConversionError(f"{folder}: no model.safetensors{found}")
    if not (folder / "vocab.txt").is_file():
        raise ConversionError(f"{folder}: no vocab.txt (the WordPiece vocabulary)")
    return config


def convert_bert_folder(
    folder: Path, dest: Path, *, outtype: OutType = "f16", name: str | None = None
) -> Path:
    """Convert `folder` to the GGUF file `dest` (atomically) and return `dest`."""
    config = check_bert_folder(folder)
    hparams = _hparams(config, folder)
    try:
        weights = read_safetensors(folder / "model.safetensors")
    except (SafetensorsError, OSError) as exc:
        raise ConversionError(f"{folder}: cannot read model.safetensors: {exc}") from exc
    tensors = _map_tensors(weights, hparams.n_layers, outtype)
    vocab_rows = tensors["token_embd.weight"].shape[0]
    tokens = _read_vocab(folder / "vocab.txt", vocab_rows)
    specials = _special_tokens(folder)
    with temp_sibling(dest, ".tmp") as tmp:
        writer = gguf.GGUFWriter(tmp, "bert")
        _write_hparams(writer, hparams, name or folder.name, outtype, _pooling_type(folder))
        _write_vocab(writer, tokens, specials, hparams.type_vocab_size)
        for tensor_name, array in tensors.items():
            writer.add_tensor(tensor_name, array)
        _write_out(writer)
        fsync_file(tmp)
        os.replace(tmp, dest)
    return dest


# ---------------------------------------------------------------------------------------------------
# Reading the folder


def _read_json(path: Path, *, required: bool = False) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            raise ConversionError(f"{path.parent}: no {path.name}; not a Hugging Face model folder") from None
        return {}
    except (OSError, ValueError) as exc:
        raise ConversionError(f"{path}: cannot read it as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConversionError(f"{path}: expected a JSON object")
    return data


def _hparams(config: Mapping[str, Any], folder: Path) -> BertHParams:
    try:
        return BertHParams(
            n_layers=int(config["num_hidden_layers"]),
            hidden_size=int(config["hidden_size"]),
            intermediate_size=int(config["intermediate_size"]),
            n_heads=int(config["num_attention_heads"]),
            max_positions=int(config["max_position_embeddings"]),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
            type_vocab_size=int(config.get("type_vocab_size", 2)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"{folder}/config.json lacks a valid BERT hyperparameter: {exc}") from exc


def _pooling_type(folder: Path) -> gguf.PoolingType:
    config = _read_json(_pooling_folder(folder) / "config.json")
    if not config:
        return gguf.PoolingType.MEAN
    for flag, pooling in _POOLING_FLAGS:
        if config.get(flag):
            return pooling
    modes = sorted(k for k, v in config.items() if k.startswith("pooling_mode") and v)
    raise ConversionError(f"{folder}: pooling {modes} is not supported (only mean and cls)")


def _pooling_folder(folder: Path) -> Path:
    modules = _read_json_list(folder / "modules.json")
    for module in modules:
        if isinstance(module, dict) and str(module.get("type", "")).endswith("Pooling"):
            return folder / str(module.get("path", "1_Pooling"))
    return folder / "1_Pooling"


def _read_json_list(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def _read_vocab(path: Path, rows: int) -> list[str]:
    text = path.read_text(encoding="utf-8")
    tokens = [line.removesuffix("\r") for line in text.split("\n")]
    if tokens and tokens[-1] == "":
        tokens.pop()
    if len(tokens) > rows:
        raise ConversionError(f"{path}: {len(tokens)} tokens but the embedding matrix has only {rows} rows")
    tokens.extend(f"[PAD{i}]" for i in range(len(tokens), rows))
    return tokens


def _special_tokens(folder: Path) -> set[str]:
    specials = set(STANDARD_SPECIAL_TOKENS)
    for value in _read_json(folder / "special_tokens_map.json").values():
        content = value.get("content") if isinstance(value, dict) else value
        if isinstance(content, str):
            specials.add(content)
    return specials


def _map_tensors(
    weights: Mapping[str, npt.NDArray[Any]], n_layers: int, outtype: OutType
) -> dict[str, npt.NDArray[Any]]:
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)
    out: dict[str, npt.NDArray[Any]] = {}
    for hf_name, array in weights.items():
        name = hf_name.removeprefix("bert.")
        if name in _SKIPPED_NAMES or name.startswith(_SKIPPED_PREFIXES):
            continue
        mapped = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise ConversionError(f"cannot map tensor '{hf_name}' to a GGUF BERT tensor")
        out[mapped] = _convert_dtype(mapped, array, outtype)
    if "token_embd.weight" not in out:
        raise ConversionError("model.safetensors has no word embeddings (embeddings.word_embeddings.weight)")
    return out


def _convert_dtype(name: str, array: npt.NDArray[Any], outtype: OutType) -> npt.NDArray[Any]:
    if outtype == "f16" and array.ndim == 2 and name not in KEEP_F32:
        return np.ascontiguousarray(array, dtype=np.float16)
    return np.ascontiguousarray(array, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------
# Writing the GGUF


def _write_hparams(
    writer: gguf.GGUFWriter, hp: BertHParams, name: str, outtype: OutType, pooling: gguf.PoolingType
) -> None:
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if outtype == "f16" else gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(hp.max_positions)
    writer.add_embedding_length(hp.hidden_size)
    writer.add_feed_forward_length(hp.intermediate_size)
    writer.add_block_count(hp.n_layers)
    writer.add_head_count(hp.n_heads)
    writer.add_layer_norm_eps(hp.layer_norm_eps)
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling)


def _write_vocab(writer: gguf.GGUFWriter, tokens: Sequence[str], specials: set[str], type_count: int) -> None:
    ids = {token: index for index, token in enumerate(tokens)}
    writer.add_tokenizer_model("bert")
    writer.add_token_type_count(type_count)
    writer.add_token_list([_phantom(token) for token in tokens])
    writer.add_token_types(
        [gguf.TokenType.CONTROL if token in specials else gguf.TokenType.NORMAL for token in tokens]
    )
    setters = (
        ("[CLS]", writer.add_bos_token_id),
        ("[SEP]", writer.add_eos_token_id),
        ("[UNK]", writer.add_unk_token_id),
        ("[SEP]", writer.add_sep_token_id),
        ("[PAD]", writer.add_pad_token_id),
        ("[MASK]", writer.add_mask_token_id),
    )
    for token, setter in setters:
        if token in ids:
            setter(ids[token])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)
    writer.add_add_sep_token(False)


def _phantom(token: str) -> str:
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def _write_out(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
