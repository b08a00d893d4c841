"""Loopback-only endpoints: requests from another machine, or addressed to a name that is not this
machine's (a DNS-rebinding web page: its peer address is loopback, its Host the attacker's name), are
refused with a 403 (OpenAI error shape)."""

from __future__ import annotations

import ipaddress

from fastapi import Request

from openlms.core.errors import PermissionDeniedError


def is_loopback(host: str) -> bool:
    """Whether `host` (a client address) is this machine: 127.0.0.0/8, ::1, ::ffff:127.x or `localhost`."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def host_name(value: str) -> str:
    """The host part of a Host header or host name, lowercased: `[::1]:1234` -> `::1`, `a.b.:80` -> `a.b`."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def require_loopback(request: Request, what: str) -> None:
    """Raise `PermissionDeniedError` ("<what> is allowed from the local machine only.") for remote clients
    and for requests whose Host header is not a loopback name (a request without one passes: browsers
    always send it)."""
    client = request.client.host if request.client else ""
    host = request.headers.get("host")
    if not is_loopback(client) or (host is not None and not is_loopback(host_name(host))):
        raise PermissionDeniedError(f"{what} is allowed from the local machine only.")
