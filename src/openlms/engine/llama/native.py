"""Thin, typed RAII wrappers over llama-cpp-python's low-level (ctypes) API: model, context, batch.

Nothing here knows about requests or events. `runtime.py` loads them (and embeds with them),
`generator.py`, `speculative.py` and `draft.py` decode with them, all on the instance's one scheduler
thread. ctypes releases the GIL inside every llama.cpp call.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import llama_cpp.llama_cpp as C

from openlms.core.errors import InferenceError, ModelLoadError
from openlms.core.types import KvCacheType, LoadConfig
from openlms.engine.llama.failures import GGML_LOG_LEVEL_ERROR, I32_MAX, U32_MAX, LogTail, c_int, load_failure

log = logging.getLogger("openlms.engine")

GGML_TYPES: dict[KvCacheType, int] = {
    "f32": 0,
    "f16": 1,
    "q4_0": 2,
    "q4_1": 3,
    "q5_0": 6,
    "q5_1": 7,
    "q8_0": 8,
    "iq4_nl": 20,
    "bf16": 30,
}


@cache
def backend() -> LlamaBackend:
    """The process-wide llama.cpp backend, initialised once (llama.cpp itself is process-global)."""
    return LlamaBackend()


class LlamaBackend:
    def __init__(self) -> None:
        C.llama_backend_init()
        self.system_info = C.llama_print_system_info().decode("utf-8", "replace")
        # ggml's AMX weight repacking dies with SIGILL on VMs that advertise AMX without running it.
        self.avoid_extra_buffers = "AMX_INT8 = 1" in self.system_info
        self.gpu_offload = bool(C.llama_supports_gpu_offload())
        self.errors = LogTail()
        self._log_callback = C.llama_log_callback(self._forward_log)
        C.llama_log_set(self._log_callback, ctypes.c_void_p(0))

    def _forward_log(self, level: int, text: bytes | None, _user: ctypes.c_void_p) -> None:
        if not text:
            return
        if level == GGML_LOG_LEVEL_ERROR:
            self.errors.add(text.decode("utf-8", "replace").strip())
        if log.isEnabledFor(logging.DEBUG):
            log.debug("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


ProgressFn = Callable[[float], bool]  # returns False to abort the load


class LlamaModel:
    """A loaded GGUF model (weights + vocabulary). Free with `close()`."""

    def __init__(
        self,
        path: Path,
        config: LoadConfig,
        *,
        architecture: str | None,
        n_layers: int | None,
        on_progress: ProgressFn,
    ) -> None:
        lib = backend()
        params = C.llama_model_default_params()
        gpu_layers = _gpu_layers(config, n_layers) if lib.gpu_offload else 0
        params.n_gpu_layers = c_int("n_gpu_layers", gpu_layers, -1, I32_MAX)
        params.load_mode = _load_mode(config)
        if lib.avoid_extra_buffers:
            params.use_extra_bufts = False
        self._keep = _ProgressHook(on_progress)
        params.progress_callback = self._keep.c_callback
        overrides = _kv_overrides(config, architecture)
        if overrides is not None:
            params.kv_overrides = overrides
        self._overrides = overrides
        mark = lib.errors.count
        ptr = C.llama_model_load_from_file(str(path).encode("utf-8"), params)
        if not ptr:
            if self._keep.aborted:
                raise ModelLoadError(f"Loading {path.name} was cancelled.")
            raise load_failure(path, lib.errors.since(mark))
        self.ptr = ptr
        self.vocab = C.llama_model_get_vocab(ptr)
        self.n_vocab = int(C.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(C.llama_model_n_ctx_train(ptr))
        self.n_embd = int(C.llama_model_n_embd(ptr))
        self.has_encoder = bool(C.llama_model_has_encoder(ptr))
        self.has_decoder = bool(C.llama_model_has_decoder(ptr))
        self.add_bos = bool(C.llama_vocab_get_add_bos(self.vocab))
        self.bos_text = self.piece(int(C.llama_vocab_bos(self.vocab)), special=True).decode(
            "utf-8", "replace"
        )
        self.eos_text = self.piece(int(C.llama_vocab_eos(self.vocab)), special=True).decode(
            "utf-8", "replace"
        )
        self.chat_template = self.meta("tokenizer.chat_template")
        self._piece_buf = ctypes.create_string_buffer(256)

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = C.llama_model_meta_val_str(self.ptr, key.encode("utf-8"), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):  # long value (a big chat template): retry with the exact size
            buf = ctypes.create_string_buffer(n + 1)
            C.llama_model_meta_val_str(self.ptr, key.encode("utf-8"), buf, len(buf))
        return buf.value.decode("utf-8", "replace")

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        capacity = len(data) + 8
        out = (C.llama_token * capacity)()
        n = C.llama_tokenize(self.vocab, data, len(data), out, capacity, add_special, parse_special)
        if n < 0:
            capacity = -n
            out = (C.llama_token * capacity)()
            n = C.llama_tokenize(self.vocab, data, len(data), out, capacity, add_special, parse_special)
        return list(out[:n])

    def piece(self, token: int, *, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = C.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = C.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def fast_piece(self, token: int) -> bytes:
        """`piece()` for the hot decode loop: one reused buffer (scheduler thread only)."""
        buf = self._piece_buf
        n = C.llama_token_to_piece(self.vocab, token, buf, 256, 0, False)
        if n < 0:
            return self.piece(token)
        return buf.raw[:n]

    def fast_special_piece(self, token: int) -> bytes:
        """`fast_piece()` that also spells special and control tokens (`<|im_start|>`, tool markup)."""
        buf = self._piece_buf
        n = C.llama_token_to_piece(self.vocab, token, buf, 256, 0, True)
        if n < 0:
            return self.piece(token, special=True)
        return buf.raw[:n]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", "replace")

    def is_eog(self, token: int) -> bool:
        return bool(C.llama_vocab_is_eog(self.vocab, token))

    def token_text(self, token: int) -> bytes:
        """The vocabulary's own spelling of a token (as stored in the GGUF, not detokenized)."""
        return bytes(C.llama_vocab_get_text(self.vocab, token) or b"")

    def vocab_signature(self) -> dict[str, int]:
        """What a draft model must share with its target besides the token texts."""
        v = self.vocab
        return {
            "vocabulary type": int(C.llama_vocab_type(v)),
            "add-BOS setting": int(C.llama_vocab_get_add_bos(v)),
            "add-EOS setting": int(C.llama_vocab_get_add_eos(v)),
            "BOS token": int(C.llama_vocab_bos(v)),
            "EOS token": int(C.llama_vocab_eos(v)),
        }

    @property
    def is_recurrent(self) -> bool:
        """Recurrent or hybrid memory (Mamba, RWKV, ...): the cache cannot be cut at any position."""
        return bool(C.llama_model_is_recurrent(self.ptr)) or bool(C.llama_model_is_hybrid(self.ptr))

    def close(self) -> None:
        if self.ptr:
            C.llama_model_free(self.ptr)
            self.ptr = None


@dataclass(frozen=True, slots=True)
class ContextParams:
    n_ctx: int
    n_batch: int
    n_threads: int
    embeddings: bool = False
    n_seq_max: int = 1
    kv_unified: bool = False  # one KV cache every sequence may fill (else n_ctx / n_seq_max each)
    flash_attention: bool | None = None
    k_cache_type: KvCacheType | None = None
    v_cache_type: KvCacheType | None = None
    rope_frequency_base: float | None = None
    rope_frequency_scale: float | None = None


class LlamaContext:
    """A llama.cpp context (KV cache + compute buffers) on a model. Scheduler thread only."""

    def __init__(self, model: LlamaModel, params: ContextParams) -> None:
        p = C.llama_context_default_params()
        p.n_ctx = c_int("context_length", params.n_ctx, 1, U32_MAX)
        # llama.cpp asserts (SIGABRT) when a batch cannot hold one token of every sequence: n_batch and
        # n_ubatch are at least n_seq_max (a batch size is a speed knob; this changes no output)
        n_batch = max(params.n_batch, params.n_seq_max)
        p.n_batch = c_int("eval_batch_size", n_batch, 1, U32_MAX)
        p.n_ubatch = n_batch if params.embeddings else max(min(n_batch, 512), params.n_seq_max)
        p.n_seq_max = c_int("n_seq_max", params.n_seq_max, 1, U32_MAX)
        p.kv_unified = params.kv_unified
        p.n_threads = p.n_threads_batch = c_int("n_threads", params.n_threads, 1, I32_MAX)
        p.embeddings = params.embeddings
        p.no_perf = True
        if params.embeddings:
            p.pooling_type = C.LLAMA_POOLING_TYPE_UNSPECIFIED
        if params.flash_attention is not None:
            p.flash_attn_type = (
                C.LLAMA_FLASH_ATTN_TYPE_ENABLED
                if params.flash_attention
                else C.LLAMA_FLASH_ATTN_TYPE_DISABLED
            )
        if params.k_cache_type:
            p.type_k = GGML_TYPES[params.k_cache_type]
        if params.v_cache_type:
            p.type_v = GGML_TYPES[params.v_cache_type]
        if params.rope_frequency_base:
            p.rope_freq_base = params.rope_frequency_base
        if params.rope_frequency_scale:
            p.rope_freq_scale = params.rope_frequency_scale
        mark = backend().errors.count
        ptr = C.llama_init_from_model(model.ptr, p)
        if not ptr:
            said = (
                "; ".join(backend().errors.since(mark)) or "not enough memory, or an unsupported cache type"
            )
            raise ModelLoadError(
                f"llama.cpp could not create a context of {params.n_ctx} tokens ({said}). "
                "Try a smaller --context-length."
            )
        self.ptr = ptr
        self.model = model
        self.n_ctx = int(C.llama_n_ctx(ptr))
        self.n_batch = int(C.llama_n_batch(ptr))
        self.memory = C.llama_get_memory(ptr)
        self.pooling_type = int(C.llama_pooling_type(ptr))
        self.n_seq_max = params.n_seq_max
        self._batch = C.llama_batch_init(max(self.n_batch, 1), 0, params.n_seq_max)

    @property
    def batch(self) -> Any:  # C.llama_batch (ctypes' stubs cannot type its pointer fields)
        """The context's batch buffer (n_batch tokens), filled in place by the batched step loop."""
        return self._batch

    def decode_batch(self, n_tokens: int) -> int:
        """Evaluate the first `n_tokens` of `batch` as filled by the caller; llama.cpp's return code (0: done,
        1: no room in the KV cache, nothing evaluated; others: failures, see `evaluation_failed`)."""
        batch = self._batch
        batch.n_tokens = n_tokens
        return int(C.llama_decode(self.ptr, batch))

    def decode(
        self, tokens: Sequence[int], start_pos: int, *, seq_id: int = 0, logits_last: bool = True
    ) -> None:
        """Evaluate `tokens` at positions start_pos.. on one sequence; logits only for the last token."""
        batch = self._batch
        n = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = start_pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq_id
            batch.logits[i] = 0
        if logits_last:
            batch.logits[n - 1] = 1
        batch.n_tokens = n
        self._run(batch)

    def decode_all_logits(self, tokens: Sequence[int], start_pos: int) -> None:
        """Evaluate `tokens` (at most n_batch) on sequence 0 with logits for every one: output i is the
        next-token distribution after tokens[i] (speculative verification)."""
        batch = self._batch
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = start_pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1
        batch.n_tokens = len(tokens)
        self._run(batch)

    def decode_one(self, token: int, pos: int) -> None:
        """The hot path: one token on sequence 0, logits on."""
        batch = self._batch
        batch.token[0] = token
        batch.pos[0] = pos
        batch.n_seq_id[0] = 1
        batch.seq_id[0][0] = 0
        batch.logits[0] = 1
        batch.n_tokens = 1
        rc = C.llama_decode(self.ptr, batch)
        if rc != 0:
            raise evaluation_failed("the next token", rc)

    def encode_sequences(self, sequences: Sequence[Sequence[int]]) -> None:
        """Evaluate several whole sequences at once (embeddings), sequence i gets seq_id i."""
        batch = self._batch
        k = 0
        for seq_id, tokens in enumerate(sequences):
            for pos, token in enumerate(tokens):
                batch.token[k] = token
                batch.pos[k] = pos
                batch.n_seq_id[k] = 1
                batch.seq_id[k][0] = seq_id
                batch.logits[k] = 1
                k += 1
        batch.n_tokens = k
        if self.model.has_encoder and not self.model.has_decoder:
            rc = C.llama_encode(self.ptr, batch)
        else:
            rc = C.llama_decode(self.ptr, batch)
        if rc != 0:
            raise evaluation_failed("the embedding batch", rc)

    def _run(self, batch: C.llama_batch) -> None:
        rc = C.llama_decode(self.ptr, batch)
        if rc != 0:
            raise evaluation_failed(f"a batch of {batch.n_tokens} tokens", rc)

    def sequence_embedding(self, seq_id: int) -> list[float]:
        ptr = C.llama_get_embeddings_seq(self.ptr, seq_id)
        if not ptr:
            raise InferenceError("llama.cpp returned no pooled embedding (the model has no pooling).")
        return [float(x) for x in ptr[: self.model.n_embd]]

    def keep_prefix(self, n_keep: int, seq_id: int = 0) -> bool:
        """Drop a sequence's cache from position n_keep on; False if the cache cannot be cut there."""
        return bool(C.llama_memory_seq_rm(self.memory, seq_id, n_keep, -1))

    def copy_prefix(self, src: int, dst: int, n_tokens: int) -> None:
        """Let sequence `dst` share the cells of positions [0, n_tokens) of `src` (no copy, no compute:
        the cells carry both sequence ids). `dst` must be empty."""
        C.llama_memory_seq_cp(self.memory, src, dst, 0, n_tokens)

    def drop_sequence(self, seq_id: int) -> None:
        """Free every cell of one sequence."""
        C.llama_memory_seq_rm(self.memory, seq_id, -1, -1)

    def shift(self, keep: int, discard: int, end: int, seq_id: int = 0) -> bool:
        """Context shift on one sequence: drop positions [keep, keep + discard) and move [keep + discard,
        end) down by `discard`. False (nothing changed) if this model's memory cannot shift."""
        if not C.llama_memory_can_shift(self.memory):
            return False
        if not C.llama_memory_seq_rm(self.memory, seq_id, keep, keep + discard):
            return False
        C.llama_memory_seq_add(self.memory, seq_id, keep + discard, end, -discard)
        return True

    def clear(self) -> None:
        C.llama_memory_clear(self.memory, True)

    def state_size(self, seq_id: int = 0) -> int:
        """Bytes `save_state` would copy for one sequence (its KV cells and their positions)."""
        return int(C.llama_state_seq_get_size(self.ptr, seq_id))

    def save_state(self, size: int, seq_id: int = 0) -> ctypes.Array[ctypes.c_uint8] | None:
        """A host copy of one sequence's KV state (`size` from `state_size`); None if llama.cpp failed.
        A uint8 array goes to llama.cpp as is: `ctypes.cast` would tie the buffer into a reference cycle,
        freed only by a full garbage collection (the prompt cache then held far more than its budget)."""
        buf = (ctypes.c_uint8 * size)()
        written = int(C.llama_state_seq_get_data(self.ptr, buf, size, seq_id))
        return buf if written == size else None

    def load_state(self, data: ctypes.Array[ctypes.c_uint8], seq_id: int = 0) -> bool:
        """Replace one sequence's KV with a copy from `save_state`; False (sequence emptied) on failure."""
        if C.llama_state_seq_set_data(self.ptr, data, len(data), seq_id) == 0:
            C.llama_memory_seq_rm(self.memory, seq_id, -1, -1)
            return False
        return True

    def close(self) -> None:
        if self.ptr:
            C.llama_batch_free(self._batch)
            C.llama_free(self.ptr)
            self.ptr = None


# llama_decode / llama_encode return codes (llama.h); other negative codes are fatal errors.
_EVAL_FAILURES = {
    1: "no room left in the KV cache (the context is full, or out of memory)",
    2: "aborted",
    -1: "invalid input batch",
}


def evaluation_failed(what: str, rc: int) -> InferenceError:
    reason = _EVAL_FAILURES.get(rc, "out of memory or an internal error")
    return InferenceError(f"llama.cpp failed to evaluate {what} (code {rc}: {reason}).")


class _ProgressHook:
    """Keeps the ctypes progress callback alive and remembers whether the caller aborted."""

    def __init__(self, on_progress: ProgressFn) -> None:
        self.aborted = False
        self._on_progress = on_progress
        self.c_callback = C.llama_progress_callback(self._call)

    def _call(self, progress: float, _user: ctypes.c_void_p) -> bool:
        try:
            keep_going = bool(self._on_progress(float(progress)))
        except Exception:  # never let a Python error unwind through C
            log.exception("load progress callback failed")
            keep_going = True
        self.aborted = not keep_going
        return keep_going


def _gpu_layers(config: LoadConfig, n_layers: int | None) -> int:
    gpu = config.gpu
    if gpu is None or gpu == "max":
        return -1
    if gpu == "off":
        return 0
    total = n_layers or 0
    return round(float(gpu) * total) if total else (-1 if float(gpu) >= 1.0 else 0)


def _load_mode(config: LoadConfig) -> int:
    if config.keep_model_in_memory:
        return C.LLAMA_LOAD_MODE_MMAP_MLOCK if config.try_mmap else C.LLAMA_LOAD_MODE_MLOCK
    return C.LLAMA_LOAD_MODE_MMAP if config.try_mmap else C.LLAMA_LOAD_MODE_NONE


def _kv_overrides(
    config: LoadConfig, architecture: str | None
) -> ctypes.Array[C.llama_model_kv_override] | None:
    if config.num_experts is None or not architecture:
        return None
    arch = architecture
    overrides = (C.llama_model_kv_override * 2)()
    overrides[0].tag = C.LLAMA_KV_OVERRIDE_TYPE_INT
    overrides[0].key = f"{arch}.expert_used_count".encode()
    overrides[0].value.val_i64 = c_int("num_experts", config.num_experts, 1, I32_MAX)  # type: ignore[union-attr]
    overrides[1].key = b""  # terminator
    return overrides
