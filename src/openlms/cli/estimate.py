"""`lms load --estimate-only`: the server's estimate (`POST /api/v1/models/estimate`, docs/http-api.md)
printed as LM Studio prints it: the model, the estimated GPU and total memory, and the verdict of the
server's resource guardrails (`load_guardrails`). The server reads the model's header and sizes weights,
KV cache, compute buffers and vision projector for the load's context, GPU share and parallel; the CLI
only sends what the user set and prints the answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openlms.cli.errors import CliError
from openlms.cli.render import format_size

ESTIMATE_PATH = "/api/v1/models/estimate"


@dataclass(frozen=True, slots=True)
class Estimate:
    model: str
    context_length: int
    gpu_bytes: int
    total_bytes: int
    message: str

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Estimate:
        guardrails = body.get("guardrails")
        try:
            message = guardrails["message"] if isinstance(guardrails, Mapping) else None
            return cls(
                model=str(body["model"]),
                context_length=int(body["context_length"]),
                gpu_bytes=int(body["gpu_bytes"]),
                total_bytes=int(body["total_bytes"]),
                message=str(message or ""),
            )
        except (KeyError, TypeError, ValueError):
            raise CliError(f"Unexpected answer from the server's {ESTIMATE_PATH}.") from None


def estimate_body(
    key: str, *, gpu: str | float | None, context_length: int | None, parallel: int | None
) -> dict[str, Any]:
    """The request: only what the user set (the server fills in its defaults, as a load would)."""
    return {"model": key, "config": load_config(gpu=gpu, context_length=context_length, parallel=parallel)}


def load_config(
    *, gpu: str | float | None, context_length: int | None, parallel: int | None
) -> dict[str, Any]:
    """The `config` of a load or an estimate request: only the settings the user gave."""
    given = {"context_length": context_length, "gpu": gpu, "parallel": parallel}
    return {name: value for name, value in given.items() if value is not None}


def render_estimate(display_name: str, estimate: Estimate) -> str:
    lines = [
        f"Model: {display_name}",
        f"Context Length: {estimate.context_length} tokens",
        f"Estimated GPU Memory:   {format_size(estimate.gpu_bytes)}",
        f"Estimated Total Memory: {format_size(estimate.total_bytes)}",
        "",
        f"Estimate: {estimate.message}",
    ]
    return "\n".join(lines)
