"""Restoring the loaded models when the server starts again (`settings.restore_loaded_models`).

While the setting is on, the models loaded on purpose (`lms load`, `POST /api/v1/models/load`, the SDK's
load) are written to `settings.loaded_models_file` whenever one is loaded or unloaded through the models
service, every `watch_interval_s` if the list changed otherwise (an idle TTL ran out), and once more when
the server stops: identifier, model key, load settings (the context length as loaded) and idle TTL.
Just-in-time loads are left out: they come back on the next request that needs them. The write is
atomic, so a server killed at any moment leaves the previous list or the new one.

On start, `restore()` loads each saved model again, in order, in the background: a model that is no
longer downloaded is skipped with a warning, one that fails to load is logged, and neither stops the
others or the server. While it runs, saving is held back so that a crash mid-restore keeps the full list.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openlms.core.errors import ModelNotFoundError, OpenLMSError
from openlms.core.fsutil import atomic_write_text
from openlms.core.settings import Settings
from openlms.core.types import LoadConfig, LoadedInstance
from openlms.services.models import ModelService

log = logging.getLogger("openlms.server")

FORMAT_VERSION = 1
WATCH_INTERVAL_S = 30.0
_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(LoadConfig))


@dataclass(frozen=True, slots=True)
class SavedModel:
    """One model to load again: what `ModelService.load` takes."""

    identifier: str
    model_key: str
    config: LoadConfig
    ttl_seconds: float | None = None


def snapshot(instances: Iterable[LoadedInstance]) -> list[SavedModel]:
    """The instances worth restoring (loaded on purpose, not being unloaded), context length as loaded."""
    return [
        SavedModel(
            identifier=i.identifier,
            model_key=i.descriptor.key,
            config=dataclasses.replace(i.load_config, context_length=i.context_length),
            ttl_seconds=i.ttl_seconds,
        )
        for i in instances
        if not i.jit and not i.unloading
    ]


def dumps(saved: Iterable[SavedModel]) -> str:
    entries = [
        {
            "identifier": s.identifier,
            "modelKey": s.model_key,
            "loadConfig": {k: v for k, v in dataclasses.asdict(s.config).items() if v is not None},
            "ttlSeconds": s.ttl_seconds,
        }
        for s in saved
    ]
    return json.dumps({"version": FORMAT_VERSION, "models": entries}, indent=2) + "\n"


def loads(text: str) -> list[SavedModel]:
    """The saved models; an unreadable file is an empty list, a malformed entry is skipped (logged)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        log.warning("the saved list of loaded models is not valid JSON (%s); nothing is restored", exc)
        return []
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    saved = []
    for entry in entries:
        model = _entry(entry)
        if model is None:
            log.warning("skipping a malformed saved model entry: %.200r", entry)
        else:
            saved.append(model)
    return saved


def _entry(entry: Any) -> SavedModel | None:
    if not isinstance(entry, dict):
        return None
    identifier, key, config = entry.get("identifier"), entry.get("modelKey"), entry.get("loadConfig", {})
    ttl = entry.get("ttlSeconds")
    if not isinstance(identifier, str) or not isinstance(key, str) or not isinstance(config, dict):
        return None
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
        return None
    try:
        load_config = LoadConfig(**{k: v for k, v in config.items() if k in _CONFIG_FIELDS})
    except TypeError:
        return None
    return SavedModel(identifier, key, load_config, float(ttl) if ttl is not None else None)


class ModelRestorer:
    """Saves the loaded models on every change (while the setting is on) and loads them again on start."""

    def __init__(
        self, settings: Settings, models: ModelService, *, watch_interval_s: float = WATCH_INTERVAL_S
    ) -> None:
        self._settings = settings
        self._models = models
        self._watch_interval_s = watch_interval_s
        self._restoring = False
        self._written: str | None = None  # what the file holds, as this process last wrote it
        self._task: asyncio.Task[list[str]] | None = None
        self._watcher: asyncio.Task[None] | None = None

    @classmethod
    def attach(cls, settings: Settings, models: ModelService) -> ModelRestorer:
        """A restorer that saves whenever `models` loads or unloads a model."""
        restorer = cls(settings, models)
        models.loaded_listeners.append(restorer.save)
        return restorer

    @property
    def enabled(self) -> bool:
        return self._settings.restore_loaded_models

    @property
    def path(self) -> Path:
        return self._settings.loaded_models_file

    def save(self) -> None:
        """Write the current list if it changed (atomic); a failure is logged, never raised into a load
        or unload."""
        if not self.enabled or self._restoring:
            return
        text = dumps(snapshot(self._models.loaded()))
        if text == self._written:
            return
        try:
            atomic_write_text(self.path, text)
        except OSError as exc:
            log.warning("cannot save the list of loaded models to %s: %s", self.path, exc)
            return
        self._written = text

    def saved(self) -> list[SavedModel]:
        try:
            return loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("cannot read the saved list of loaded models %s: %s", self.path, exc)
            return []

    def start(self) -> None:
        """Restore in the background (when the setting is on); the server answers meanwhile."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self.restore(), name="openlms-restore-models")
            self._watcher = asyncio.create_task(self._watch(), name="openlms-save-loaded-models")

    async def _watch(self) -> None:
        """Unloads the models service does not see (an idle TTL ran out) reach the file too."""
        while True:
            await asyncio.sleep(self._watch_interval_s)
            self.save()

    async def restore(self) -> list[str]:
        """Load the saved models again; returns the identifiers loaded."""
        saved = await asyncio.to_thread(self.saved)
        if not saved:
            return []
        log.info("restoring %d model(s) loaded when the server last stopped", len(saved))
        self._restoring = True
        loaded: list[str] = []
        try:
            for model in saved:
                if await self._restore_one(model):
                    loaded.append(model.identifier)
        finally:
            self._restoring = False
        self.save()
        return loaded

    async def _restore_one(self, model: SavedModel) -> bool:
        try:
            await self._models.load(
                model.model_key, model.config, identifier=model.identifier, ttl_seconds=model.ttl_seconds
            )
        except ModelNotFoundError:
            log.warning(
                "not restoring %s: model %s is no longer downloaded", model.identifier, model.model_key
            )
            return False
        except OpenLMSError as exc:
            log.warning("could not restore %s (%s): %s", model.identifier, model.model_key, exc)
            return False
        except Exception:
            log.exception("could not restore %s (%s)", model.identifier, model.model_key)
            return False
        log.info("restored %s (context length %s)", model.identifier, model.config.context_length)
        return True

    async def close(self) -> None:
        """Stop a restore in progress (the saved list stays as it was), else save the list once more."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return
        self.save()
