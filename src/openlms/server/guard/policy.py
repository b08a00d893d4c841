"""Which `Host` and `Origin` header values the server accepts (pure functions, no ASGI).

Host: a DNS-rebinding page reaches the server under the attacker's own name (`evil.example:1234` resolving
to 127.0.0.1), so only names that are this machine's are answered: `localhost`, loopback addresses and the
names the user adds (`allowed_hosts`), any port; on a network bind also the machine's host name, FQDN,
`<hostname>.local` and the local address a connection arrived on. IP literals other than those are refused
too. `require_auth` (every request needs a token) or `"*"` in `allowed_hosts` accepts any host. A request
without a Host header (HTTP/1.0) passes: browsers always send one, so it cannot come from a web page.

Origin: scripts and SDKs send none and pass. A browser origin passes when it is the server's own (the
same scheme, host and port as the request's Host), listed in `allowed_origins` (or `"*"` there), or when
`cors` is on. `Origin: null` (sandboxed frames, file://) is a browser origin like any other.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from openlms.core.settings import Settings
from openlms.server.loopback import host_name, is_loopback

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
WEB_SCHEME = {"ws": "http", "wss": "https"}


def host_port(value: str, scheme: str) -> tuple[str, int | None]:
    """(host, port) of a Host header; the port defaults to the scheme's. (host, None) for a bad port."""
    name = host_name(value)
    value = value.strip()
    tail = value[value.find("]") + 1 :] if value.startswith("[") else value
    if ":" not in tail or (not value.startswith("[") and value.count(":") > 1):
        return name, DEFAULT_PORTS.get(scheme)
    port = tail.rpartition(":")[2]
    return name, int(port) if port.isdigit() else None


def machine_names(settings: Settings) -> frozenset[str]:
    """The names under which other machines reach this one, and the address it is bound to."""
    names: set[str] = set()
    try:
        hostname = socket.gethostname()
        names.update({hostname, f"{hostname}.local", socket.getfqdn()})
    except OSError:
        pass
    if settings.host not in ("0.0.0.0", "::", ""):
        names.add(settings.host)
    return frozenset(host_name(n) for n in names if n)


def is_network_bind(settings: Settings) -> bool:
    return not is_loopback(host_name(settings.host))  # is_loopback counts `localhost`


@dataclass(frozen=True)
class HostPolicy:
    names: frozenset[str]
    any_host: bool
    local_address_ok: bool  # on a network bind: the address the connection arrived on

    @classmethod
    def from_settings(cls, settings: Settings) -> HostPolicy:
        listed = {host_name(h) for h in settings.allowed_hosts if h.strip()}
        network = is_network_bind(settings)
        names = LOOPBACK_NAMES | listed | (machine_names(settings) if network else frozenset())
        return cls(frozenset(names), settings.require_auth or "*" in listed, network)

    def allows(self, host: str | None, local_address: str | None) -> bool:
        if host is None or self.any_host:
            return True
        name = host_name(host)
        if name in self.names or is_loopback(name):
            return True
        if not self.local_address_ok or local_address is None:
            return False
        local = host_name(local_address)
        return name in (local, local.removeprefix("::ffff:"))  # a dual-stack bind sees IPv4 as ::ffff:a.b.c.d


def canonical_origin(value: str) -> str | None:
    """`scheme://host[:port]` with the scheme's default port left out, lowercased; None if not a URL
    origin (`null`, garbage)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    if scheme not in DEFAULT_PORTS or not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{shown}:{port}"


def cors_origins(settings: Settings) -> list[str]:
    """What CORSMiddleware should allow: any origin with `cors`, else `allowed_origins` as browsers spell
    them (`null` kept as is)."""
    if settings.cors or "*" in settings.allowed_origins:
        return ["*"]
    spelled = (canonical_origin(o) or o.strip().lower() for o in settings.allowed_origins if o.strip())
    return sorted(set(spelled))


@dataclass(frozen=True)
class OriginPolicy:
    listed: frozenset[str]
    any_origin: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> OriginPolicy:
        origins = cors_origins(settings)
        return cls(frozenset(origins), origins == ["*"])

    def allows(self, origin: str | None, host: str | None, scheme: str) -> bool:
        if origin is None or self.any_origin:
            return True
        canonical = canonical_origin(origin)
        if canonical is None:
            return origin.strip().lower() in self.listed  # e.g. "null", only when listed
        return canonical in self.listed or is_same_origin(canonical, host, scheme)


def is_same_origin(origin: str, host: str | None, scheme: str) -> bool:
    """Whether a canonical `origin` is the server's own: the request's scheme, Host name and port."""
    if host is None:
        return False
    web_scheme = WEB_SCHEME.get(scheme, scheme)
    name, port = host_port(host, web_scheme)
    if port is None:
        return False
    parts = urlsplit(origin)
    origin_port = parts.port or DEFAULT_PORTS[parts.scheme]
    return parts.scheme == web_scheme and host_name(parts.hostname or "") == name and origin_port == port
