"""LM Link's configuration: `<home>/openlms/link.json` (docs/link.md).

```json
{"enabled": true, "device_name": "laptop", "preferred_device": "desktop",
 "peers": [{"name": "desktop", "url": "http://192.168.1.20:1234", "engine": "openlms", "token": "..."}]}
```

The file holds peers' tokens: it is written atomically with mode 0600. Names and URLs are checked here,
so that nothing unusable is ever stored; a file that cannot be read is a `LinkConfigError` naming it.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from openlms.core.errors import LinkConfigError, PeerNotFoundError
from openlms.core.fsutil import atomic_write_text
from openlms.core.peer_names import check_name as check_name

Engine = Literal["openlms", "openai"]
ENGINES: tuple[Engine, ...] = ("openlms", "openai")


@dataclass(frozen=True, slots=True)
class Peer:
    """Another machine's server: an openlms (or LM Studio) one, or any OpenAI-compatible engine."""

    name: str
    url: str
    engine: Engine = "openlms"
    token: str | None = None


@dataclass(frozen=True, slots=True)
class LinkConfig:
    enabled: bool = False
    device_name: str | None = None  # None: the host name
    preferred_device: str | None = None
    peers: tuple[Peer, ...] = ()

    def peer(self, name: str) -> Peer | None:
        return next((p for p in self.peers if p.name == name), None)


def link_path(state_dir: Path) -> Path:
    """`<home>/openlms/link.json` (`state_dir` is `Settings.state_dir`)."""
    return state_dir / "link.json"


def this_device_name(config: LinkConfig) -> str:
    """The name set with `lms link set-device-name`, else the machine's host name."""
    return config.device_name or socket.gethostname() or "localhost"


def check_url(url: str) -> str:
    """The peer's base URL, without a trailing slash: http(s), a host, no credentials, query or fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LinkConfigError(
            f"Invalid peer URL '{url}': give the server's address, e.g. http://192.168.1.20:1234.",
            param="url",
        )
    if parts.username is not None or parts.password is not None:
        raise LinkConfigError(
            "A peer URL may not hold credentials: give the URL without them and the token with --token.",
            param="url",
        )
    if parts.query or parts.fragment:
        raise LinkConfigError(f"Invalid peer URL '{url}': leave out the query and fragment.", param="url")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise LinkConfigError(
            f"Invalid peer URL '{url}': the port is not a number 0-65535.", param="url"
        ) from None
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def check_engine(engine: str) -> Engine:
    if engine not in ENGINES:
        raise LinkConfigError(f"Unknown engine '{engine}': use openlms or openai.", param="engine")
    return engine


def make_peer(name: str, url: str, engine: str = "openlms", token: str | None = None) -> Peer:
    """A checked `Peer` (an empty token is no token)."""
    if token is not None and (not token.strip() or any(c in token for c in "\r\n")):
        raise LinkConfigError("Invalid token: give a non-empty token on one line.", param="token")
    return Peer(check_name(name), check_url(url), check_engine(engine), token or None)


def put_peer(config: LinkConfig, peer: Peer) -> tuple[LinkConfig, bool]:
    """The config with `peer` added (or replacing the one of its name, in place); and whether it is new."""
    if config.peer(peer.name) is None:
        return replace(config, peers=(*config.peers, peer)), True
    return replace(config, peers=tuple(peer if p.name == peer.name else p for p in config.peers)), False


def remove_peer(config: LinkConfig, name: str) -> LinkConfig:
    """The config without the peer `name` (no longer preferred either); `PeerNotFoundError` if unknown."""
    if config.peer(name) is None:
        raise PeerNotFoundError(f"No LM Link peer named '{name}'; see `lms link status`.", param="name")
    preferred = None if config.preferred_device == name else config.preferred_device
    return replace(config, peers=tuple(p for p in config.peers if p.name != name), preferred_device=preferred)


def check_preferred(config: LinkConfig, name: str | None) -> str | None:
    """`name` if it is this device or a peer (None clears the preference)."""
    if name is None or name == this_device_name(config) or config.peer(name) is not None:
        return name
    raise PeerNotFoundError(
        f"No device named '{name}': use this device's name or a peer's (`lms link status`).", param="name"
    )


def read_link(path: Path) -> LinkConfig:
    """The configuration in `path`; a missing file is the default (disabled, no peers)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LinkConfig()
    except OSError as exc:
        raise LinkConfigError(f"Cannot read {path}: {exc.strerror}.") from None
    try:
        return _config(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError, LinkConfigError) as exc:
        reason = exc.message if isinstance(exc, LinkConfigError) else str(exc)
        raise LinkConfigError(f"{path} is not a valid LM Link file ({reason}): fix or delete it.") from None


def write_link(path: Path, config: LinkConfig) -> None:
    """Atomically, mode 0600 (it holds peers' tokens)."""
    atomic_write_text(path, json.dumps(to_json(config), indent=2, ensure_ascii=False) + "\n")
    os.chmod(path, 0o600)


def to_json(config: LinkConfig) -> dict[str, Any]:
    peers = [
        {"name": p.name, "url": p.url, "engine": p.engine} | ({"token": p.token} if p.token else {})
        for p in config.peers
    ]
    return {
        "enabled": config.enabled,
        "device_name": config.device_name,
        "preferred_device": config.preferred_device,
        "peers": peers,
    }


def _config(document: Any) -> LinkConfig:
    if not isinstance(document, dict):
        raise TypeError("expected a JSON object")
    peers = document.get("peers") or []
    if not isinstance(peers, list):
        raise TypeError("'peers' must be a list")
    device = document.get("device_name")
    preferred = document.get("preferred_device")
    return LinkConfig(
        enabled=bool(document.get("enabled", False)),
        device_name=check_name(device, "device name") if device else None,
        preferred_device=str(preferred) if preferred else None,
        peers=tuple(_peer(entry) for entry in peers),
    )


def _peer(entry: Any) -> Peer:
    if not isinstance(entry, dict):
        raise TypeError("each peer must be an object")
    token = entry.get("token")
    return make_peer(
        str(entry["name"]),
        str(entry["url"]),
        str(entry.get("engine", "openlms")),
        str(token) if token else None,
    )
