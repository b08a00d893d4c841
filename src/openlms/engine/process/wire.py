"""What the server and a model worker say to each other over their socket pair (pickled tuples).

Parent -> child: ("gen", rid, GenerationRequest), ("cancel", rid), ("embed", rid, texts),
("tok", rid, text, add_special, parse_special), ("detok", rid, tokens), ("close",).
Child -> parent, always in a list sent at once (one write per event-loop turn of the child):
("ev", rid, event), ("ok", rid, value), ("err", rid, WireError), ("usage", EngineUsage).
Before that, while loading: ("progress", fraction), then ("loaded", RuntimeInfo) or ("err", 0, WireError).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any

from openlms.core import errors
from openlms.core.errors import EngineError, OpenLMSError
from openlms.core.types import EngineUsage, LoadConfig, ModelKind

WORKER_TAG = "openlms-worker"  # in every worker's command line: `ps` and tests find workers by it


@dataclass(frozen=True, slots=True)
class RuntimeInfo:
    """The loaded runtime's fixed properties, sent once when the load is done."""

    kind: ModelKind
    context_length: int
    load_config: LoadConfig
    chat_template: str | None
    bos_token: str
    eos_token: str
    usage: EngineUsage


@dataclass(frozen=True, slots=True)
class WireError:
    """An `OpenLMSError` as data: its class name (in `core.errors`), message and attributes."""

    name: str
    message: str
    state: dict[str, Any]


def encode_error(exc: BaseException) -> WireError:
    if isinstance(exc, OpenLMSError) and getattr(errors, type(exc).__name__, None) is type(exc):
        return WireError(type(exc).__name__, exc.message, dict(vars(exc)))
    return WireError("EngineError", f"The engine failed: {exc}", {})


def decode_error(wire: WireError) -> OpenLMSError:
    """The same class and message as raised in the worker (EngineError for anything unknown)."""
    cls = getattr(errors, wire.name, None)
    if not (isinstance(cls, type) and issubclass(cls, OpenLMSError)):
        return EngineError(wire.message)
    exc = cls.__new__(cls)
    Exception.__init__(exc, wire.message)
    exc.__dict__.update(wire.state)
    exc.message = wire.message
    return exc


def describe_exit(returncode: int | None) -> str:
    """How a worker ended, in words: "killed by signal 9 (SIGKILL)", "exited with status 1"."""
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            return f"killed by signal {-returncode}"
        return f"killed by signal {-returncode} ({name})"
    return f"exited with status {returncode}"


def sentence(how: str) -> str:
    """`describe_exit`'s words after "its worker process": "was killed by ...", "exited with ..."."""
    return f"was {how}" if how.startswith("killed") else how
