"""Engine-level types shared by every layer: model descriptors, load and sampling configs, events.

These are plain frozen dataclasses with no behaviour beyond validation, so that the store, the engine,
the services and the server can all speak them without depending on each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal, Protocol, get_args


class ModelKind(StrEnum):
    LLM = "llm"
    EMBEDDING = "embedding"


class StopReason(StrEnum):
    """Why a prediction ended; the values are LM Studio's `stopReason` strings."""

    EOS = "eosFound"
    STOP_STRING = "stopStringFound"
    MAX_TOKENS = "maxPredictedTokensReached"
    CONTEXT_LENGTH = "contextLengthReached"
    USER_STOPPED = "userStopped"
    MODEL_UNLOADED = "modelUnloaded"
    TOOL_CALLS = "toolCalls"
    FAILED = "failed"


class ContextOverflowPolicy(StrEnum):
    """What happens when a conversation does not fit the context (LM Studio's `contextOverflowPolicy`)."""

    STOP_AT_LIMIT = "stopAtLimit"  # a prompt that does not fit is an error; generation stops at the limit
    TRUNCATE_MIDDLE = "truncateMiddle"  # keep the system prompt and first user message, drop the middle
    ROLLING_WINDOW = "rollingWindow"  # drop the oldest messages / tokens


# ---------------------------------------------------------------------------------------------------
# Models on disk


@dataclass(frozen=True, slots=True)
class ModelDescriptor:
    """One downloaded model as the store sees it (a GGUF file, or the first shard of a split model).

    `error` is set when the file could not be read; such entries are listed but cannot be loaded.
    """

    key: str  # model key as LM Studio shows it, e.g. "smollm2-135m-instruct"
    path: Path  # absolute path of the (first) GGUF file
    rel_path: str  # path relative to the models directory, "publisher/repo/file.gguf"
    publisher: str
    kind: ModelKind
    display_name: str
    size_bytes: int  # all shards together
    format: str = "gguf"
    architecture: str | None = None
    params_string: str | None = None  # e.g. "135M", "7B"
    quantization: str | None = None  # e.g. "Q4_K_M", "F16"
    bits_per_weight: float | None = None
    max_context_length: int | None = None  # training context length from GGUF metadata
    n_layers: int | None = None  # `<arch>.block_count`, for GPU offload ratios
    has_chat_template: bool = False
    trained_for_tool_use: bool = False
    vision: bool = False
    shard_paths: tuple[Path, ...] = ()  # every shard, in order, when the model is split
    error: str | None = None  # why the file could not be read, if it could not
    # from a model.yaml (store/model_yaml.py, store/virtual.py)
    reasoning: bool = False  # metadataOverrides.reasoning
    domain: str | None = None  # metadataOverrides.domain ("llm", "embedding") when one says so
    model_yaml: Path | None = None  # the model.yaml whose config and customFields apply to it
    virtual: bool = False  # a model.yaml model (key = its `model`) resolved to a downloaded file (`path`)
    variants: tuple[str, ...] = ()  # the keys of every concrete file of the same model (>= 2 when set)
    selected_variant: str | None = None  # which of `variants` this entry loads

    @property
    def loadable(self) -> bool:
        return self.error is None


# ---------------------------------------------------------------------------------------------------
# Loading

GpuSetting = float | Literal["max", "off"] | None  # ratio 0..1, all layers, none, or auto (None)

KvCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]
KV_CACHE_TYPES: tuple[KvCacheType, ...] = get_args(KvCacheType)  # the one list of K/V cache types
MAX_PARALLEL = 64  # the most predictions one loaded model may serve at once (`parallel`: 1..64)


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """How to load a model (LM Studio's `LLMLoadModelConfig`). `None` means "engine default"."""

    context_length: int | None = None
    gpu: GpuSetting = None
    flash_attention: bool | None = None
    k_cache_type: KvCacheType | None = None
    v_cache_type: KvCacheType | None = None
    try_mmap: bool = True
    keep_model_in_memory: bool = False
    seed: int | None = None
    eval_batch_size: int | None = None
    rope_frequency_base: float | None = None
    rope_frequency_scale: float | None = None
    num_experts: int | None = None
    n_threads: int | None = None
    parallel: int | None = None  # predictions served at once (continuous batching); None: engine default 4


@dataclass(frozen=True, slots=True)
class EngineUsage:
    """A loaded model's work right now: predictions running in its slots, waiting for one, and its KV
    cache (cells in use / size, across all sequences)."""

    running: int = 0
    queued: int = 0
    parallel: int = 1
    kv_used: int = 0
    kv_size: int = 0


@dataclass(frozen=True, slots=True)
class CrashRecord:
    """A loaded model whose worker process died: which instance, when (Unix time) and how it ended
    ("killed by signal 9 (SIGKILL)", "exited with status 134"). Listings keep the last few."""

    model_key: str
    identifier: str
    at: float
    exit: str


class LoadedInstance(Protocol):
    """What the layers above the engine may read of a loaded model instance (the engine's `Instance`
    satisfies it); the server sees instances only through this."""

    identifier: str
    reference: str
    descriptor: ModelDescriptor
    context_length: int
    load_config: LoadConfig
    jit: bool
    ttl_seconds: float | None
    active: int  # requests in flight
    unloading: bool

    @property
    def status(self) -> str: ...  # "idle", "generating" or "unloading"

    @property
    def queued(self) -> int: ...  # requests waiting behind the one in progress

    @property
    def usage(self) -> EngineUsage: ...  # running/queued predictions and KV cache use


# ---------------------------------------------------------------------------------------------------
# Generation


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Every sampling knob, in one place. Defaults are LM Studio's."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: Mapping[int, float] = field(default_factory=dict)  # token id -> additive bias
    seed: int | None = None  # None: a random seed per request
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.1

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True, slots=True)
class DraftSpec:
    """Speculative decoding with a draft model (LM Studio's `draftModel` and its speculative settings).

    The draft proposes tokens greedily; the target's own sampling decides what is output, so the text is
    what the target alone would write. `num_draft_tokens` drafts exactly that many tokens per step
    (`numDraftTokensExact`); None drafts up to the engine's maximum (16, llama.cpp's default), stopping
    early once the draft's top probability falls below `min_continue_probability`
    (`minContinueDraftingProbability`). Drafts shorter than `min_draft_length` are not verified
    (`minDraftLengthToConsider`)."""

    descriptor: ModelDescriptor
    num_draft_tokens: int | None = None
    min_draft_length: int = 0
    min_continue_probability: float = 0.75


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A prompt plus how to continue it. The engine knows tokens, not chat messages.

    `prompt` is text (tokenized by the engine, special tokens such as `<|im_start|>` parsed) or token ids.
    `max_tokens=None` generates until an end-of-generation token or the end of the context.
    `add_bos=None` follows the model's own `add_bos_token` setting; rendered chat templates usually
    contain the BOS text already and pass False.
    """

    prompt: str | tuple[int, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    add_bos: bool | None = None
    grammar: str | None = None  # GBNF (root rule `root`) that constrains every sampled token
    # with a trigger, the grammar is lazy: free text until the output contains the trigger, then the
    # grammar's root matches the output from the trigger on (trigger included)
    grammar_trigger: str | None = None
    render_special: bool = False  # emit the text of special/control tokens (tool-call, channel markup)
    overflow: ContextOverflowPolicy = ContextOverflowPolicy.STOP_AT_LIMIT  # when the context fills up
    keep_tokens: int = 0  # prompt tokens a context shift never drops (system prompt + first user turn)
    draft: DraftSpec | None = None  # speculative decoding with this draft model (None: off)


@dataclass(frozen=True, slots=True)
class GenerationStats:
    stop_reason: StopReason
    prompt_tokens: int
    predicted_tokens: int
    time_to_first_token_s: float
    generation_time_s: float  # from the first token to the last
    prompt_eval_time_s: float
    cached_prompt_tokens: int = 0  # prompt tokens reused from the KV cache
    stop_string: str | None = None
    context_shift_tokens: int = 0  # tokens dropped from the KV cache to keep generating (0: none)
    # speculative decoding (LM Studio's draftModel / totalDraftTokensCount / accepted / rejected / ignored):
    # accepted + rejected + ignored == draft_tokens
    draft_model_key: str | None = None
    draft_tokens: int = 0  # drafted in all
    accepted_draft_tokens: int = 0  # verified by the target and output
    rejected_draft_tokens: int = 0  # verified and refused (the first mismatch and the rest of its draft)
    ignored_draft_tokens: int = 0  # never verified (a draft shorter than min_draft_length, or the end came)

    @property
    def tokens_per_second(self) -> float:
        if self.predicted_tokens <= 1 or self.generation_time_s <= 0:
            return 0.0
        return (self.predicted_tokens - 1) / self.generation_time_s

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.predicted_tokens


@dataclass(frozen=True, slots=True)
class PromptProgress:
    fraction: float  # 0..1 of the prompt processed


@dataclass(frozen=True, slots=True)
class FirstToken:
    seconds: float  # time from submission to the first predicted token


@dataclass(frozen=True, slots=True)
class Fragment:
    text: str
    token_count: int
    contains_drafted: bool = False  # some of these tokens are accepted draft tokens


@dataclass(frozen=True, slots=True)
class Done:
    stats: GenerationStats


GenerationEvent = PromptProgress | FirstToken | Fragment | Done


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    vectors: list[list[float]]  # one unit-length vector per input
    prompt_tokens: int
