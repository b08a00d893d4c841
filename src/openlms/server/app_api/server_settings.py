"""openlms extension: the server's own settings for the app's Developer page, `GET|PATCH
/api/v1/app/server/settings` (docs/http-api.md). Local machine only: no remote client may read or change
how the server runs. Changes are saved to the settings file; the API switch (`api_enabled`), JIT, its TTL
and auto-evict apply at once, the others at the next start (`restart_required`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from openlms.server import openapi as doc
from openlms.server.loopback import require_loopback
from openlms.server.state import State
from openlms.services.server_settings import ServerSettingsService


def _local_only(request: Request) -> None:
    require_loopback(request, "Reading or changing the server's settings is")


router = APIRouter(prefix="/api/v1/app/server", dependencies=[Depends(_local_only)])


class SettingsChange(BaseModel):
    """The settings to change; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")
    api_enabled: bool | SkipJsonSchema[None] = Field(
        default=None, description="Serve the API to other programs (live; off: they get 503)"
    )
    port: int | SkipJsonSchema[None] = Field(default=None, description="HTTP port (next start)")
    host: str | SkipJsonSchema[None] = Field(
        default=None,
        max_length=64,
        description="Bind address: 127.0.0.1, or 0.0.0.0 for the network (next start)",
    )
    cors: bool | SkipJsonSchema[None] = Field(default=None, description="CORS for any origin (next start)")
    jit: bool | SkipJsonSchema[None] = Field(default=None, description="Just-in-time loading (live)")
    jit_ttl_seconds: int | SkipJsonSchema[None] = Field(
        default=None, description="Idle TTL of JIT-loaded models, seconds, 0: never (live)"
    )
    auto_evict: bool | SkipJsonSchema[None] = Field(
        default=None, description="One JIT model at a time (live)"
    )
    require_auth: bool | SkipJsonSchema[None] = Field(
        default=None, description="Require API tokens (next start)"
    )


class ServerSettingsView(BaseModel):
    settings: dict[str, Any] = Field(description="The values the running server uses")
    network: bool = Field(description="Whether the server listens on the network (not loopback only)")
    live: list[str] = Field(description="The settings applied at once when changed")
    restart_required: dict[str, Any] = Field(description="Saved values that take effect at the next start")
    restart_command: str = Field(description="How to restart the server")
    status: dict[str, Any] = Field(description="version, pid, uptime_seconds, loaded_models")


VIEW = doc.responses(doc.ok(ServerSettingsView), 403)


@router.get("/settings", response_model=None, responses=VIEW)
def get_settings(state: State) -> dict[str, Any]:
    return ServerSettingsService(state.settings, state.models).view()


@router.patch("/settings", response_model=None, responses=doc.responses(doc.ok(ServerSettingsView), 400, 403))
def change_settings(body: SettingsChange, state: State) -> dict[str, Any]:
    """Validate and save the fields sent; api_enabled, JIT, jit_ttl_seconds and auto_evict apply at once."""
    return ServerSettingsService(state.settings, state.models).update(body.model_dump(exclude_unset=True))
