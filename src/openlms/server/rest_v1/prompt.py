"""`POST /api/v1/apply-template`: the exact prompt a chat request would give the model (messages in,
prompt string out), with tools shaped as the model would see them. Nothing is generated.
`GET /api/v1/models/template?model=<key>`: the model's own template (its GGUF's, else openlms's built-in
one), what the app's prompt template editor shows when the model has no override."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from openlms.parsers.templates import PromptTemplateSpec
from openlms.server import openapi as doc
from openlms.server.openai import convert
from openlms.server.openai.protocol import ChatMessage, OpenAIModel
from openlms.server.state import State
from openlms.services.model_template import TemplateSource, model_template
from openlms.services.params import PredictionParams

router = APIRouter(prefix="/api/v1")


class ApplyTemplateRequest(OpenAIModel):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    prompt_template: dict[str, Any] | None = Field(
        default=None,
        description="openlms: an LM Studio LLMPromptTemplate to render with instead of the model's own",
    )


@router.post(
    "/apply-template",
    response_model=None,
    responses=doc.responses(doc.ok(doc.ApplyTemplateResponse), 404, 500, 503),
)
async def apply_template(body: ApplyTemplateRequest, state: State) -> dict[str, Any]:
    template = body.prompt_template
    params = PredictionParams(
        tools=body.tools,
        tool_choice=body.tool_choice,
        template=PromptTemplateSpec.from_json(template, param="prompt_template")
        if template is not None
        else None,
    )
    result = await state.predictor.apply_template(
        body.model, convert.template_messages(body.messages), params
    )
    return {
        "model": result.instance.identifier,
        "prompt": result.prompt,
        "prompt_tokens": result.prompt_tokens,
    }


class ModelTemplateResponse(BaseModel):
    model: str = Field(description="The model's key")
    source: TemplateSource = Field(
        description="gguf: the file's chat template; builtin: openlms's for its family"
    )
    builtin: str | None = Field(description="The built-in template's name (source builtin)")
    promptTemplate: dict[str, Any] | None = Field(  # noqa: N815 (LM Studio's camelCase field)
        description="LM Studio's LLMPromptTemplate (type jinja); null when the model has none"
    )


@router.get(
    "/models/template",
    response_model=None,
    responses=doc.responses(doc.ok(ModelTemplateResponse), 404),
)
async def get_model_template(
    model: Annotated[str, Query(min_length=1, max_length=2048, description="A downloaded model's key")],
    state: State,
) -> dict[str, Any]:
    """The prompt template the model uses when its per-model settings set none."""
    return (await model_template(state.models, model)).to_json()
