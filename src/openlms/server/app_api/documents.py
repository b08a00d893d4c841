"""openlms extension: `POST /api/v1/app/documents/prepare`, a chat's attached files made into its last user
message (docs/http-api.md, "Documents in a chat"). The app sends the result to the completions API as
that message's content: the completions APIs stay as OpenAI and LM Studio define them, and the app shows
the citations under the answer. Local machine only, as the conversations (whose files it reads) are."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from openlms.server import openapi as doc
from openlms.server.loopback import require_loopback
from openlms.server.state import State
from openlms.services.chat_documents import PreparedDocuments
from openlms.services.documents.types import Citation


def _local_only(request: Request) -> None:
    require_loopback(request, "The app's conversations are")


router = APIRouter(prefix="/api/v1/app", dependencies=[Depends(_local_only)])

MAX_FILES = 32
EXCERPT_CHARS = 2000  # a citation's text as the app shows it (a document given in full: its beginning)


class ChatMessage(BaseModel):
    role: str = Field(max_length=32)
    content: str = ""


class PrepareDocuments(BaseModel):
    model: str = Field(min_length=1, max_length=1000, description="The chat's model (JIT-loaded)")
    conversation: str = Field(min_length=1, max_length=200, description="The chat holding the files")
    files: list[str] = Field(min_length=1, max_length=MAX_FILES, description="Names of its attached files")
    messages: list[ChatMessage] = Field(
        min_length=1, description="The chat as it will be sent; the last user message is the query"
    )
    maxTokens: int | None = Field(default=None, ge=-1, description="The answer's limit, if the chat sets one")


class CitationOut(BaseModel):
    """Where a passage came from: the file, its page (PDF), its character span in the file's text."""

    file: str
    page: int | None
    start: int
    end: int
    text: str
    score: float


class BudgetOut(BaseModel):
    context: int = Field(description="The model's context length")
    chat: int = Field(description="Tokens of the chat's own messages (a bound)")
    answer: int = Field(description="Tokens kept for the answer")
    documents: int = Field(description="Tokens the documents could take")


class PreparedOut(BaseModel):
    mode: str = Field(description="full (the documents in full) or retrieval (the best passages)")
    content: str = Field(description="The last user message's new content: documents, then the query")
    citations: list[CitationOut]
    budget: BudgetOut


@router.post("/documents/prepare", response_model=None, responses=doc.responses(doc.ok(PreparedOut), 404))
async def prepare_documents(body: PrepareDocuments, state: State) -> dict[str, Any]:
    """The chat's files read (extracted once per content), then put in full or retrieved for the query."""
    documents = []
    for name in body.files:
        path = await run_in_threadpool(state.conversations.file_path, body.conversation, name)
        data = await run_in_threadpool(path.read_bytes)
        documents.append(await state.documents.extract(name, data))
    messages = [m.model_dump() for m in body.messages]
    prepared = await state.documents.prepare(body.model, messages, documents, max_tokens=body.maxTokens)
    return _out(prepared)


def _out(prepared: PreparedDocuments) -> dict[str, Any]:
    budget = prepared.budget
    return {
        "mode": prepared.context.mode,
        "content": _last_user(prepared.messages),
        "citations": [_citation(c) for c in prepared.context.citations],
        "budget": {
            "context": budget.context,
            "chat": budget.chat,
            "answer": budget.answer,
            "documents": budget.documents,
        },
    }


def _last_user(messages: list[dict[str, Any]]) -> str:
    return str(next(m for m in reversed(messages) if m.get("role") == "user")["content"])


def _citation(citation: Citation) -> dict[str, Any]:
    return {
        "file": citation.file,
        "page": citation.page,
        "start": citation.start,
        "end": citation.end,
        "text": citation.text[:EXCERPT_CHARS],
        "score": citation.score,
    }
