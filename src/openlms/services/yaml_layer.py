"""A model.yaml's `config` as a settings layer, just below the user's per-model settings.

`config.operation.fields` (LM Studio's `llm.prediction.*` keys) become a `PredictionParams` layer that
`params.resolve` sees under the per-model one (`under`), and `config.load.fields` (`llm.load.*`) fill the
load fields that neither the request nor the per-model defaults set. Keys openlms does not implement are
skipped (LM Studio's catalog files carry UI-only keys); a value of the wrong type is an error naming the
model.yaml and the key. A model.yaml's customFields give the template's Jinja variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace
from typing import Any

from openlms.core.errors import InvalidModelFileError, InvalidRequestError
from openlms.core.kvconfig import lmstudio_load_keys, load_config, load_prefix
from openlms.core.types import LoadConfig, ModelDescriptor
from openlms.services.kvconfig import read_prediction
from openlms.services.params import PredictionParams
from openlms.store.model_yaml import ModelYaml, custom_fields_variables

_LOAD_NAMES = {key.removeprefix("llm.load.") for key in lmstudio_load_keys()}


def prediction_layer(descriptor: ModelDescriptor, parsed: ModelYaml | None) -> PredictionParams:
    """The model.yaml's `config.operation` fields as a prediction layer (empty without a model.yaml)."""
    if parsed is None or not parsed.operation_fields:
        return PredictionParams()
    try:
        return read_prediction(dict(parsed.operation_fields), strict=False)
    except InvalidRequestError as exc:
        raise _bad(descriptor, exc) from exc


def load_layer(descriptor: ModelDescriptor, parsed: ModelYaml | None) -> LoadConfig:
    """The model.yaml's `config.load` fields as a LoadConfig (LoadConfig() without any)."""
    if parsed is None or not parsed.load_fields:
        return LoadConfig()
    prefix = load_prefix(descriptor.kind)
    known = {
        prefix + name: value
        for key, value in parsed.load_fields
        if (name := _load_name(key)) is not None and name in _LOAD_NAMES
    }
    try:
        return load_config(known, descriptor.kind)
    except InvalidRequestError as exc:
        raise _bad(descriptor, exc) from exc


def under(top: PredictionParams, bottom: PredictionParams) -> PredictionParams:
    """One layer: each field from `top` when it sets it, else from `bottom`."""
    updates = {
        f.name: getattr(bottom, f.name)
        for f in fields(PredictionParams)
        if getattr(top, f.name) is None and getattr(bottom, f.name) is not None
    }
    return replace(top, **updates) if updates else top


def load_under(config: LoadConfig, bottom: LoadConfig) -> LoadConfig:
    """`config` with each field it leaves at LoadConfig's default taken from `bottom`."""
    base = LoadConfig()
    updates = {
        f.name: getattr(bottom, f.name)
        for f in fields(LoadConfig)
        if getattr(config, f.name) == getattr(base, f.name)
        and getattr(bottom, f.name) != getattr(base, f.name)
    }
    return replace(config, **updates) if updates else config


def jinja_variables(parsed: ModelYaml | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The template's variables from the model.yaml's customFields, per-model values applied by key."""
    return custom_fields_variables(parsed.custom_fields, overrides) if parsed is not None else {}


def _load_name(key: str) -> str | None:
    for prefix in ("llm.load.", "embedding.load.", "load."):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return None


def _bad(descriptor: ModelDescriptor, exc: InvalidRequestError) -> InvalidModelFileError:
    return InvalidModelFileError(
        f"The model.yaml of '{descriptor.key}' ({descriptor.model_yaml}) has a bad config value: "
        f"{exc.message} Fix or remove that field.",
        param="model",
    )
