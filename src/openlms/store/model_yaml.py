"""`model.yaml` (modelyaml.org, LM Studio's `0_app/3_modelyaml`): the whole format, and custom fields.

`parse_model_yaml(text)` / `read_model_yaml(path)` read every documented field into a frozen `ModelYaml`:
`model` (`publisher/name`), `base` (a virtual model's key, or concrete entries with Hugging Face
sources), `metadataOverrides` (presentation: domain, architectures, params, context lengths, vision,
reasoning, tool use), `config.operation` / `config.load` fields (LM Studio kv keys, applied as defaults
below per-model settings), `customFields` and `suggestions`. A wrong shape is a `ModelYamlError` naming
the field; unknown top-level keys are kept out (the format is a draft and grows).

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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from openlms.core.errors import OpenLMSError
from openlms.store import _model_yaml_parts as parts

FILE_NAME = "model.yaml"


class ModelYamlError(OpenLMSError):
    """A model.yaml that cannot be read or does not have the documented shape."""

    code = "model_yaml_invalid"


@dataclass(frozen=True, slots=True)
class CustomField:
    key: str
    variables: tuple[str, ...]  # the Jinja variables it sets
    default: Any = None


@dataclass(frozen=True, slots=True)
class HubSource:
    """A Hugging Face source of a concrete model: `https://huggingface.co/<user>/<repo>`."""

    user: str
    repo: str

    @property
    def repo_id(self) -> str:
        return f"{self.user}/{self.repo}"


@dataclass(frozen=True, slots=True)
class BaseModel:
    """One concrete model a virtual model may resolve to (`base[i]`)."""

    key: str  # "lmstudio-community/qwen3-8b-gguf"
    sources: tuple[HubSource, ...]


Flag = bool | Literal["mixed"] | None


@dataclass(frozen=True, slots=True)
class MetadataOverrides:
    domain: str | None = None
    architectures: tuple[str, ...] = ()
    compatibility_types: tuple[str, ...] = ()
    params_strings: tuple[str, ...] = ()
    min_memory_usage_bytes: int | None = None
    context_lengths: tuple[int, ...] = ()
    vision: Flag = None
    reasoning: Flag = None
    trained_for_tool_use: Flag = None


@dataclass(frozen=True, slots=True)
class Suggestion:
    message: str
    conditions: tuple[Mapping[str, Any], ...]
    fields: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ModelYaml:
    model: str | None  # "qwen/qwen3-8b"; None only in a model.yaml beside a file that sets just fields
    base: str | tuple[BaseModel, ...]  # a virtual model's key (a chain), or concrete entries
    metadata: MetadataOverrides
    operation_fields: tuple[tuple[str, Any], ...]  # config.operation.fields as (key, value)
    load_fields: tuple[tuple[str, Any], ...]  # config.load.fields
    custom_fields: tuple[CustomField, ...]
    suggestions: tuple[Suggestion, ...]

    @property
    def base_keys(self) -> tuple[str, ...]:
        return (self.base,) if isinstance(self.base, str) else tuple(b.key for b in self.base)

    @property
    def sources(self) -> tuple[HubSource, ...]:
        return () if isinstance(self.base, str) else tuple(s for b in self.base for s in b.sources)


def read_model_yaml(path: Path) -> ModelYaml:
    """The model.yaml at `path`, parsed; `ModelYamlError` naming the file and field when malformed."""
    return _model_yaml(str(path), _read(path))


def parse_model_yaml(text: str, where: str = "model.yaml") -> ModelYaml:
    """A model.yaml's text, parsed (see `read_model_yaml`)."""
    return _model_yaml(where, _load(where, text))


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
    return _custom_fields(str(path), _read(path))


def _custom_fields(where: str, data: Mapping[str, Any]) -> tuple[CustomField, ...]:
    entries = data.get("customFields") or []
    if not isinstance(entries, list):
        raise ModelYamlError(f"{where}: 'customFields' must be a list.")
    return tuple(f for i, entry in enumerate(entries) if (f := _field(where, i, entry)).variables)


def jinja_variables(model_dir_or_file: Path, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`{variable: value}` for the model's template: defaults from model.yaml, overridden by key."""
    return custom_fields_variables(custom_fields(model_dir_or_file), overrides)


def custom_fields_variables(fields: Iterable[CustomField], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`{variable: value}`: each field's default, or `overrides[field.key]` when set."""
    variables: dict[str, Any] = {}
    for custom in fields:
        value = overrides.get(custom.key, custom.default)
        for variable in custom.variables:
            variables[variable] = value
    return variables


def _read(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelYamlError(f"Cannot read {path}: {exc}") from exc
    return _load(str(path), text)


def _load(where: str, text: str) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelYamlError(f"Cannot read {where}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ModelYamlError(f"{where} must hold a mapping at the top level.")
    return data


def _field(path: str, index: int, entry: object) -> CustomField:
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


def _model_yaml(where: str, data: Mapping[str, Any]) -> ModelYaml:
    try:
        config = parts.mapping(data.get("config"), "config")
        return ModelYaml(
            model=parts.model_name(data.get("model")),
            base=_base(data.get("base")),
            metadata=_metadata(parts.mapping(data.get("metadataOverrides"), "metadataOverrides")),
            operation_fields=parts.fields(config.get("operation"), "config.operation"),
            load_fields=parts.fields(config.get("load"), "config.load"),
            custom_fields=_custom_fields(where, data),
            suggestions=_suggestions(data.get("suggestions")),
        )
    except parts.ShapeError as exc:
        raise ModelYamlError(f"{where}: {exc}") from exc


def _base(value: object) -> str | tuple[BaseModel, ...]:
    if value is None:
        return ()
    if isinstance(value, str) and value:
        return value
    entries = parts.items(value, "base")
    return tuple(_base_entry(f"base[{i}]", entry) for i, entry in enumerate(entries))


def _base_entry(where: str, entry: object) -> BaseModel:
    item = parts.mapping(entry, where)
    key = parts.text(item.get("key"), f"{where}.key")
    sources = parts.items(item.get("sources") or [], f"{where}.sources")
    found = (_source(f"{where}.sources[{i}]", s) for i, s in enumerate(sources))
    return BaseModel(key, tuple(s for s in found if s is not None))


def _source(where: str, value: object) -> HubSource | None:
    item = parts.mapping(value, where)
    if item.get("type") != "huggingface":
        return None  # other source types may come; they are not downloadable here
    return HubSource(
        parts.text(item.get("user"), f"{where}.user"), parts.text(item.get("repo"), f"{where}.repo")
    )


def _metadata(data: Mapping[str, Any]) -> MetadataOverrides:
    w = "metadataOverrides."
    return MetadataOverrides(
        domain=parts.optional_text(data.get("domain"), w + "domain"),
        architectures=parts.texts(data.get("architectures"), w + "architectures"),
        compatibility_types=parts.texts(data.get("compatibilityTypes"), w + "compatibilityTypes"),
        params_strings=parts.texts(data.get("paramsStrings"), w + "paramsStrings"),
        min_memory_usage_bytes=parts.optional_int(data.get("minMemoryUsageBytes"), w + "minMemoryUsageBytes"),
        context_lengths=parts.ints(data.get("contextLengths"), w + "contextLengths"),
        vision=parts.flag(data.get("vision"), w + "vision"),
        reasoning=parts.flag(data.get("reasoning"), w + "reasoning"),
        trained_for_tool_use=parts.flag(data.get("trainedForToolUse"), w + "trainedForToolUse"),
    )


def _suggestions(value: object) -> tuple[Suggestion, ...]:
    out = []
    for i, entry in enumerate(parts.items(value or [], "suggestions")):
        where = f"suggestions[{i}]"
        item = parts.mapping(entry, where)
        conditions = parts.items(item.get("conditions") or [], f"{where}.conditions")
        out.append(
            Suggestion(
                message=parts.optional_text(item.get("message"), f"{where}.message") or "",
                conditions=tuple(parts.mapping(c, f"{where}.conditions") for c in conditions),
                fields=parts.field_list(item.get("fields"), f"{where}.fields"),
            )
        )
    return tuple(out)
