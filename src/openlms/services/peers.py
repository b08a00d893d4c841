"""LM Link (issue 16, docs/link.md): the peers of `<home>/openlms/link.json` and their state.

A peer is checked with one request, bounded in time: `GET <url>/api/v1/models` for an openlms (or LM
Studio) peer, with `Authorization: Bearer <token>` when it has one, `GET <url>/v1/models` for an
OpenAI-compatible engine. Its state is `online` (with its loaded models and the request's latency),
`offline` (no answer in time, refused connection), `unauthorized` (401/403) or `error` (any other answer);
every reason names the peer. Requests are not routed to peers yet.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import httpx

from openlms.core.errors import LinkConfigError
from openlms.core.settings import Settings
from openlms.store import peers as store

PeerState = Literal["online", "offline", "unauthorized", "error"]
CHECK_TIMEOUT_S = 3.0
_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class PeerStatus:
    peer: store.Peer
    state: PeerState
    latency_ms: float | None = None
    reason: str | None = None
    loaded_models: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The wire form (the token itself never leaves the server: only whether there is one)."""
        return {
            "name": self.peer.name,
            "url": self.peer.url,
            "engine": self.peer.engine,
            "has_token": self.peer.token is not None,
            "state": self.state,
            "latency_ms": self.latency_ms,
            "reason": self.reason,
            "loaded_models": list(self.loaded_models),
        }


class LinkService:
    """Reads and changes link.json (one writer at a time) and checks peers."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = CHECK_TIMEOUT_S,
    ) -> None:
        self._path: Path = store.link_path(settings.state_dir)
        self._transport = transport
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()

    @property
    def path(self) -> Path:
        return self._path

    def config(self) -> store.LinkConfig:
        return store.read_link(self._path)

    async def status(self) -> dict[str, Any]:
        """This device, the switch, the preferred device and every peer's state (checked at once)."""
        config = self.config()
        checked = await asyncio.gather(*(self.check(peer) for peer in config.peers))
        return {
            "device_name": store.this_device_name(config),
            "enabled": config.enabled,
            "preferred_device": config.preferred_device,
            "routing": False,  # requests are not routed to peers yet (docs/link.md)
            "path": str(self._path),
            "peers": [status.to_json() for status in checked],
        }

    async def put_peer(self, name: str, url: str, engine: str, token: str | None) -> tuple[store.Peer, bool]:
        peer = store.make_peer(name, url, engine, token)
        async with self._lock:
            config = self.config()
            if peer.name == store.this_device_name(config):
                raise LinkConfigError(
                    f"'{name}' is this device's name: give the peer another name.", param="name"
                )
            config, created = store.put_peer(config, peer)
            store.write_link(self._path, config)
        return peer, created

    async def remove_peer(self, name: str) -> None:
        async with self._lock:
            store.write_link(self._path, store.remove_peer(self.config(), name))

    async def update(
        self, *, enabled: Any = _UNSET, device_name: Any = _UNSET, preferred_device: Any = _UNSET
    ) -> store.LinkConfig:
        """Change the fields given (`preferred_device=None` clears it); the new configuration."""
        async with self._lock:
            config = self.config()
            if enabled is not _UNSET:
                config = replace(config, enabled=bool(enabled))
            if device_name is not _UNSET:
                name = store.check_name(device_name, "device name") if device_name else None
                if name is not None and config.peer(name) is not None:
                    raise LinkConfigError(
                        f"'{name}' is a peer's name: give this device another one.", param="name"
                    )
                config = replace(config, device_name=name)
            if preferred_device is not _UNSET:
                config = replace(config, preferred_device=store.check_preferred(config, preferred_device))
            store.write_link(self._path, config)
        return config

    async def check(self, peer: store.Peer) -> PeerStatus:
        """One bounded request to the peer: its state, latency and loaded models; never raises."""
        path = "/api/v1/models" if peer.engine == "openlms" else "/v1/models"
        headers = {"Authorization": f"Bearer {peer.token}"} if peer.token else {}
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(
                transport=self._transport, timeout=self._timeout_s, trust_env=False
            ) as client:
                response = await asyncio.wait_for(
                    client.get(peer.url + path, headers=headers), timeout=self._timeout_s
                )
        except (TimeoutError, httpx.TimeoutException):
            return PeerStatus(
                peer, "offline", reason=f"{_who(peer)} did not answer within {self._timeout_s:g} s"
            )
        except httpx.HTTPError as exc:
            return PeerStatus(
                peer, "offline", reason=f"Cannot reach {_who(peer)}: {exc or type(exc).__name__}"
            )
        latency = round((time.monotonic() - started) * 1000, 1)
        return _answered(peer, response, latency)


def _who(peer: store.Peer) -> str:
    return f"peer '{peer.name}' ({peer.url})"


def _answered(peer: store.Peer, response: httpx.Response, latency_ms: float) -> PeerStatus:
    if response.status_code == 403:  # e.g. this address or name not allowed there: its message says
        reason = f"{_who(peer)} refused the request (HTTP 403: {_message(response)})"
        return PeerStatus(peer, "unauthorized", latency_ms, reason)
    if response.status_code == 401:
        advice = (
            "its server refused the token: give the right one"
            if peer.token
            else "its server requires a token: give one"
        )
        reason = (
            f"{_who(peer)} answered HTTP 401 ({_message(response)}); {advice} with "
            f"`lms link add {peer.name} {peer.url} --token <token>`"
        )
        return PeerStatus(peer, "unauthorized", latency_ms, reason)
    if response.status_code != 200:
        reason = f"{_who(peer)} answered HTTP {response.status_code}: {_message(response)}"
        return PeerStatus(peer, "error", latency_ms, reason)
    try:
        models = _loaded_models(peer, response.json())
    except (ValueError, TypeError, AttributeError, KeyError):
        reason = (
            f"{_who(peer)} did not answer as an {peer.engine} server would (is the URL or --engine right?)"
        )
        return PeerStatus(peer, "error", latency_ms, reason)
    return PeerStatus(peer, "online", latency_ms, None, models)


def _loaded_models(peer: store.Peer, body: Any) -> tuple[str, ...]:
    """openlms: the loaded instances' identifiers (`/api/v1/models`); openai: every model it serves."""
    if peer.engine == "openai":
        data = body["data"] if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise TypeError("no data list")
        return tuple(str(entry["id"]) for entry in data)
    models = body.get("models")
    if not isinstance(models, list):
        raise TypeError("no models list")
    return tuple(
        str(instance["id"])
        for model in models
        for instance in model.get("loaded_instances") or []
        if instance.get("status") != "loading"
    )


def _message(response: httpx.Response) -> str:
    """The peer's own error message when it sent one, else the start of its body."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)[:300]
    except ValueError:
        pass
    return response.text[:300] or response.reason_phrase
