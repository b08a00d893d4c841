"""The model endpoints the `llm` and `embedding` namespaces share (list, info, load config, tokenize,
unload, load and get-or-load channels), and the `system` namespace's model listing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openlms.core.errors import InvalidRequestError, WrongModelTypeError
from openlms.core.kvconfig import load_config, load_fields, merge_layers
from openlms.core.types import LoadedInstance, ModelKind
from openlms.server.sdk import convert
from openlms.server.sdk.convert import as_object
from openlms.server.sdk.progress import ProgressPump
from openlms.server.sdk.transport import Channel, Client
from openlms.services.models import ModelService


def _string(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"'{key}' must be a non-empty string.", param=key)
    return value


def _ttl_seconds(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidRequestError(f"'{key}' must be a positive number of milliseconds.", param=key)
    return float(value) / 1000.0


class ModelEndpoints:
    """One namespace's model endpoints (`kind` is llm or embedding)."""

    def __init__(self, models: ModelService, kind: ModelKind) -> None:
        self.models = models
        self.kind = kind

    def resolve(self, specifier: Any) -> LoadedInstance:
        """A loaded instance from a model specifier: a query (identifier, model key or path prefix) or an
        instance reference; `generic.noModelMatchingQuery` when none matches."""
        return self.models.resolve_loaded(convert.model_specifier(specifier), self.kind)

    # -- RPC -----------------------------------------------------------------------------------------

    async def list_loaded(self, _client: Client, _parameter: Any) -> list[dict[str, Any]]:
        return [convert.instance_info(i) for i in self.models.loaded(self.kind)]

    async def get_model_info(self, _client: Client, parameter: Any) -> dict[str, Any]:
        return convert.instance_info(self.resolve(as_object(parameter).get("specifier")))

    async def get_load_config(self, _client: Client, parameter: Any) -> dict[str, Any]:
        instance = self.resolve(as_object(parameter).get("specifier"))
        return {"fields": load_fields(instance.load_config, instance.context_length, self.kind)}

    async def unload_model(self, _client: Client, parameter: Any) -> None:
        await self.models.unload(_string(as_object(parameter), "identifier"), self.kind)

    async def tokenize(self, _client: Client, parameter: Any) -> dict[str, Any]:
        tokens = await self._tokens(parameter, special=self.kind is ModelKind.EMBEDDING)
        return {"tokens": tokens}

    async def count_tokens(self, _client: Client, parameter: Any) -> dict[str, Any]:
        return {"tokenCount": len(await self._tokens(parameter, special=False))}

    async def _tokens(self, parameter: Any, *, special: bool) -> list[int]:
        obj = as_object(parameter)
        text = obj.get("inputString")
        if not isinstance(text, str):
            raise InvalidRequestError("'inputString' must be a string.", param="inputString")
        instance = self.models.resolve_loaded(convert.model_specifier(obj.get("specifier")), self.kind)
        return await self.models.tokenize(instance, text, special=special)

    # -- channels ------------------------------------------------------------------------------------

    async def load_model(self, channel: Channel, parameter: Any) -> None:
        """`loadModel`: resolved, progress..., success (a new instance, never auto-evicted)."""
        obj = as_object(parameter, "creationParameter")
        key = _string(obj, "modelKey")
        identifier = obj.get("identifier") or None
        config = load_config(merge_layers(obj.get("loadConfigStack")), self.kind)
        ttl = _ttl_seconds(obj.get("ttlMs"), "ttlMs")
        descriptor = await self.models.find_downloaded(key)
        self._check_kind(key, descriptor.kind)
        await channel.send({"type": "resolved", "info": convert.model_info(descriptor)})
        async with ProgressPump(channel, "progress") as pump:
            instance = await self.models.load(
                key, config, identifier=identifier, ttl_seconds=ttl, on_progress=pump.update
            )
        await channel.send({"type": "success", "info": convert.instance_info(instance)})

    async def get_or_load(self, channel: Channel, parameter: Any) -> None:
        """`getOrLoad`: alreadyLoaded, or [unloadingOtherJITModel...], startLoading, loadProgress...,
        loadSuccess."""
        obj = as_object(parameter, "creationParameter")
        query = _string(obj, "identifier")
        config = load_config(merge_layers(obj.get("loadConfigStack")), self.kind)
        ttl = _ttl_seconds(obj.get("loadTtlMs"), "loadTtlMs")
        existing = self.models.find_loaded(query, self.kind)
        if existing is not None:
            await channel.send({"type": "alreadyLoaded", "info": convert.instance_info(existing)})
            return
        async with ProgressPump(channel, "loadProgress") as pump:
            instance, loaded = await self._get_or_load(
                query,
                self.kind,
                config,
                ttl_seconds=ttl,
                on_evict=lambda other: pump.post(
                    {"type": "unloadingOtherJITModel", "info": convert.instance_info(other)}
                ),
                on_start=lambda d: pump.post(
                    {"type": "startLoading", "identifier": d.key, "info": convert.model_info(d)}
                ),
                on_progress=pump.update,
            )
        kind = "loadSuccess" if loaded else "alreadyLoaded"
        await channel.send({"type": kind, "info": convert.instance_info(instance)})

    async def _get_or_load(self, query: str, *args: Any, **kwargs: Any) -> tuple[LoadedInstance, bool]:
        """The services' get-or-load, its wrong-kind error worded for SDK users."""
        try:
            return await self.models.get_or_load(query, *args, **kwargs)
        except WrongModelTypeError:
            other = ModelKind.EMBEDDING if self.kind is ModelKind.LLM else ModelKind.LLM
            self._check_kind(query, other)
            raise

    def _check_kind(self, query: str, kind: ModelKind) -> None:
        if kind is not self.kind:
            raise InvalidRequestError(
                f"'{query}' is an {'LLM' if kind is ModelKind.LLM else 'embedding model'}; "
                f"load it with client.{'llm' if kind is ModelKind.LLM else 'embedding'}.",
                param="modelKey",
            )


async def list_downloaded_models(models: ModelService) -> list[dict[str, Any]]:
    return [convert.model_info(d) for d in await models.downloaded() if d.loadable]
