"""Stored Responses-API conversations (`store`, `previous_response_id`): one JSON file per response under
`<home>/openlms/responses/`, written atomically; the oldest files go beyond `KEEP`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.fsutil import atomic_write_text

KEEP = 1000  # stored responses kept (the newest); older ones are removed when a new one is saved
RESPONSE_ID = re.compile(r"resp_[0-9a-f]{24}")


@dataclass(frozen=True, slots=True)
class ResponseStore:
    root: Path

    def save(self, rid: str, messages: list[dict[str, Any]]) -> None:
        """Keep the conversation up to and including response `rid`'s answer (template messages)."""
        atomic_write_text(self._path(rid), json.dumps({"id": rid, "messages": messages}))
        self._prune()

    def load(self, rid: str) -> list[dict[str, Any]]:
        """The conversation of a stored response; a clear 400 when there is none."""
        path = self._path(rid) if RESPONSE_ID.fullmatch(rid) else None
        try:
            if path is None:
                raise FileNotFoundError(rid)
            messages: list[dict[str, Any]] = json.loads(path.read_text("utf-8"))["messages"]
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidRequestError(
                f"Previous response with id {rid!r} not found: it was not stored (send 'store': true, the "
                "default) or is too old. Send the whole conversation in 'input' instead.",
                param="previous_response_id",
            ) from exc
        return messages

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
