"""A FastMCP (`MCPServer` in mcp 2.x) server for tests, runnable as a script:

    python tests/support/mcp/server_script.py                 # stdio
    python tests/support/mcp/server_script.py --http PORT     # streamable HTTP on 127.0.0.1:PORT/mcp
    python tests/support/mcp/server_script.py --sse PORT      # SSE on 127.0.0.1:PORT/sse

Tools: add, echo, fail (raises), hang (sleeps forever), big (n characters), crash (exits the process),
env (reads an environment variable), header (reads an HTTP request header).
It writes one line to stderr when it starts (for the log tests).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

STARTED_MARKER = "mcp-test-server started"

server = MCPServer("openlms-test", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ToolError("this tool always fails")


@server.tool()
async def hang() -> str:
    """Never answers."""
    import anyio

    await anyio.sleep_forever()
    return "unreachable"


@server.tool()
def big(n: int) -> str:
    """Return n characters."""
    return "x" * n


@server.tool()
def crash() -> str:
    """Exit the server process at once."""
    sys.stderr.write("mcp-test-server crashing\n")
    sys.stderr.flush()
    os._exit(3)


@server.tool()
def env(name: str) -> str:
    """The value of an environment variable of the server process ('' when unset)."""
    return os.environ.get(name, "")


@server.tool()
def header(name: str, ctx: Context) -> str:
    """The value of an HTTP header of this request ('' when unset or over stdio)."""
    headers = ctx.headers or {}
    return next((value for key, value in headers.items() if key.lower() == name.lower()), "")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, help="serve streamable HTTP on 127.0.0.1:PORT/mcp")
    parser.add_argument("--sse", type=int, help="serve SSE on 127.0.0.1:PORT/sse")
    args = parser.parse_args()
    sys.stderr.write(f"{STARTED_MARKER} pid={os.getpid()} at {time.time():.0f}\n")
    sys.stderr.flush()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    elif args.sse:
        server.run("sse", host="127.0.0.1", port=args.sse)
    else:
        server.run()


if __name__ == "__main__":
    main()
