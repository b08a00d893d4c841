"""A `predict` request's config stack as the services' types: the settings the client set (unset stays
unset; `services.params.resolve` applies the preset, the model's and the server's defaults) and whether it
asks for `complete()` mode. The KV format and its key tables live in `core.kvconfig` (load keys) and
`services.kvconfig` (prediction keys), so presets and the SDK read them the same way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from openlms.core.kvconfig import merge_layers
from openlms.services.kvconfig import PREFIX, read_prediction
from openlms.services.params import PredictionParams

# The prompt template of the SDK's `completeModeFormatting` layer: `complete()` sends the raw prompt.
COMPLETION_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
TEMPLATE_KEY = PREFIX + "promptTemplate"


class ClientConfig(NamedTuple):
    params: PredictionParams  # what the stack sets (an unknown key is an error naming it)
    completion_mode: bool  # `complete()`: the user text is the raw prompt
    fields: dict[str, Any]  # every key as received (reported back with the result)


def client_config(stack: Any) -> ClientConfig:
    fields = merge_layers(stack)
    completion = _is_completion_template(fields.get(TEMPLATE_KEY))
    readable = {k: v for k, v in fields.items() if k != TEMPLATE_KEY} if completion else fields
    return ClientConfig(read_prediction(readable, strict=True), completion, fields)


def _is_completion_template(value: Any) -> bool:
    jinja = value.get("jinjaPromptTemplate") if isinstance(value, Mapping) else None
    return (
        isinstance(value, Mapping)
        and value.get("type") == "jinja"
        and isinstance(jinja, Mapping)
        and jinja.get("template") == COMPLETION_TEMPLATE
    )
