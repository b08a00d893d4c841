"""Per-model settings (LM Studio's "Per-model Defaults"): load defaults and prediction settings per file.

One JSON file per model, in openlms's own folder of the home (LM Studio may share the home, and its own
files have another shape): `<home>/openlms/model-config/<publisher>/<repo>/<file>.gguf.json`. When a model
has no such file, LM Studio's one (`<home>/.internal/user-concrete-model-default-config/...`) is read.

Shape (camelCase; every field optional; unknown fields are refused):

    {
      "load": {                          # defaults for loads that leave a field unset (core LoadConfig)
        "contextLength": 8192,           # >= 64
        "gpu": "max" | "off" | 0.5,      # offload ratio 0..1
        "flashAttention": true,
        "kCacheType": "q8_0", "vCacheType": "q8_0",   # f32 f16 bf16 q8_0 q4_0 q4_1 iq4_nl q5_0 q5_1
        "tryMmap": true, "keepModelInMemory": false,
        "seed": 42, "evalBatchSize": 512, "numExperts": 8, "nThreads": 4,
        "ropeFrequencyBase": 10000.0, "ropeFrequencyScale": 1.0,
        "parallel": 4                    # predictions served at once, 1..64 (LM Studio's
                                         # llm.load.numParallelSessions; engine default 4)
      },
      "prediction": {
        "promptTemplate": {...},         # LM Studio's LLMPromptTemplate (see openlms.parsers.templates)
        "contextOverflowPolicy": "stopAtLimit" | "truncateMiddle" | "rollingWindow",
        "reasoningParsing": true,        # split <think>...</think> into reasoning_content
        "customFields": {"enableThinking": false},  # model.yaml customFields values, by key
        "toolChoice": "required"         # openlms: tool_choice for requests with tools that set none
                                         # (small models that never choose a tool on their own)
      }
    }

The store checks that `promptTemplate` is an object; its fields are validated by the parsers
(`PromptTemplateSpec.from_json`) in the models service, which owns both layers.

LM Studio's own files at that place use another shape (`{"load": {"fields": [{"key", "value"}]},
"operation": {"fields": [...]}}`); such a file is read best-effort (the keys this module knows, e.g.
`llm.load.contextLength`, `llm.prediction.promptTemplate`; the rest ignored) rather than called corrupt.
`put` always writes the shape above, and only into openlms's folder: LM Studio's files are never written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from openlms.core.errors import InvalidRequestError, OpenLMSError
from openlms.core.fsutil import atomic_write_text, contained_path
from openlms.core.kvconfig import checkbox, lmstudio_load_keys
from openlms.core.types import MAX_PARALLEL, ContextOverflowPolicy, KvCacheType

CONFIG_DIR = Path("openlms") / "model-config"
LMSTUDIO_CONFIG_DIR = Path(".internal") / "user-concrete-model-default-config"


class ModelConfigError(OpenLMSError):
    """A per-model settings file on disk that cannot be read (the server's problem, not the request's)."""

    code = "model_config_invalid"


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class LoadDefaults(_Camel):
    context_length: int | None = Field(default=None, ge=64)  # at most the model's own (services/load_limits)
    gpu: Literal["max", "off"] | float | None = None
    flash_attention: bool | None = None
    k_cache_type: KvCacheType | None = None
    v_cache_type: KvCacheType | None = None
    try_mmap: bool | None = None
    keep_model_in_memory: bool | None = None
    seed: int | None = Field(default=None, ge=-(1 << 31), le=(1 << 32) - 1)
    eval_batch_size: int | None = Field(default=None, ge=1, le=65536)
    rope_frequency_base: float | None = Field(default=None, gt=0)
    rope_frequency_scale: float | None = Field(default=None, gt=0)
    num_experts: int | None = Field(default=None, ge=1, le=512)
    n_threads: int | None = Field(default=None, ge=1, le=1024)
    parallel: int | None = Field(default=None, ge=1, le=MAX_PARALLEL)  # predictions served at once

    def fields_set(self) -> dict[str, Any]:
        """The fields this config sets, by `LoadConfig` field name."""
        return self.model_dump(exclude_none=True)


class PredictionDefaults(_Camel):
    prompt_template: dict[str, Any] | None = None
    context_overflow_policy: ContextOverflowPolicy | None = None
    reasoning_parsing: bool | None = None
    custom_fields: dict[str, Any] | None = None
    tool_choice: Literal["auto", "none", "required"] | None = None


class ModelConfig(_Camel):
    load: LoadDefaults = Field(default_factory=LoadDefaults)
    prediction: PredictionDefaults = Field(default_factory=PredictionDefaults)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_model_config(data: object) -> ModelConfig:
    """A config from its JSON shape; an InvalidRequestError names the first bad field."""
    try:
        config = ModelConfig.model_validate(data)
    except ValidationError as exc:
        param, problem = _first_problem(exc)
        raise InvalidRequestError(f"Invalid model config: {param}: {problem}", param=param) from exc
    gpu = config.load.gpu
    if isinstance(gpu, float) and not 0.0 <= gpu <= 1.0:
        raise InvalidRequestError(
            "Invalid model config: load.gpu must be 'max', 'off' or a number between 0 and 1.",
            param="load.gpu",
        )
    return config


class ModelConfigStore:
    """Per-model settings files under `<home>/openlms/model-config` (LM Studio's read as a fallback)."""

    def __init__(self, home: Path) -> None:
        self.root = Path(home).expanduser() / CONFIG_DIR
        self.lmstudio_root = Path(home).expanduser() / LMSTUDIO_CONFIG_DIR

    def path_for(self, rel_path: str, *, root: Path | None = None) -> Path:
        """The settings file of a model (`publisher/repo/file.gguf`); never outside the root."""
        text = rel_path.strip().replace("\\", "/")
        if not text or text.endswith("/"):
            raise InvalidRequestError(f"'{rel_path}' is not a model file path.", param="model")
        try:
            return contained_path(root or self.root, f"{text}.json")
        except ValueError as exc:
            raise InvalidRequestError(
                f"'{rel_path}' is outside the models directory.", param="model"
            ) from exc

    def get(self, rel_path: str) -> ModelConfig:
        """The model's settings (openlms's file, else LM Studio's); an empty config when it has none."""
        path = self.path_for(rel_path)
        if not path.exists():
            path = self.path_for(rel_path, root=self.lmstudio_root)
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return ModelConfig()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelConfigError(f"Cannot read the model settings file {path}: {exc}") from exc
        return _parse_file(path, text)

    def put(self, rel_path: str, config: ModelConfig) -> Path:
        """Replace the model's settings (atomically: readers see the old or the new file)."""
        path = self.path_for(rel_path)
        atomic_write_text(path, json.dumps(config.to_json(), indent=2, ensure_ascii=False) + "\n")
        return path

    def reset(self, rel_path: str) -> bool:
        """Forget the model's settings; False when it had none."""
        path = self.path_for(rel_path)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def _parse_file(path: Path, text: str) -> ModelConfig:
    hint = "Fix the file or delete it to go back to the defaults."
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelConfigError(f"The model settings file {path} is not valid JSON ({exc}). {hint}") from exc
    if _is_lmstudio_kv(data):
        data = _from_lmstudio_kv(data)
    try:
        return parse_model_config(data)
    except InvalidRequestError as exc:
        raise ModelConfigError(f"The model settings file {path} is not valid: {exc.message} {hint}") from exc


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first.get("loc", ())) or "config"
    return param, str(first.get("msg", "invalid value"))


# ---------------------------------------------------------------------------------------------------
# LM Studio's own key/value files, read best-effort

_LMSTUDIO_LOAD_KEYS: Mapping[str, str] = {key: to_camel(field) for key, field in lmstudio_load_keys().items()}
_LMSTUDIO_PREDICTION_KEYS: Mapping[str, str] = {
    "llm.prediction.promptTemplate": "promptTemplate",
    "llm.prediction.contextOverflowPolicy": "contextOverflowPolicy",
}


def _is_lmstudio_kv(data: object) -> bool:
    if not isinstance(data, dict):
        return False
    sections = [data.get("load"), data.get("operation")]
    return any(isinstance(s, dict) and isinstance(s.get("fields"), list) for s in sections)


def _from_lmstudio_kv(data: dict[str, Any]) -> dict[str, Any]:
    """Our shape from LM Studio's; a value this module would refuse is dropped, not an error."""
    load = _kv_fields(data.get("load"), _LMSTUDIO_LOAD_KEYS)
    prediction = _kv_fields(data.get("operation"), _LMSTUDIO_PREDICTION_KEYS)
    return {
        "load": _valid_only(LoadDefaults, load),
        "prediction": _valid_only(PredictionDefaults, prediction),
    }


def _valid_only(model: type[_Camel], fields: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in fields.items():
        try:
            model.model_validate({key: value})
        except ValidationError:
            continue
        kept[key] = value
    return kept


def _kv_fields(section: object, known: Mapping[str, str]) -> dict[str, Any]:
    items = section.get("fields") if isinstance(section, dict) else None
    out: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("key") not in known:
            continue
        value = checkbox(item.get("value"))  # LM Studio's {checked, value} toggles
        if value is not None:
            out[known[item["key"]]] = value
    return out
