"""Helpers for tests that use MCP servers: an `mcp.json` for a test home, the stdio test server's
config, and the test server over HTTP on a free loopback port."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from bench.harness import free_port

SERVER_SCRIPT = Path(__file__).with_name("server_script.py")


def stdio_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The mcp.json entry that runs the stdio test server with this Python."""
    entry: dict[str, Any] = {"command": sys.executable, "args": [str(SERVER_SCRIPT)]}
    if env:
        entry["env"] = dict(env)
    return entry


def write_mcp_json(home: Path, servers: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write `<home>/mcp.json` in Cursor's notation (`{"mcpServers": {...}}`); returns its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "mcp.json"
    path.write_text(json.dumps({"mcpServers": dict(servers)}, indent=2) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def http_server(transport: Literal["http", "sse"] = "http", timeout: float = 30.0) -> Iterator[str]:
    """The test server over streamable HTTP (or SSE) on a free loopback port, in a subprocess; yields its
    URL (`http://127.0.0.1:PORT/mcp`, or `.../sse`) once it accepts connections, and stops it after."""
    port = free_port()
    flag = "--http" if transport == "http" else "--sse"
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), flag, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(proc, port, timeout)
        yield f"http://127.0.0.1:{port}/{'mcp' if transport == 'http' else 'sse'}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_listening(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the MCP test server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the MCP test server did not listen on port {port} within {timeout} s")
