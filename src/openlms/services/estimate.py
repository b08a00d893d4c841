"""What loading a model would cost, without loading it (`lms load --estimate-only`,
`POST /api/v1/models/estimate`): the same checks and the same estimate as a real load
(`load_limits.check_load`, `store/memory.py`), and the `load_guardrails` verdict the load would get.

A load the checks refuse for other reasons (a context above the model's trained one, a quantized V
cache without flash attention, out-of-range integers) raises the same error here as the load would.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from openlms.core.errors import InvalidModelFileError
from openlms.core.types import LoadConfig, ModelDescriptor, ModelKind
from openlms.services.load_limits import MemoryVerdict, memory_verdict, runtime_offloads
from openlms.services.models import ModelService
from openlms.store.memory import DEFAULT_PARALLEL, LoadEstimate, system_memory


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    descriptor: ModelDescriptor
    config: LoadConfig  # the request's fields over the model's per-model defaults
    estimate: LoadEstimate
    gpu_offload: bool  # the runtime offloads to a GPU (else `estimate.gpu_bytes` is 0)
    verdict: MemoryVerdict

    @property
    def parallel(self) -> int | None:
        """Predictions served at once (None for an embedding model)."""
        if self.descriptor.kind is ModelKind.EMBEDDING:
            return None
        return self.config.parallel or DEFAULT_PARALLEL

    @property
    def message(self) -> str:
        """LM Studio's words for the verdict."""
        if self.verdict.guardrails == "off":
            return "Resource guardrails are off: the model will be loaded without this check."
        if self.verdict.fits:
            return "This model may be loaded based on your resource guardrails settings."
        return (
            "This model will fail to load based on your resource guardrails settings. Use a smaller "
            "context length or a quantized KV cache, unload other models, or relax the load_guardrails "
            "setting."
        )


async def estimate_memory(models: ModelService, query: str, config: LoadConfig) -> MemoryEstimate:
    """The estimate of loading the downloaded model `query` with `config` (ModelNotFoundError,
    InvalidRequestError for a config the load would refuse, InvalidModelFileError for an unreadable
    header)."""
    descriptor = await models.find_downloaded(query)
    config = await models.with_defaults(descriptor, config)
    plan = await models.check_load(descriptor, config, guardrails="off")
    if plan.estimate is None:
        raise InvalidModelFileError(
            f"Cannot estimate {descriptor.key}: its GGUF header could not be read.", param="model"
        )
    memory = await asyncio.to_thread(system_memory)
    verdict = memory_verdict(plan.estimate, models.settings.load_guardrails, memory)
    return MemoryEstimate(descriptor, config, plan.estimate, runtime_offloads(models.runtime_name), verdict)
