"""Stored Responses-API conversations (`store`, `previous_response_id`): one JSON file per response under
`<home>/openlms/responses/`, written atomically; the oldest files go beyond `KEEP`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openlms.core.errors import InvalidRequestError, PreviousResponseNotFoundError, ResponseNotFoundError
from openlms.core.fsutil import atomic_write_text

KEEP = 1000  # stored responses kept (the newest); older ones are removed when a new one is saved
RESPONSE_ID = re.compile(r"resp_[0-9a-f]{24}")


@dataclass(frozen=True, slots=True)
class ResponseStore:
    root: Path

    def save(self, rid: str, messages: list[dict[str, Any]], response: dict[str, Any]) -> None:
        """Keep response `rid` (the object `GET /v1/responses/{id}` answers) and the conversation up to and
        including its answer (template messages)."""
        record = {"id": rid, "messages": messages, "response": response}
        atomic_write_text(self._path(rid), json.dumps(record))
        self._prune()

    def load(self, rid: str) -> list[dict[str, Any]]:
        """The conversation of a stored response, for `previous_response_id` (a 404 when there is none)."""
        try:
            messages: list[dict[str, Any]] = self._record(rid)["messages"]
        except (ResponseNotFoundError, KeyError) as exc:
            raise PreviousResponseNotFoundError(
                f"Previous response with id {rid!r} not found: it was not stored (send 'store': true, the "
                "default), was deleted, or is too old. Send the whole conversation in 'input' instead.",
                param="previous_response_id",
            ) from exc
        return messages

    def get(self, rid: str) -> dict[str, Any]:
        """The stored response object."""
        response = self._record(rid).get("response")
        if not isinstance(response, dict):  # stored before responses were kept whole
            raise ResponseNotFoundError(f"Response with id {rid!r} not found.")
        return response

    def delete(self, rid: str) -> None:
        path = self._record_path(rid)
        try:
            path.unlink()
        except FileNotFoundError as exc:
            raise ResponseNotFoundError(f"Response with id {rid!r} not found.") from exc

    def _record(self, rid: str) -> dict[str, Any]:
        try:
            record = json.loads(self._record_path(rid).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ResponseNotFoundError(f"Response with id {rid!r} not found.") from exc
        if not isinstance(record, dict):
            raise ResponseNotFoundError(f"Response with id {rid!r} not found.")
        return record

    def _record_path(self, rid: str) -> Path:
        if not RESPONSE_ID.fullmatch(rid):  # never a path: '../settings' is no id
            raise ResponseNotFoundError(f"Response with id {rid!r} not found (not a response id).")
        return self.root / f"{rid}.json"

    def _path(self, rid: str) -> Path:
        if not RESPONSE_ID.fullmatch(rid):
            raise InvalidRequestError(f"Not a response id: {rid!r}.", param="previous_response_id")
        return self.root / f"{rid}.json"

    def _prune(self) -> None:
        files = sorted(self.root.glob("resp_*.json"), key=_mtime, reverse=True)
        for old in files[KEEP:]:
            old.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile by another save's pruning
        return 0.0
