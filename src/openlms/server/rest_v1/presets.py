"""openlms extension: config presets over HTTP, `/api/v1/presets` (docs/http-api.md, "Presets"): list,
read, create, update, delete and import LM Studio-format preset files in `<home>/config-presets/` (the
files SDK requests with `preset=` use). Presets are the user's own files: every route answers the local
machine only. A preset's prediction fields are checked as a prediction would read them, so a saved preset
never fails a later request; file names come from a slug of the name, never from the request."""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openlms.core.errors import HubError, InvalidRequestError, PresetNotFoundError
from openlms.server import openapi as doc
from openlms.server.loopback import require_loopback
from openlms.server.state import State
from openlms.services.kvconfig import read_prediction
from openlms.store.presets import Preset, PresetStore, to_json

MAX_IMPORT_BYTES = 1024 * 1024  # a preset is a few KB; anything near this is not one
IMPORT_TIMEOUT_S = 15.0
MAX_FIELDS = 200


def _local_only(request: Request) -> None:
    require_loopback(request, "Managing presets is")


router = APIRouter(prefix="/api/v1/presets", dependencies=[Depends(_local_only)])


class KVField(BaseModel):
    model_config = ConfigDict(extra="allow")
    key: str = Field(min_length=1, max_length=200, description="e.g. `llm.prediction.temperature`")
    value: Any = None


class KVConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    fields: list[KVField] = Field(default_factory=list, max_length=MAX_FIELDS)


class PresetBody(BaseModel):
    """A preset as LM Studio writes it (`identifier` and other keys, when sent, are ignored)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=200)
    operation: KVConfig = Field(default_factory=KVConfig, description="Prediction fields")
    load: KVConfig = Field(default_factory=KVConfig, description="Load fields (kept as they are)")


class ImportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(default=None, max_length=2048, description="An http(s) URL of a preset file")
    preset: dict[str, Any] | None = Field(
        default=None, description="A preset file's JSON (read by the client)"
    )


class PresetResponse(BaseModel):
    identifier: str
    name: str
    changed: bool
    operation: dict[str, Any]
    load: dict[str, Any]


class PresetList(BaseModel):
    presets: list[PresetResponse]


class Deleted(BaseModel):
    identifier: str
    deleted: bool


ONE = doc.responses(doc.ok(PresetResponse), 400, 403, 404)


def _store(state: State) -> PresetStore:
    return state.models.presets


Store = Annotated[PresetStore, Depends(_store)]


@router.get("", response_model=None, responses=doc.responses(doc.ok(PresetList), 403))
def list_presets(store: Store) -> dict[str, Any]:
    """Every preset in `<home>/config-presets/` (files that are not valid JSON are skipped)."""
    return {"presets": [to_json(p) for p in store.all()]}


@router.post("", response_model=None, responses=ONE)
def create_preset(body: PresetBody, store: Store) -> dict[str, Any]:
    """A new preset, its identifier `@local:<slug of the name>` (made unique)."""
    return _save(store, body, None)


@router.post("/import", response_model=None, responses=doc.responses(doc.ok(PresetResponse), 400, 403, 502))
async def import_preset(body: ImportBody, store: Store) -> dict[str, Any]:
    """Add a preset from `{"url"}` (fetched here: http or https, at most 1 MiB) or `{"preset": {...}}`
    (a file the client read). It is saved as a new preset under its own name."""
    if (body.url is None) == (body.preset is None):
        raise InvalidRequestError("Send either 'url' (a preset file's address) or 'preset' (its JSON).")
    data = await _fetch(body.url) if body.url is not None else body.preset
    try:
        preset = PresetBody.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequestError(
            f"This is not an LM Studio preset: {_first_problem(exc)}. A preset file holds "
            '{"name", "operation": {"fields": [{"key", "value"}]}}.',
            param="preset",
        ) from None
    return await run_in_threadpool(_save, store, preset, None)


@router.get("/{identifier:path}", response_model=None, responses=ONE)
def get_preset(identifier: str, store: Store) -> dict[str, Any]:
    return to_json(_existing(store, identifier))


@router.put("/{identifier:path}", response_model=None, responses=ONE)
def update_preset(identifier: str, body: PresetBody, store: Store) -> dict[str, Any]:
    """Replace a preset's name and fields (its file and identifier stay)."""
    _existing(store, identifier)
    return _save(store, body, identifier)


@router.delete("/{identifier:path}", response_model=None, responses=doc.responses(doc.ok(Deleted), 403, 404))
def delete_preset(identifier: str, store: Store) -> dict[str, Any]:
    _existing(store, identifier)
    store.delete(identifier)
    return {"identifier": identifier, "deleted": True}


def _existing(store: PresetStore, identifier: str) -> Preset:
    preset = store.get(identifier)
    if preset is None:
        raise PresetNotFoundError(identifier, available=[(p.identifier, p.name) for p in store.all()])
    return preset


def _save(store: PresetStore, body: PresetBody, identifier: str | None) -> dict[str, Any]:
    operation = body.operation.model_dump()
    read_prediction({f["key"]: f["value"] for f in operation["fields"]}, strict=False)  # 400 on bad values
    name = body.name.strip()
    if not name:
        raise InvalidRequestError("Give the preset a name.", param="name")
    return to_json(store.save(name, operation, body.load.model_dump(), identifier=identifier))


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "the file"
    return f"{where}: {error['msg'].lower()}"


async def _fetch(url: str) -> Any:
    """The JSON at `url`: http(s) only, size-capped, with a timeout; failures say what went wrong."""
    if not url.lower().startswith(("http://", "https://")):
        raise InvalidRequestError("Import from an http:// or https:// URL.", param="url")
    try:
        async with (
            httpx.AsyncClient(timeout=IMPORT_TIMEOUT_S, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise HubError(f"{url} answered HTTP {response.status_code}: check the address.")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_IMPORT_BYTES:
                    raise InvalidRequestError(
                        f"{url} is larger than {MAX_IMPORT_BYTES // 1024} KiB: not a preset file.",
                        param="url",
                    )
    except httpx.InvalidURL as exc:
        raise InvalidRequestError(f"'{url}' is not a valid URL: {exc}.", param="url") from None
    except httpx.HTTPError as exc:
        raise HubError(f"{url} could not be read ({type(exc).__name__}: {exc}). Check the address.") from None
    try:
        return json.loads(bytes(body))
    except ValueError:
        raise InvalidRequestError(
            f"{url} is not JSON: it is not a preset file. Give the address of the .preset.json file itself "
            "(a page of the LM Studio Hub cannot be imported from here).",
            param="url",
        ) from None
