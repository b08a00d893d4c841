"""What the routes share, built once per app and reached through `request.app.state` (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from openlms.core.settings import Settings
from openlms.services.chat_documents import ChatDocuments
from openlms.services.conversations import ConversationService
from openlms.services.downloads import DownloadService
from openlms.services.generation import Predictor
from openlms.services.mcp.host import McpHost
from openlms.services.models import ModelService
from openlms.services.peers import LinkService


@dataclass
class AppState:
    settings: Settings
    models: ModelService
    predictor: Predictor
    downloads: DownloadService
    mcp: McpHost  # the MCP host (services/mcp/host.py): mcp.json servers and per-request remote ones
    conversations: ConversationService  # the app's chats in <home>/conversations
    documents: ChatDocuments  # documents in a chat (SDK file parts, the app's attached files)
    link: LinkService = field(init=False)  # LM Link's peers (<home>/openlms/link.json)

    def __post_init__(self) -> None:
        self.link = LinkService(self.settings)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.openlms
    return state


State = Annotated[AppState, Depends(app_state)]
