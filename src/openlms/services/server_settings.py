"""The server's own settings as the app's Developer page sees and changes them (docs/http-api.md).

`view()` answers the values the running server uses, the ones saved for its next start where they
differ (`restart_required`), and its status. `update(changes)` validates the changes through `Settings`
(the one source of rules), saves them atomically into `<home>/openlms/settings.json` (where `lms server
start` reads them) and applies live those the server can change while it runs: the API switch
(`api_enabled`, read by `server/guard/switch.py` on every request), JIT, the JIT TTL and auto-evict. The
others (port, bind address, CORS, API tokens) take effect at the next start.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from typing import Any

import psutil
from pydantic import ValidationError

from openlms import __version__
from openlms.core.errors import InvalidRequestError
from openlms.core.fsutil import atomic_write_text
from openlms.core.settings import Settings, read_settings_file
from openlms.services.models import ModelService

log = logging.getLogger("openlms.server")

# What the page shows and may change, in its order.
EDITABLE: tuple[str, ...] = (
    "api_enabled",
    "port",
    "host",
    "cors",
    "jit",
    "jit_ttl_seconds",
    "auto_evict",
    "require_auth",
)
# What a running server applies at once; the rest waits for a restart.
LIVE: tuple[str, ...] = ("api_enabled", "jit", "jit_ttl_seconds", "auto_evict")
NETWORK_HOST = "0.0.0.0"
LOCAL_HOST = "127.0.0.1"
RESTART_HINT = "lms server stop && lms server start"


class ServerSettingsService:
    """Reads and changes the running server's settings; built per request (it holds no state)."""

    def __init__(self, settings: Settings, models: ModelService) -> None:
        self.settings = settings
        self.models = models

    def view(self) -> dict[str, Any]:
        running = self._running()
        saved = self._saved()
        pending = {name: saved[name] for name in EDITABLE if name in saved and saved[name] != running[name]}
        return {
            "settings": running,
            "network": running["host"] not in (LOCAL_HOST, "localhost", "::1"),
            "live": list(LIVE),
            "restart_required": pending,
            "restart_command": RESTART_HINT,
            "status": self._status(),
        }

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate, save, apply the live ones; the view after it."""
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise InvalidRequestError(
                f"Unknown server setting(s): {', '.join(unknown)}. Settable: {', '.join(EDITABLE)}.",
                param=unknown[0],
            )
        validated = _validated(self.settings, changes)
        self._save(validated)
        for name in LIVE:
            if name in validated:
                self._apply(name, validated[name])
        if changes:
            log.info("Server settings changed: %s", ", ".join(f"{k}={v}" for k, v in validated.items()))
        return self.view()

    def _running(self) -> dict[str, Any]:
        dumped = self.settings.model_dump(mode="json", include=set(EDITABLE))
        return {name: dumped[name] for name in EDITABLE}

    def _saved(self) -> dict[str, Any]:
        try:
            data = read_settings_file(self.settings.home)
        except ValueError:
            return {}
        return {name: data[name] for name in EDITABLE if name in data}

    def _save(self, values: dict[str, Any]) -> None:
        data = read_settings_file(self.settings.home)
        data.update(values)
        atomic_write_text(self.settings.settings_file, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def _apply(self, name: str, value: Any) -> None:
        setattr(self.settings, name, value)
        manager = self.models.manager
        if name == "jit_ttl_seconds":
            manager.jit_ttl_seconds = value or None
        elif name == "auto_evict":
            manager.auto_evict = value

    def _status(self) -> dict[str, Any]:
        started = psutil.Process().create_time()
        return {
            "version": __version__,
            "pid": psutil.Process().pid,
            "uptime_seconds": max(0, int(time.time() - started)),
            "loaded_models": [
                {"identifier": i.identifier, "model_key": i.descriptor.key, "jit": i.jit}
                for i in self.models.manager.instances
            ],
        }


def _validated(current: Settings, changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` checked by `Settings`' own rules, as JSON values; a bad one is a 400 naming it."""
    try:
        checked = Settings.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        raise InvalidRequestError(
            f"Invalid value for {field}: {first['msg']} (got {first.get('input')!r}).", param=field
        ) from exc
    if "host" in changes:
        _check_host(str(changes["host"]))
    dumped = checked.model_dump(mode="json")
    return {name: dumped[name] for name in changes}


def _check_host(host: str) -> None:
    if host == "localhost":
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InvalidRequestError(
            f"Invalid value for host: {host!r} is not an IP address. Use 127.0.0.1 (this machine only) "
            "or 0.0.0.0 (the local network).",
            param="host",
        ) from None
