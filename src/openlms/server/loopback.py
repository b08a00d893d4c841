"""Loopback-only endpoints: requests from another machine are refused with a 403 (OpenAI error shape)."""

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


def require_loopback(request: Request, what: str) -> None:
    """Raise `PermissionDeniedError` ("<what> is allowed from the local machine only.") for remote clients."""
    client = request.client.host if request.client else ""
    if not is_loopback(client):
        raise PermissionDeniedError(f"{what} is allowed from the local machine only.")
