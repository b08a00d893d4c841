"""The models use case: what is downloaded (store), what is loaded (engine), JIT resolution, and each
model's own settings (per-model load defaults, prompt template, model.yaml variables)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from openlms.core.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    PresetNotFoundError,
    WrongModelTypeError,
)
from openlms.core.settings import Settings
from openlms.core.types import ContextOverflowPolicy, LoadConfig, ModelDescriptor, ModelKind
from openlms.engine.manager import Instance, InstanceManager, Loading
from openlms.parsers.templates import PromptTemplateSpec
from openlms.store import ConversionError, ImportMode, ModelCatalog, ModelImportError, import_model
from openlms.store.model_config import LoadDefaults, ModelConfig, ModelConfigStore, parse_model_config
from openlms.store.model_yaml import jinja_variables
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


class PromptSetup(NamedTuple):
    """What a model's own settings say about building its prompts (None: not set, use the default)."""

    template: PromptTemplateSpec | None  # overrides the GGUF's template
    variables: dict[str, Any]  # Jinja variables: model.yaml custom fields, per-model values applied
    overflow: ContextOverflowPolicy | None  # contextOverflowPolicy
    reasoning_parsing: bool | None
    tool_choice: str | None = None  # for requests with tools that do not set one


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
            raise ModelNotFoundError(query, available=keys, reason=f"No downloaded model matches '{query}'.")
        return descriptor

    async def for_inference(
        self, query: str, kind: ModelKind, *, ttl_seconds: float | None = None
    ) -> Instance:
        """The instance to serve a request: a loaded one, or (JIT on) one loaded now. A model of the wrong
        kind is refused before anything is loaded (or evicted)."""
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
        return await self.manager.load(
            descriptor, config, identifier=identifier, ttl_seconds=ttl_seconds, on_progress=on_progress
        )

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
        if self.manager.auto_evict and on_evict is not None:
            for other in self.manager.instances:
                if other.jit:
                    on_evict(other)
        if on_start is not None:
            on_start(descriptor)
        config = await self._with_defaults(descriptor, config)
        instance = await self.manager.get_or_load(
            descriptor, ttl_seconds=ttl_seconds, config=config, on_progress=on_progress
        )
        return instance, True

    def find_loaded(self, query: str, kind: ModelKind | None = None) -> Instance | None:
        """A loaded instance by identifier, model key, or case-insensitive path prefix (of `kind`)."""
        return self.manager.find(query, kind)

    def find_preset(self, query: str) -> Preset:
        preset = self.presets.find(query)
        if preset is None:
            raise PresetNotFoundError(query, available=[(p.identifier, p.name) for p in self.presets.all()])
        return preset

    async def unload(self, identifier: str) -> Instance:
        return await self.manager.unload(identifier)

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
        if config.prediction.prompt_template is not None:
            PromptTemplateSpec.from_json(config.prediction.prompt_template, param=PROMPT_TEMPLATE_PARAM)
        await asyncio.to_thread(self.model_configs.put, descriptor.rel_path, config)
        return config

    async def reset_model_config(self, query: str) -> bool:
        """Forget a model's settings; False when it had none."""
        descriptor = await self.find_downloaded(query)
        return await asyncio.to_thread(self.model_configs.reset, descriptor.rel_path)

    def prompt_setup(self, descriptor: ModelDescriptor) -> PromptSetup:
        """The model's prompt template override, Jinja variables, overflow policy and reasoning parsing
        (reads two small files; call it once per prediction)."""
        prediction = self.model_configs.get(descriptor.rel_path).prediction
        raw = prediction.prompt_template
        template = PromptTemplateSpec.from_json(raw, param=PROMPT_TEMPLATE_PARAM) if raw is not None else None
        variables = jinja_variables(descriptor.path, prediction.custom_fields or {})
        return PromptSetup(
            template,
            variables,
            prediction.context_overflow_policy,
            prediction.reasoning_parsing,
            prediction.tool_choice,
        )

    async def _with_defaults(self, descriptor: ModelDescriptor, config: LoadConfig) -> LoadConfig:
        stored = await asyncio.to_thread(self.model_configs.get, descriptor.rel_path)
        return with_load_defaults(config, stored.load)


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
