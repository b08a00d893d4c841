"""openlms extension: the app's conversations, `/api/v1/app/conversations|folders|trash` (docs/http-api.md,
format in docs/app.md). Conversations are private: every route answers the local machine only. The
routes are plain functions, so FastAPI runs the file work in its thread pool, off the event loop."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from openlms.server import openapi as doc
from openlms.server.app_api import protocol as p
from openlms.server.loopback import require_loopback
from openlms.server.state import State
from openlms.services.conversations import ConversationService


def _local_only(request: Request) -> None:
    require_loopback(request, "The app's conversations are")


router = APIRouter(prefix="/api/v1/app", dependencies=[Depends(_local_only)])

CONVERSATION = doc.responses(doc.ok(p.ConversationResponse), 404, 409)
TRASHED = doc.responses(doc.ok(p.TrashEntry, "The trash entry (undo with its restore)"), 404, 409)
BINARY = {"schema": {"type": "string", "format": "binary"}}
FOLDER = doc.responses(doc.ok(p.FolderResponse, "The folder's path"), 404, 409)


def _service(state: State) -> ConversationService:
    return state.conversations


Service = Annotated[ConversationService, Depends(_service)]


@router.get("/conversations", response_model=None, responses=doc.responses(doc.ok(p.ConversationTree)))
def list_conversations(service: Service) -> dict[str, Any]:
    """Every folder and chat; files that cannot be opened are in `skipped` with the reason."""
    listing = service.listing()
    return {
        "folders": listing.folders,
        "conversations": listing.conversations,
        "skipped": [{"path": item.path, "reason": item.reason} for item in listing.skipped],
    }


@router.post("/conversations", response_model=None, responses=CONVERSATION)
def create_conversation(body: p.CreateConversation, service: Service) -> dict[str, Any]:
    fields = body.fields()
    fields.pop("folder", None)
    return service.create(fields, body.folder).to_json()


@router.get("/conversations/search", response_model=None, responses=doc.responses(doc.ok(p.SearchResults)))
def search(
    service: Service, q: Annotated[str, Query(min_length=1, max_length=500, description="Text to find")]
) -> dict[str, Any]:
    """Chats whose title or message text (content, reasoning) contains `q`, ignoring case."""
    return {"results": service.search(q)}


@router.get("/conversations/{cid}", response_model=None, responses=CONVERSATION)
def get_conversation(cid: str, service: Service) -> dict[str, Any]:
    return service.get(cid).to_json()


@router.patch("/conversations/{cid}", response_model=None, responses=CONVERSATION)
def update_conversation(cid: str, body: p.UpdateConversation, service: Service) -> dict[str, Any]:
    """Replace the fields sent (messages as a whole list); a rename is `{"title": "..."}`."""
    return service.update(cid, body.fields(), body.ifUpdatedAt).to_json()


@router.delete("/conversations/{cid}", response_model=None, responses=TRASHED)
def delete_conversation(cid: str, service: Service) -> dict[str, Any]:
    """Move a chat (and its attached files) to the trash."""
    return service.delete(cid)


@router.post("/conversations/{cid}/move", response_model=None, responses=CONVERSATION)
def move_conversation(cid: str, body: p.MoveConversation, service: Service) -> dict[str, Any]:
    return service.move(cid, body.folder).to_json()


@router.post("/conversations/{cid}/duplicate", response_model=None, responses=CONVERSATION)
def duplicate_conversation(
    cid: str, service: Service, body: p.DuplicateConversation | None = None
) -> dict[str, Any]:
    """A copy beside the original, attached files included, titled `<title> (copy)` unless named."""
    return service.duplicate(cid, body.title if body else None).to_json()


@router.post("/conversations/{cid}/branch", response_model=None, responses=CONVERSATION)
def branch_conversation(cid: str, body: p.BranchConversation, service: Service) -> dict[str, Any]:
    """A new chat with the messages up to `messageIndex` and `branchedFrom` pointing back."""
    return service.branch(cid, body.messageIndex).to_json()


@router.put(
    "/conversations/{cid}/files/{name}",
    response_model=None,
    responses=doc.responses(doc.ok(p.AttachedFile), 404, 409),
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": BINARY}}},
)
async def put_file(cid: str, name: str, request: Request, service: Service) -> dict[str, Any]:
    """Attach a file to a chat (the body is its bytes), kept in `<id>.files/` beside the chat."""
    data = await request.body()
    size = await run_in_threadpool(service.save_file, cid, name, data)
    return {"name": name, "sizeBytes": size}


@router.get(
    "/conversations/{cid}/files/{name}",
    response_model=None,
    response_class=Response,
    responses=doc.responses(
        {200: {"description": "The file's bytes", "content": {"application/octet-stream": BINARY}}}, 404
    ),
)
def get_file(cid: str, name: str, service: Service) -> FileResponse:
    return FileResponse(service.file_path(cid, name), media_type="application/octet-stream", filename=name)


@router.post("/folders", response_model=None, responses=FOLDER)
def create_folder(body: p.CreateFolder, service: Service) -> dict[str, Any]:
    return {"path": service.create_folder(body.path)}


@router.post("/folders/move", response_model=None, responses=FOLDER)
def move_folder(body: p.MoveFolder, service: Service) -> dict[str, Any]:
    """Move a folder into another (`into`), rename it (`name`), or both; never into itself."""
    return {"path": service.move_folder(body.path, body.into, body.name)}


@router.delete("/folders", response_model=None, responses=TRASHED)
def delete_folder(
    service: Service, path: Annotated[str, Query(min_length=1, max_length=2048, description="Folder")]
) -> dict[str, Any]:
    """Move a folder, with everything in it, to the trash."""
    return service.delete_folder(path)


@router.get("/trash", response_model=None, responses=doc.responses(doc.ok(p.TrashList)))
def list_trash(service: Service) -> dict[str, Any]:
    return {"entries": service.trash_entries()}


@router.post("/trash/{entry_id}/restore", response_model=None, responses=TRASHED)
def restore(entry_id: str, service: Service) -> dict[str, Any]:
    """Put a deleted chat or folder back where it was (409 when that name is taken again)."""
    return service.restore(entry_id)


@router.delete("/trash/{entry_id}", response_model=None, responses=TRASHED)
def purge(entry_id: str, service: Service) -> dict[str, Any]:
    """Delete a trash entry for good."""
    return service.purge(entry_id)
