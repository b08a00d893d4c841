"""Server log records into the app's `LogBus` (`--source server`), and the start-up endpoint list."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from openlms.core.settings import Settings
from openlms.services.logbus import LogBus

# openlms's own loggers ("openlms.server", "openlms.engine", ...) and uvicorn's ("uvicorn.error" for
# start-up and shutdown, "uvicorn.access" for one line per request with its status code).
SERVER_LOGGERS = ("openlms", "uvicorn")

log = logging.getLogger("openlms.server")


class LogBusHandler(logging.Handler):
    """Publishes each record as `{"timestamp", "level", "logger", "message"}` on the `server` source.

    Holds the bus weakly: an app that is gone (tests build many) leaves an inert handler behind.
    """

    def __init__(self, bus: LogBus) -> None:
        super().__init__()
        self._bus = weakref.ref(bus)
        self.setFormatter(logging.Formatter("%(message)s"))  # the message, plus a traceback if any

    def emit(self, record: logging.LogRecord) -> None:
        bus = self._bus()
        if bus is None or not bus.wants("server"):
            return
        try:
            bus.publish("server", server_event(record, self.format(record)))
        except Exception:
            self.handleError(record)


def server_event(record: logging.LogRecord, message: str) -> dict[str, Any]:
    return {
        "timestamp": int(record.created * 1000),
        "level": record.levelname,
        "logger": record.name,
        "message": message,
    }


def attach_server_logs(bus: LogBus) -> Callable[[], None]:
    """Send the server's log records to `bus`; returns the function that stops it."""
    handler = LogBusHandler(bus)
    for name in SERVER_LOGGERS:
        logging.getLogger(name).addHandler(handler)

    def detach() -> None:
        for name in SERVER_LOGGERS:
            logging.getLogger(name).removeHandler(handler)

    return detach


def base_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def endpoint_lines(app: FastAPI, url: str) -> list[str]:
    """`->  GET  <url><path>` for every documented endpoint, in registration order."""
    lines = []
    for path, operations in app.openapi().get("paths", {}).items():
        for method in operations:
            lines.append(f"->  {method.upper():<4} {url}{path}")
    return lines


def log_endpoints(app: FastAPI, settings: Settings) -> None:
    """Log the supported endpoints, as LM Studio's server log does at start-up."""
    if not log.isEnabledFor(logging.INFO):
        return
    try:
        lines = endpoint_lines(app, base_url(settings))
    except Exception as exc:  # the list is a courtesy: never fail start-up over it
        log.warning("cannot list the endpoints: %s", exc)
        return
    log.info("Supported endpoints:")
    for line in lines:
        log.info("%s", line)
