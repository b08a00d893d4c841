"""LM Link's admin routes (what `lms link` uses; docs/http-api.md, "LM Link (openlms)"), local machine only:
`GET /api/v1/link/status`, `PUT /api/v1/link/peers/{name}`, `DELETE /api/v1/link/peers/{name}`,
`PATCH /api/v1/link`. Peers' tokens are written, never shown."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from openlms.server import openapi as doc
from openlms.server.loopback import require_loopback
from openlms.server.state import State
from openlms.store.peers import LinkConfig, this_device_name

router = APIRouter(prefix="/api/v1/link")

PeerName = Annotated[str, Path(min_length=1, max_length=64, description="The peer's name")]
_READ = "Reading LM Link's status"
_WRITE = "Changing LM Link's settings"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class PeerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="The peer's base URL: http(s)://host:port")
    engine: Literal["openlms", "openai"] = Field(
        default="openlms", description="openlms (or LM Studio), or any OpenAI-compatible server"
    )
    token: str | None = Field(default=None, max_length=4096, description="Sent as `Authorization: Bearer`")


class LinkPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    device_name: str | None = Field(
        default=None, max_length=64, description="This device's name (null: the host name)"
    )
    preferred_device: str | None = Field(
        default=None, max_length=64, description="A device's name (null: none)"
    )


class PeerInfo(_Open):
    name: str
    url: str
    engine: Literal["openlms", "openai"]
    has_token: bool
    state: Literal["online", "offline", "unauthorized", "error"]
    latency_ms: float | None = Field(description="The check request's round trip (null unless it answered)")
    reason: str | None = Field(description="Why it is not online, naming the peer")
    loaded_models: list[str] = Field(description="The models loaded on it (an openai engine: all it serves)")


class LinkStatus(_Open):
    device_name: str
    enabled: bool
    preferred_device: str | None
    routing: bool = Field(description="Whether requests are routed to peers (not yet: false)")
    path: str
    peers: list[PeerInfo]


class LinkSettings(_Open):
    device_name: str
    enabled: bool
    preferred_device: str | None


class PeerWritten(_Open):
    name: str
    url: str
    engine: Literal["openlms", "openai"]
    has_token: bool
    created: bool = Field(description="False when a peer of that name was replaced")


class PeerRemoved(_Open):
    name: str
    removed: bool


@router.get("/status", response_model=None, responses=doc.responses(doc.ok(LinkStatus), 403, 500))
async def link_status(request: Request, state: State) -> dict[str, Any]:
    """This device's name, whether LM Link is on, the preferred device and each peer's state, latency and
    loaded models (every peer is checked now, each within a few seconds)."""
    require_loopback(request, _READ)
    return await state.link.status()


@router.put("/peers/{name}", response_model=None, responses=doc.responses(doc.ok(PeerWritten), 400, 403))
async def put_peer(name: PeerName, body: PeerBody, request: Request, state: State) -> dict[str, Any]:
    """Add a peer, or replace the one of that name."""
    require_loopback(request, _WRITE)
    peer, created = await state.link.put_peer(name, body.url, body.engine, body.token)
    return {
        "name": peer.name,
        "url": peer.url,
        "engine": peer.engine,
        "has_token": peer.token is not None,
        "created": created,
    }


@router.delete("/peers/{name}", response_model=None, responses=doc.responses(doc.ok(PeerRemoved), 403, 404))
async def delete_peer(name: PeerName, request: Request, state: State) -> dict[str, Any]:
    """Remove a peer (it stops being the preferred device)."""
    require_loopback(request, _WRITE)
    await state.link.remove_peer(name)
    return {"name": name, "removed": True}


@router.patch("", response_model=None, responses=doc.responses(doc.ok(LinkSettings), 400, 403, 404))
async def patch_link(body: LinkPatch, request: Request, state: State) -> dict[str, Any]:
    """Turn LM Link on or off, name this device, choose the preferred device (the fields sent change)."""
    require_loopback(request, _WRITE)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("enabled", False) is None:
        changes.pop("enabled")
    return settings_json(await state.link.update(**changes))


def settings_json(config: LinkConfig) -> dict[str, Any]:
    return {
        "device_name": this_device_name(config),
        "enabled": config.enabled,
        "preferred_device": config.preferred_device,
    }
