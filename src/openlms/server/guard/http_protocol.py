"""Slow-loris protection for uvicorn: a deadline and a size cap on each request's headers.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) but not a client that sends its headers
a byte at a time, and it caps header size only with h11 (`h11_max_incomplete_event_size`), not with
httptools, the parser it picks by default. `guarded_http_protocol()` subclasses the parser uvicorn would
use: from the moment a connection opens, or a response completes, the next request's headers must arrive
within `header_timeout_s` and `max_header_bytes`, else the connection is closed (with a 431 for size).
A request counts as arrived when uvicorn starts its request cycle; websocket upgrades stop the clock.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

HEADER_TIMEOUT_S = 15.0
MAX_HEADER_BYTES = 64 * 1024
TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 36\r\n\r\nThe request headers are too large.\r\n"
)


def header_end(data: bytes) -> int | None:
    """Index just past the blank line ending the headers in `data` (CRLF or bare LF), or None."""
    ends = [i + len(mark) for mark in (b"\r\n\r\n", b"\n\n") if (i := data.find(mark)) != -1]
    return min(ends) if ends else None


def guarded_http_protocol(
    header_timeout_s: float = HEADER_TIMEOUT_S, max_header_bytes: int = MAX_HEADER_BYTES
) -> type[asyncio.Protocol]:
    base: Any = AutoHTTPProtocol

    class GuardedHTTPProtocol(base):  # type: ignore[misc]
        """uvicorn's HTTP protocol with a header deadline and a header size cap."""

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(transport)
            self._header_timer: asyncio.TimerHandle | None = None
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._waiting_cycle = self.cycle
            self._header_bytes = 0
            self._headers_seen = False
            self._tail = b""
            self._header_timer = self.loop.call_later(header_timeout_s, self._header_deadline)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _between_requests(self) -> bool:
            """No request started since the clock was armed (a pipelined one may be running)."""
            cycle = self.cycle
            return cycle is self._waiting_cycle and (cycle is None or cycle.response_complete)

        def _awaiting_headers(self) -> bool:
            return self._header_timer is not None and self._between_requests()

        def _header_deadline(self) -> None:
            self._header_timer = None
            if self._between_requests() and not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._awaiting_headers() and self._headers_too_large(data):
                self._disarm()
                self.transport.write(TOO_LARGE)
                self.transport.close()
                return
            super().data_received(data)
            if self._header_timer is not None and not self._between_requests():
                self._disarm()  # the request's headers are in

        def _headers_too_large(self, data: bytes) -> bool:
            """Count header bytes up to the blank line that ends them (in this chunk or a later one)."""
            if self._headers_seen:
                return False
            across = header_end(self._tail + data[:3])  # a blank line split between two chunks
            ends = [e for e in (across - len(self._tail) if across else None, header_end(data)) if e]
            if ends:
                self._headers_seen = True
                return self._header_bytes + min(ends) > max_header_bytes
            self._header_bytes += len(data)
            self._tail = (self._tail + data)[-3:]
            return self._header_bytes > max_header_bytes

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def handle_websocket_upgrade(self, *args: Any) -> None:
            self._disarm()
            super().handle_websocket_upgrade(*args)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedHTTPProtocol
