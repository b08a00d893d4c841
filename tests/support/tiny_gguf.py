"""Tiny random-weight models for tests: a llama GGUF that llama.cpp loads and generates with, a BERT
sentence-transformers folder (hand-written safetensors), and a BERT embedding GGUF converted from it.

Everything is deterministic (seeded rng) and takes well under a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from openlms.store.safetensors_np import write_safetensors

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")
BOS_ID, EOS_ID, UNK_ID = 1, 4, 0
_WORDS = (
    "the",
    "a",
    "an",
    "and",
    "to",
    "of",
    "in",
    "is",
    "it",
    "you",
    "hello",
    "world",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "user",
    "assistant",
    "system",
    "what",
    "how",
    "yes",
    "no",
    "one",
    "two",
    "three",
    "he",
    "llo",
)


def tiny_spm_vocab() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and types of a small SentencePiece vocabulary with byte fallback."""
    tokens: list[str] = list(SPECIAL_TOKENS)
    types = [gguf.TokenType.UNKNOWN] + [gguf.TokenType.CONTROL] * (len(SPECIAL_TOKENS) - 1)
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = ["\u2581"] + [chr(c) for c in range(33, 127)]
    pieces += ["\u2581" + c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"]
    for word in _WORDS:  # every prefix, so that SentencePiece's pair merges can reach the whole word
        pieces += [("\u2581" + word)[:n] for n in range(2, len(word) + 2)]
        pieces += [word[:n] for n in range(2, len(word) + 1)]
    for piece in pieces:
        if piece not in tokens:
            tokens.append(piece)
            types.append(gguf.TokenType.NORMAL)
    scores = [0.0] * (len(SPECIAL_TOKENS) + 256)
    scores += [len(piece) - i / 1000 for i, piece in enumerate(tokens[len(scores) :])]
    return tokens, scores, [int(t) for t in types]


def write_tiny_llama_gguf(
    path: Path,
    *,
    n_layer: int = 2,
    n_embd: int = 64,
    chat_template: str | None = CHATML,
    name: str | None = "Tiny Llama",
    context_length: int = 2048,
    file_type: int | None = int(gguf.LlamaFileType.ALL_F32),
    size_label: str | None = None,
    add_bos: bool = True,
    extra_kv: Mapping[str, str | int | bool] | None = None,
    seed: int = 0,
    split_max_tensors: int = 0,
) -> Path:
    """A random-weight 2-layer llama GGUF (F32, ~0.8 MB) that llama.cpp loads and generates with.

    With `split_max_tensors`, gguf writes a split model `<stem>-0000N-of-0000M.gguf` and the first
    shard's path is returned.
    """
    n_head, n_head_kv, n_ff = 4, 2, 4 * n_embd
    head_dim = n_embd // n_head
    tokens, scores, types = tiny_spm_vocab()
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(path, "llama", split_max_tensors=split_max_tensors)
    if name is not None:
        w.add_name(name)
    if size_label is not None:
        w.add_size_label(size_label)
    if file_type is not None:
        w.add_file_type(file_type)
    w.add_context_length(context_length)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(BOS_ID)
    w.add_eos_token_id(EOS_ID)
    w.add_unk_token_id(UNK_ID)
    w.add_add_bos_token(add_bos)
    if chat_template is not None:
        w.add_chat_template(chat_template)
    for key, value in (extra_kv or {}).items():
        _add_kv(w, key, value)
    rng = np.random.default_rng(seed)
    for tensor_name, shape in _llama_tensor_shapes(n_layer, n_embd, n_ff, n_head_kv * head_dim, len(tokens)):
        w.add_tensor(tensor_name, _weights(rng, shape))
    _finish(w)
    shards = sorted(path.parent.glob(f"{path.stem}-*-of-*.gguf")) if split_max_tensors else []
    return shards[0] if shards else path


def _llama_tensor_shapes(
    n_layer: int, n_embd: int, n_ff: int, kv_dim: int, n_vocab: int
) -> list[tuple[str, tuple[int, ...]]]:
    """numpy shapes (the reverse of ggml's ne)."""
    shapes: list[tuple[str, tuple[int, ...]]] = [
        ("token_embd.weight", (n_vocab, n_embd)),
        ("output_norm.weight", (n_embd,)),
        ("output.weight", (n_vocab, n_embd)),
    ]
    for i in range(n_layer):
        shapes += [
            (f"blk.{i}.attn_norm.weight", (n_embd,)),
            (f"blk.{i}.attn_q.weight", (n_embd, n_embd)),
            (f"blk.{i}.attn_k.weight", (kv_dim, n_embd)),
            (f"blk.{i}.attn_v.weight", (kv_dim, n_embd)),
            (f"blk.{i}.attn_output.weight", (n_embd, n_embd)),
            (f"blk.{i}.ffn_norm.weight", (n_embd,)),
            (f"blk.{i}.ffn_gate.weight", (n_ff, n_embd)),
            (f"blk.{i}.ffn_up.weight", (n_ff, n_embd)),
            (f"blk.{i}.ffn_down.weight", (n_embd, n_ff)),
        ]
    return shapes


def _weights(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    if len(shape) == 1:
        return np.ones(shape, dtype=np.float32)
    return (rng.standard_normal(shape) * 0.02).astype(np.float32)


def _add_kv(w: gguf.GGUFWriter, key: str, value: str | int | bool) -> None:
    if isinstance(value, bool):
        w.add_bool(key, value)
    elif isinstance(value, int):
        w.add_uint32(key, value)
    else:
        w.add_string(key, value)


def _finish(w: gguf.GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------------
# BERT

BERT_VOCAB = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]"]
    + list(".,!?'-")
    + list("abcdefghijklmnopqrstuvwxyz")
    + ["the", "cat", "sat", "on", "mat", "dog", "hello", "world", "feline", "rested", "rug"]
    + ["##s", "##ing", "##ed", "##a", "##e", "##t"]
)


def make_tiny_bert_folder(
    folder: Path, *, hidden: int = 32, n_layer: int = 2, n_head: int = 2, pooling: str = "mean", seed: int = 0
) -> Path:
    """A sentence-transformers BERT folder with random weights, safetensors written by hand."""
    folder.mkdir(parents=True, exist_ok=True)
    n_ff, n_pos = hidden * 4, 128
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": hidden,
        "intermediate_size": n_ff,
        "num_attention_heads": n_head,
        "num_hidden_layers": n_layer,
        "max_position_embeddings": n_pos,
        "layer_norm_eps": 1e-12,
        "type_vocab_size": 2,
        "vocab_size": len(BERT_VOCAB),
        "position_embedding_type": "absolute",
        "hidden_act": "gelu",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n", encoding="utf-8")
    specials = {
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (folder / "special_tokens_map.json").write_text(json.dumps(specials))
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, **specials}))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": hidden,
                "pooling_mode_cls_token": pooling == "cls",
                "pooling_mode_mean_tokens": pooling == "mean",
                "pooling_mode_max_tokens": pooling == "max",
            }
        )
    )
    rng = np.random.default_rng(seed)
    write_safetensors(folder / "model.safetensors", _bert_tensors(rng, hidden, n_ff, n_layer, n_pos))
    return folder


def _bert_tensors(
    rng: np.random.Generator, hidden: int, n_ff: int, n_layer: int, n_pos: int
) -> dict[str, np.ndarray[Any, Any]]:
    def rand(*shape: int) -> np.ndarray[Any, Any]:
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    def ln(prefix: str) -> dict[str, np.ndarray[Any, Any]]:
        ones, zeros = np.ones(hidden, np.float32), np.zeros(hidden, np.float32)
        return {f"{prefix}.weight": ones, f"{prefix}.bias": zeros}

    t: dict[str, np.ndarray[Any, Any]] = {
        "embeddings.word_embeddings.weight": rand(len(BERT_VOCAB), hidden),
        "embeddings.position_embeddings.weight": rand(n_pos, hidden),
        "embeddings.token_type_embeddings.weight": rand(2, hidden),
        "embeddings.position_ids": np.arange(n_pos, dtype=np.int64).reshape(1, n_pos),
        **ln("embeddings.LayerNorm"),
    }
    for i in range(n_layer):
        p = f"encoder.layer.{i}"
        for part in ("self.query", "self.key", "self.value", "output.dense"):
            t[f"{p}.attention.{part}.weight"] = rand(hidden, hidden)
            t[f"{p}.attention.{part}.bias"] = rand(hidden)
        t.update(ln(f"{p}.attention.output.LayerNorm"))
        t[f"{p}.intermediate.dense.weight"] = rand(n_ff, hidden)
        t[f"{p}.intermediate.dense.bias"] = rand(n_ff)
        t[f"{p}.output.dense.weight"], t[f"{p}.output.dense.bias"] = rand(hidden, n_ff), rand(hidden)
        t.update(ln(f"{p}.output.LayerNorm"))
    t["pooler.dense.weight"], t["pooler.dense.bias"] = rand(hidden, hidden), rand(hidden)
    return t


def write_tiny_bert_gguf(path: Path, *, outtype: str = "f32", name: str = "tiny-bert") -> Path:
    """A tiny BERT embedding GGUF (converted from `make_tiny_bert_folder` with the store's converter)."""
    import tempfile

    from openlms.store.convert_bert import convert_bert_folder

    with tempfile.TemporaryDirectory() as tmp:
        folder = make_tiny_bert_folder(Path(tmp) / "tiny-bert")
        return convert_bert_folder(folder, path, outtype="f16" if outtype == "f16" else "f32", name=name)
