"""The wire models of the conversations API (`/api/v1/app/...`), validated at the edge. Field names are
camelCase, as in the files (docs/app.md, "Conversations")."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

MAX_TITLE = 300
MAX_MESSAGES = 10_000


class ToolCall(BaseModel):
    """One tool call of an assistant message (its result is a later `tool` message)."""

    model_config = ConfigDict(extra="allow")
    id: str | None = Field(default=None, max_length=200)
    name: str = Field(max_length=200)
    arguments: str | dict[str, Any] = Field(default="", description="JSON text or an object")


class Message(BaseModel):
    """One message. Fields not listed here (the app's own, such as alternative versions) are kept."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    reasoning: str | None = Field(default=None, description="The model's reasoning, shown collapsed")
    toolCalls: list[ToolCall] | None = None
    toolCallId: str | None = Field(default=None, description="A tool message: the call it answers")
    stats: dict[str, Any] | None = Field(
        default=None, description="An answer's stats (tokens/s, time to first token, tokens, stop reason)"
    )
    files: list[str] | None = Field(default=None, description="Names of attached files in `<id>.files/`")


class BranchedFrom(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation: str = Field(max_length=64, description="The conversation this one was branched from")
    messageIndex: int = Field(ge=0, description="The last message taken from it")


class ConversationFields(BaseModel):
    """What a client may set; a field left out stays as it is (PATCH) or takes its default (create)."""

    model_config = ConfigDict(extra="forbid")
    # `X | SkipJsonSchema[None] = None`: may be left out, but not sent as null
    title: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=MAX_TITLE)
    model: str | None = Field(default=None, max_length=1024, description="The model key last used")
    systemPrompt: str | SkipJsonSchema[None] = None
    settings: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None, description="Inference settings (the app's)"
    )
    messages: list[Message] | SkipJsonSchema[None] = Field(default=None, max_length=MAX_MESSAGES)
    branchedFrom: BranchedFrom | None = None

    @field_validator("title", "systemPrompt", "settings", "messages", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, but not null")
        return value

    def fields(self) -> dict[str, Any]:
        """Only what the client sent (an explicit null too: `model: null` clears the model)."""
        return self.model_dump(exclude_unset=True)


class UpdateConversation(ConversationFields):
    ifUpdatedAt: int | None = Field(
        default=None, description="Save only if the chat's updatedAt is still this (else 409)"
    )

    def fields(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"ifUpdatedAt"})


class CreateConversation(ConversationFields):
    folder: str = Field(default="", max_length=2048, description="Folder path ('' is the top)")


class MoveConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder: str = Field(max_length=2048, description="The folder to move into ('' is the top)")


class DuplicateConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(
        default=None, min_length=1, max_length=MAX_TITLE, description="null: `<title> (copy)`"
    )


class BranchConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messageIndex: int = Field(ge=0, le=MAX_MESSAGES, description="The last message the branch keeps")


class CreateFolder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=2048, description="e.g. `Work/Drafts` (parents are made)")


class MoveFolder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=2048, description="The folder to move or rename")
    into: str | None = Field(default=None, max_length=2048, description="New parent ('' is the top)")
    name: str | None = Field(default=None, max_length=100, description="New name (a rename)")


# -- answers ------------------------------------------------------------------------------------------


class ConversationSummary(BaseModel):
    id: str
    folder: str
    title: str
    createdAt: int | None
    updatedAt: int | None
    model: str | None
    messageCount: int


class SkippedFile(BaseModel):
    path: str = Field(description="Relative to the conversations folder")
    reason: str


class ConversationTree(BaseModel):
    """Every folder (paths, sorted) and chat (newest first), and the files that were not opened."""

    folders: list[str]
    conversations: list[ConversationSummary]
    skipped: list[SkippedFile]


class ConversationResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    folder: str
    version: int
    title: str
    createdAt: int
    updatedAt: int
    model: str | None
    systemPrompt: str
    settings: dict[str, Any]
    messages: list[dict[str, Any]]
    branchedFrom: BranchedFrom | None


class SearchHit(ConversationSummary):
    match: Literal["title", "message"]
    messageIndex: int | None
    snippet: str


class SearchResults(BaseModel):
    results: list[SearchHit]


class FolderResponse(BaseModel):
    path: str


class TrashEntry(BaseModel):
    id: str = Field(description="Restore with POST /api/v1/app/trash/{id}/restore")
    kind: Literal["conversation", "folder"]
    folder: str = Field(description="Where it was")
    name: str = Field(description="The chat's id or the folder's name")
    title: str | None
    deletedAt: int


class TrashList(BaseModel):
    entries: list[TrashEntry]


class AttachedFile(BaseModel):
    name: str
    sizeBytes: int
