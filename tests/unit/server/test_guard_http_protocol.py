"""The header deadline and header size cap (slow loris) on a real uvicorn server with a tiny app."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
import websockets

from openlms.server.guard.http_protocol import guarded_http_protocol

DEADLINE = 0.5


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})
        return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    protocol = guarded_http_protocol(header_timeout_s=DEADLINE, max_header_bytes=8192)
    config = uvicorn.Config(
        app, http=protocol, lifespan="off", log_config=None, log_level="warning", timeout_keep_alive=30
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield int(sock.getsockname()[1])
    server.should_exit = True
    await task


async def read_all(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), 30)  # returns at EOF, when the server closes


async def test_headers_sent_too_slowly_get_the_connection_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
    for _ in range(int(DEADLINE / 0.1) + 5):  # a slow loris: a header line now and then
        await asyncio.sleep(0.1)
        if writer.is_closing() or reader.at_eof():
            break
        writer.write(b"X-A: b\r\n")
    assert await read_all(reader) == b""  # closed with no response
    writer.close()


async def test_oversized_headers_get_431(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert (await read_all(reader)).startswith(b"HTTP/1.1 431 ")
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(20):  # in pieces, each small
        writer.write(b"X-Piece: " + b"a" * 1000 + b"\r\n" if _ else b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        await writer.drain()
    writer.write(b"\r\n")
    assert (await read_all(reader)).startswith(b"HTTP/1.1 431 ")
    writer.close()


async def test_small_headers_with_a_large_body_pass(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b"x" * 50_000
    writer.write(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50000\r\n\r\n" + body)
    assert (await asyncio.wait_for(reader.readuntil(b"ok"), 30)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_keep_alive_requests_and_websockets_outlive_the_deadline(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(2):  # the clock restarts after each response; an idle gap shorter than it is fine
        writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"ok"), 30)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(DEADLINE / 3)
    writer.close()
    async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
        await asyncio.sleep(DEADLINE * 3)
        await ws.send("still here")
        assert await ws.recv() == "still here"
