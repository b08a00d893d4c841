"""The models use case: what is downloaded (store), what is loaded (engine), JIT resolution, and each
model's own settings (per-model load defaults, prompt template, model.yaml variables)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from openlms.core.errors import (
    InvalidModelFileError,
    InvalidRequestError,
    ModelNotFoundError,
    PresetNotFoundError,
    WrongModelTypeError,
)
from openlms.core.kvconfig import merge_layers
from openlms.core.settings import Settings
from openlms.core.types import LoadConfig, LoadedInstance, ModelDescriptor, ModelKind
from openlms.engine.manager import Instance, InstanceManager, Loading
from openlms.parsers.templates import PromptTemplateSpec
from openlms.parsers.unicode import check_unicode
from openlms.services import yaml_layer
from openlms.services.kvconfig import read_prediction
from openlms.services.load_limits import LoadPlan, check_load, runtime_offloads
from openlms.services.params import PredictionParams
from openlms.store import ConversionError, ImportMode, ModelCatalog, ModelImportError, import_model
from openlms.store.curated import find_curated
from openlms.store.memory import estimate_load
from openlms.store.model_config import LoadDefaults, ModelConfig, ModelConfigStore, parse_model_config
from openlms.store.presets import Preset, PresetStore

PROMPT_TEMPLATE_PARAM = "prediction.promptTemplate"


@dataclass(frozen=True, slots=True)
class ModelView:
    """A downloaded model with its loaded instances (and loads in progress)."""

    descriptor: ModelDescriptor
    instances: tuple[Instance, ...]
    loading: tuple[Loading, ...] = ()

    @property
    def loaded(self) -> bool:
        return bool(self.instances)


class ModelSetup(NamedTuple):
    """A model's own prediction settings (the layer below a request and a preset) and template variables."""

    params: PredictionParams  # prompt template override, overflow policy, reasoning parsing, tool_choice
    variables: dict[str, Any]  # Jinja variables: model.yaml custom fields, per-model values applied


@dataclass(frozen=True, slots=True)
class ModelSpecifier:
    """A loaded model named as the SDK names one: by a query (identifier, model key or path prefix,
    optionally a domain and vision) or by an instance reference. Never loads anything."""

    query: str | None = None
    instance_reference: str | None = None
    domain: str | None = None  # "llm" or "embedding"
    vision: bool = False


ModelRef = str | ModelSpecifier  # what a request names its model with


class ModelService:
    def __init__(
        self,
        settings: Settings,
        catalog: ModelCatalog,
        manager: InstanceManager,
        model_configs: ModelConfigStore | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.manager = manager
        self.model_configs = model_configs or ModelConfigStore(settings.home)
        self.presets = PresetStore(settings.home / "config-presets")
        self._scan_lock = asyncio.Lock()
        self.loaded_listeners: list[Callable[[], None]] = []  # told after each load/unload (restore.py)

    @property
    def jit(self) -> bool:
        return self.settings.jit

    async def downloaded(self) -> list[ModelDescriptor]:
        """Every model in the models directory (re-scanned; unchanged files come from the cache)."""
        async with self._scan_lock:
            return await asyncio.to_thread(self.catalog.scan)

    async def views(self) -> list[ModelView]:
        descriptors = await self.downloaded()
        by_key: dict[str, list[Instance]] = {}
        for instance in self.manager.instances:
            by_key.setdefault(instance.descriptor.key, []).append(instance)
        loading: dict[str, list[Loading]] = {}
        for entry in self.manager.loading:
            loading.setdefault(entry.descriptor.key, []).append(entry)
        views = [
            ModelView(d, tuple(by_key.pop(d.key, ())), tuple(loading.get(d.key, ()))) for d in descriptors
        ]
        # Instances whose file vanished from disk since they were loaded are still listed.
        views += [ModelView(group[0].descriptor, tuple(group)) for group in by_key.values()]
        return views

    async def find_downloaded(self, query: str) -> ModelDescriptor:
        await self.downloaded()
        descriptor = self.catalog.find(query, refresh=False)
        if descriptor is None:
            keys = [d.key for d in await self.downloaded()]
            reason = self.catalog.missing(query) or _curated_hint(query)
            raise ModelNotFoundError(
                query, available=keys, reason=reason or f"No downloaded model matches '{query}'."
            )
        return descriptor

    async def for_inference(
        self, model: ModelRef, kind: ModelKind, *, ttl_seconds: float | None = None
    ) -> Instance:
        """The instance to serve a request: a loaded one, or (JIT on) one loaded now. A model of the wrong
        kind is refused before anything is loaded (or evicted). A specifier names loaded models only."""
        if isinstance(model, ModelSpecifier):
            return self.resolve_loaded(model, kind)
        query = model
        instance = self.manager.find(query)
        if instance is not None:
            _check_kind(query, instance.descriptor, kind)
            return instance
        if not self.settings.jit:
            loaded = [i.identifier for i in self.manager.instances]
            raise ModelNotFoundError(
                query,
                available=loaded,
                reason=f"Model '{query}' is not loaded and JIT loading is off. "
                f"Load it with `lms load {query}`.",
            )
        descriptor = await self.find_downloaded(query)
        _check_kind(query, descriptor, kind)
        config = await self._with_defaults(descriptor, LoadConfig())
        await self.check_load(descriptor, config)
        return await self.manager.get_or_load(descriptor, ttl_seconds=ttl_seconds, config=config)

    async def load(
        self,
        query: str,
        config: LoadConfig,
        *,
        identifier: str | None = None,
        ttl_seconds: float | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> Instance:
        """Load a downloaded model; fields the request leaves unset take the model's per-model defaults."""
        descriptor = await self.find_downloaded(query)
        config = await self._with_defaults(descriptor, config)
        await self.check_load(descriptor, config)
        instance = await self.manager.load(
            descriptor, config, identifier=identifier, ttl_seconds=ttl_seconds, on_progress=on_progress
        )
        self._loaded_changed()
        return instance

    async def get_or_load(
        self,
        query: str,
        kind: ModelKind,
        config: LoadConfig,
        *,
        ttl_seconds: float | None = None,
        on_evict: Callable[[Instance], None] | None = None,
        on_start: Callable[[ModelDescriptor], None] | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> tuple[Instance, bool]:
        """A loaded instance of the given kind matching `query`, else the downloaded model loaded now as a
        JIT instance (other JIT instances evicted first when auto-evict is on, each reported to
        `on_evict`). Returns the instance and whether it was loaded by this call."""
        existing = self.find_loaded(query, kind)
        if existing is not None:
            return existing, False
        descriptor = await self.find_downloaded(query)
        _check_kind(query, descriptor, kind)
        config = await self._with_defaults(descriptor, config)
        evicted = [other for other in self.manager.instances if other.jit] if self.manager.auto_evict else []
        await self.check_load(descriptor, config, reclaimable=evicted)
        if on_evict is not None:
            for other in evicted:
                on_evict(other)
        if on_start is not None:
            on_start(descriptor)
        instance = await self.manager.get_or_load(
            descriptor, ttl_seconds=ttl_seconds, config=config, on_progress=on_progress
        )
        return instance, True

    async def check_load(
        self,
        descriptor: ModelDescriptor,
        config: LoadConfig,
        *,
        param: str = "config",
        reclaimable: Sequence[Instance] = (),
        guardrails: str | None = None,
    ) -> LoadPlan:
        """Refuse, before anything is loaded or evicted, a load of an unreadable or crafted file, a context
        above the model's trained one, integers out of llama.cpp's ranges, or more memory than there is
        (`load_limits`)."""
        if descriptor.error is not None:
            yaml_error = descriptor.model_yaml is not None and str(descriptor.model_yaml) in descriptor.error
            what = (
                "Fix or remove that model.yaml (see docs/models.md)."
                if yaml_error
                else "The file is corrupt, incomplete or not supported; download it again or remove it."
            )
            raise InvalidModelFileError(
                f"Cannot load {descriptor.key}: {descriptor.error}. {what}", param="model"
            )
        meta = await asyncio.to_thread(self.catalog.metadata, descriptor)  # waits for a scan's lock
        return check_load(
            descriptor,
            meta,
            config,
            default_context=self.settings.default_context_length,
            guardrails=guardrails or self.settings.load_guardrails,
            param=param,
            reclaimable_bytes=await self._memory_of(reclaimable),
            gpu_offload=runtime_offloads(self.runtime_name),
        )

    async def _memory_of(self, instances: Sequence[Instance]) -> int:
        """The estimated memory of loaded instances (what evicting them gives back)."""
        total = 0
        for instance in instances:
            meta = await asyncio.to_thread(self.catalog.metadata, instance.descriptor)
            if meta is not None:
                total += estimate_load(
                    meta,
                    instance.context_length,
                    instance.load_config,
                    embedding=instance.descriptor.kind is ModelKind.EMBEDDING,
                    gpu_offload=runtime_offloads(self.runtime_name),
                ).total_bytes
        return total

    def find_loaded(self, query: str, kind: ModelKind | None = None) -> Instance | None:
        """A loaded instance by identifier, model key, or case-insensitive path prefix (of `kind`)."""
        return self.manager.find(query, kind)

    def loaded(self, kind: ModelKind | None = None) -> list[Instance]:
        """The loaded instances (of `kind`), unloading ones left out when a kind is given."""
        instances = self.manager.instances
        if kind is None:
            return instances
        return [i for i in instances if i.descriptor.kind is kind and not i.unloading]

    def resolve_loaded(self, spec: ModelSpecifier, kind: ModelKind) -> Instance:
        """The loaded instance of `kind` a specifier names; ModelNotFoundError (with the loaded ones)
        when none matches."""
        loaded = self.loaded(kind)
        if spec.instance_reference is not None:
            found = next((i for i in loaded if i.reference == spec.instance_reference), None)
            return found or _not_found(spec.instance_reference, loaded, kind)
        if spec.domain is not None and spec.domain != kind.value:
            return _not_found(spec.query or spec.domain, loaded, kind)
        if spec.vision and not any(i.descriptor.vision for i in loaded):
            return _not_found(spec.query or "vision model", loaded, kind)
        if not spec.query:
            candidates = [i for i in loaded if i.descriptor.vision or not spec.vision]
            return candidates[0] if candidates else _not_found("", loaded, kind)
        return self.find_loaded(spec.query, kind) or _not_found(spec.query, loaded, kind)

    def idle_seconds(self, instance: LoadedInstance) -> float:
        live = next((i for i in self.manager.instances if i is instance), None)
        return 0.0 if live is None else self.manager.idle_seconds(live)

    async def tokenize(self, instance: Instance, text: str, *, special: bool) -> list[int]:
        """`text`'s tokens (`special`: with the model's BOS/CLS/SEP); resets the instance's idle TTL."""
        check_unicode(text, "text")
        async with self.manager.use(instance):
            return await asyncio.to_thread(
                instance.runtime.tokenize, text, add_special=special, parse_special=False
            )

    @property
    def runtime_name(self) -> str:
        return self.manager.backend.name

    @property
    def runtime_version(self) -> str:
        return self.manager.backend.version

    def find_model(self, query: str) -> ModelDescriptor | None:
        """A loaded instance's model, else a downloaded model matching `query` (from the last scan)."""
        instance = self.manager.find(query)
        return instance.descriptor if instance else self.catalog.find(query, refresh=False)

    def preset_params(self, query: str) -> PredictionParams:
        """A config preset's prediction settings (its unknown keys skipped, its load keys left out)."""
        return read_prediction(merge_layers(self.find_preset(query).operation), strict=False)

    def find_preset(self, query: str) -> Preset:
        preset = self.presets.find(query)
        if preset is None:
            raise PresetNotFoundError(query, available=[(p.identifier, p.name) for p in self.presets.all()])
        return preset

    async def unload(self, identifier: str, kind: ModelKind | None = None) -> Instance:
        """Unload an instance by identifier (`kind`: only an instance of that kind)."""
        if kind is not None:
            loaded = self.loaded(kind)
            if not any(i.identifier == identifier for i in loaded):
                _not_found(identifier, loaded, kind)
        instance = await self.manager.unload(identifier)
        self._loaded_changed()
        return instance

    def _loaded_changed(self) -> None:
        for listener in self.loaded_listeners:
            listener()

    async def import_model(
        self, source: Path, *, publisher: str | None, repo: str | None, mode: ImportMode
    ) -> ModelDescriptor:
        """Bring a local GGUF file (or a BERT sentence-transformers folder) into the models directory."""
        models_dir = self.settings.resolved_models_dir
        try:
            path = await asyncio.to_thread(
                import_model, source, models_dir, publisher=publisher, repo=repo, mode=mode
            )
        except (ModelImportError, ConversionError) as exc:
            raise InvalidRequestError(f"Cannot import {source}: {exc}", param="path") from exc
        await self.downloaded()
        descriptor = self.catalog.find(str(path), refresh=False)
        if descriptor is None:  # pragma: no cover - the catalog lists what was just written
            raise InvalidRequestError(f"Imported {path}, but it is not listed as a model.", param="path")
        return descriptor

    # -- per-model settings --------------------------------------------------------------------------

    async def model_config(self, query: str) -> ModelConfig:
        """The per-model settings of a downloaded model (empty when it has none)."""
        descriptor = await self.find_downloaded(query)
        return await asyncio.to_thread(self.model_configs.get, descriptor.rel_path)

    async def put_model_config(self, query: str, data: Mapping[str, Any]) -> ModelConfig:
        """Validate (the prompt template included) and replace a model's settings."""
        descriptor = await self.find_downloaded(query)
        config = parse_model_config(data)
        if config.load.fields_set():
            await self.check_load(descriptor, with_load_defaults(LoadConfig(), config.load), param="load")
        if config.prediction.prompt_template is not None:
            PromptTemplateSpec.from_json(config.prediction.prompt_template, param=PROMPT_TEMPLATE_PARAM)
        await asyncio.to_thread(self.model_configs.put, descriptor.rel_path, config)
        return config

    async def reset_model_config(self, query: str) -> bool:
        """Forget a model's settings; False when it had none."""
        descriptor = await self.find_downloaded(query)
        return await asyncio.to_thread(self.model_configs.reset, descriptor.rel_path)

    def model_setup(self, descriptor: ModelDescriptor) -> ModelSetup:
        """The model's own prediction settings (prompt template override, overflow policy, reasoning
        parsing, default tool_choice) and its Jinja variables (reads two small files; once per prediction)."""
        prediction = self.model_configs.get(descriptor.rel_path).prediction
        raw = prediction.prompt_template
        template = PromptTemplateSpec.from_json(raw, param=PROMPT_TEMPLATE_PARAM) if raw is not None else None
        parsed = self.catalog.model_yaml(descriptor)
        variables = yaml_layer.jinja_variables(parsed, prediction.custom_fields or {})
        params = PredictionParams(
            template=template,
            overflow=prediction.context_overflow_policy,
            reasoning_parsing=prediction.reasoning_parsing,
            tool_choice=prediction.tool_choice,
        )
        return ModelSetup(
            yaml_layer.under(params, yaml_layer.prediction_layer(descriptor, parsed)), variables
        )

    async def with_defaults(self, descriptor: ModelDescriptor, config: LoadConfig) -> LoadConfig:
        """`config` with the model's per-model load defaults under it (what a load would use)."""
        return await self._with_defaults(descriptor, config)

    async def _with_defaults(self, descriptor: ModelDescriptor, config: LoadConfig) -> LoadConfig:
        stored = await asyncio.to_thread(self.model_configs.get, descriptor.rel_path)
        config = with_load_defaults(config, stored.load)
        if descriptor.error is not None:  # refused by check_load, with its error (maybe the model.yaml's)
            return config
        parsed = await asyncio.to_thread(self.catalog.model_yaml, descriptor)
        return yaml_layer.load_under(config, yaml_layer.load_layer(descriptor, parsed))


def with_load_defaults(config: LoadConfig, defaults: LoadDefaults) -> LoadConfig:
    """`config` with each field it leaves at LoadConfig's default taken from the per-model defaults
    (explicit request values win; a request cannot tell "unset" from the default value itself)."""
    base = LoadConfig()
    updates = {
        name: value
        for name, value in defaults.fields_set().items()
        if getattr(config, name) == getattr(base, name)
    }
    return replace(config, **updates) if updates else config


def _curated_hint(query: str) -> str | None:
    entry = find_curated(query) if query.strip() else None
    if entry is None:
        return None
    return (
        f"'{query}' ({entry.model}) is in openlms's curated catalog but is not downloaded. "
        f"Download it with `lms get {entry.name}`."
    )


def _not_found(query: str, loaded: list[Instance], kind: ModelKind) -> Instance:
    raise ModelNotFoundError(
        query,
        available=[i.identifier for i in loaded],
        reason=f"No loaded {kind.value} model matches '{query}'." if query else "No model is loaded.",
    )


def _check_kind(query: str, descriptor: ModelDescriptor, kind: ModelKind) -> None:
    if descriptor.kind is kind:
        return
    if kind is ModelKind.EMBEDDING:
        raise WrongModelTypeError(
            f"'{query}' is an LLM, not an embedding model. Use an embedding model for embeddings "
            "(`lms ls --embedding` lists them).",
            param="model",
        )
    raise WrongModelTypeError(
        f"'{query}' is an embedding model; it cannot chat or complete. Use it with /v1/embeddings.",
        param="model",
    )
