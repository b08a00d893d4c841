"""A model's own prompt template, as the prompt template editor shows it before any override: the GGUF's
`tokenizer.chat_template`, else the built-in template openlms uses for the model's family, else none
(`GET /api/v1/models/template`). The override itself is a per-model setting (`prediction.promptTemplate`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from openlms.core.types import ModelDescriptor
from openlms.parsers.templates import (
    BUILTIN_BY_ARCHITECTURE,
    BUILTIN_STOPS,
    PromptTemplateSpec,
    builtin_source,
)
from openlms.services.models import ModelService
from openlms.store import ModelCatalog

TemplateSource = Literal["gguf", "builtin", "none"]


@dataclass(frozen=True, slots=True)
class ModelTemplate:
    descriptor: ModelDescriptor
    source: TemplateSource
    template: PromptTemplateSpec | None  # None: the model has no template (source "none")
    builtin: str | None = None  # the built-in template's name (source "builtin")

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.descriptor.key,
            "source": self.source,
            "builtin": self.builtin,
            "promptTemplate": self.template.to_json() if self.template is not None else None,
        }


async def model_template(models: ModelService, query: str) -> ModelTemplate:
    """The template a downloaded model uses without an override (ModelNotFoundError when none matches)."""
    descriptor = await models.find_downloaded(query)
    return await asyncio.to_thread(own_template, models.catalog, descriptor)


def own_template(catalog: ModelCatalog, descriptor: ModelDescriptor) -> ModelTemplate:
    meta = catalog.metadata(descriptor)
    text = meta.chat_template if meta is not None else None
    if text and text.strip():
        return ModelTemplate(descriptor, "gguf", PromptTemplateSpec("jinja", jinja=text))
    name = BUILTIN_BY_ARCHITECTURE.get((descriptor.architecture or "").lower())
    if name is None:
        return ModelTemplate(descriptor, "none", None)
    spec = PromptTemplateSpec("jinja", jinja=builtin_source(name), stop_strings=BUILTIN_STOPS.get(name, ()))
    return ModelTemplate(descriptor, "builtin", spec, name)
