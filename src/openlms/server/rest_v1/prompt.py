"""`POST /api/v1/apply-template`: the exact prompt a chat request would give the model (messages in,
prompt string out), with tools shaped as the model would see them. Nothing is generated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from openlms.server import openapi as doc
from openlms.server.openai import convert
from openlms.server.openai.protocol import ChatMessage, OpenAIModel
from openlms.server.state import State
from openlms.services.params import PredictionParams

router = APIRouter(prefix="/api/v1")


class ApplyTemplateRequest(OpenAIModel):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None


@router.post(
    "/apply-template",
    response_model=None,
    responses=doc.responses(doc.ok(doc.ApplyTemplateResponse), 404, 500, 503),
)
async def apply_template(body: ApplyTemplateRequest, state: State) -> dict[str, Any]:
    params = PredictionParams(tools=body.tools, tool_choice=body.tool_choice)
    result = await state.predictor.apply_template(
        body.model, convert.template_messages(body.messages), params
    )
    return {
        "model": result.instance.identifier,
        "prompt": result.prompt,
        "prompt_tokens": result.prompt_tokens,
    }
