"""`model.yaml` custom fields (modelyaml.org): values a model's chat template reads as Jinja variables.

A `model.yaml` next to the model file (that is, in its `<publisher>/<repo>/` folder) may declare:

    customFields:
      - key: enableThinking            # the name users set it by (per-model `customFields`)
        type: boolean
        defaultValue: true
        effects:
          - type: setJinjaVariable
            variable: enable_thinking  # the name the template reads

`jinja_variables(path, overrides)` gives `{variable: value}`: each field's `defaultValue`, replaced by
`overrides[key]` when set. Effects other than `setJinjaVariable` are ignored, and so are override keys
that no field declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from openlms.core.errors import OpenLMSError

FILE_NAME = "model.yaml"


class ModelYamlError(OpenLMSError):
    """A model.yaml that cannot be read or does not have the documented shape."""

    code = "model_yaml_invalid"


@dataclass(frozen=True, slots=True)
class CustomField:
    key: str
    variables: tuple[str, ...]  # the Jinja variables it sets
    default: Any = None


def find_model_yaml(model_dir_or_file: Path) -> Path | None:
    """The `model.yaml` for a model file (in its folder) or a repo folder, if there is one."""
    folder = model_dir_or_file if model_dir_or_file.is_dir() else model_dir_or_file.parent
    candidate = folder / FILE_NAME
    return candidate if candidate.is_file() else None


def custom_fields(model_dir_or_file: Path) -> tuple[CustomField, ...]:
    """The custom fields that set Jinja variables; none when there is no model.yaml."""
    path = find_model_yaml(model_dir_or_file)
    if path is None:
        return ()
    entries = _read(path).get("customFields") or []
    if not isinstance(entries, list):
        raise ModelYamlError(f"{path}: 'customFields' must be a list.")
    return tuple(f for i, entry in enumerate(entries) if (f := _field(path, i, entry)).variables)


def jinja_variables(model_dir_or_file: Path, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`{variable: value}` for the model's template: defaults from model.yaml, overridden by key."""
    variables: dict[str, Any] = {}
    for custom in custom_fields(model_dir_or_file):
        value = overrides.get(custom.key, custom.default)
        for variable in custom.variables:
            variables[variable] = value
    return variables


def _read(path: Path) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelYamlError(f"Cannot read {path}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ModelYamlError(f"{path} must hold a mapping at the top level.")
    return data


def _field(path: Path, index: int, entry: object) -> CustomField:
    where = f"{path}: customFields[{index}]"
    if not isinstance(entry, Mapping):
        raise ModelYamlError(f"{where} must be a mapping.")
    key = entry.get("key")
    if not isinstance(key, str) or not key:
        raise ModelYamlError(f"{where}.key must be a non-empty string.")
    effects = entry.get("effects") or []
    if not isinstance(effects, list):
        raise ModelYamlError(f"{where}.effects must be a list.")
    variables = tuple(_variable(f"{where}.effects[{i}]", effect) for i, effect in enumerate(effects))
    return CustomField(key, tuple(v for v in variables if v), entry.get("defaultValue"))


def _variable(where: str, effect: object) -> str | None:
    if not isinstance(effect, Mapping) or effect.get("type") != "setJinjaVariable":
        return None
    variable = effect.get("variable")
    if not isinstance(variable, str) or not variable.isidentifier():
        raise ModelYamlError(f"{where}.variable must be a Jinja variable name, got {variable!r}.")
    return variable
