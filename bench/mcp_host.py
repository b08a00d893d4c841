"""The MCP host's own costs, over the FastMCP test server (tests/support/mcp), no model involved.

  .venv/bin/python bench/mcp_host.py [--calls 200] [--json out.json]

cold start   first `tools()` of an mcp.json stdio server: spawn, initialize, tools/list
call         one `tools/call` (add) on the running stdio server, p50/p95 over --calls
parallel     --calls calls issued at once on the same session: wall time per call
remote       a per-request streamable HTTP server on loopback: connect + list in a request scope, then
             one call's p50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openlms.core.settings import Settings  # noqa: E402
from openlms.services.mcp.host import McpHost  # noqa: E402
from openlms.services.mcp.types import RemoteServer, ToolSource  # noqa: E402
from tests.support.mcp import http_server, stdio_config, write_mcp_json  # noqa: E402


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def stdio_figures(home: Path, calls: int) -> dict[str, Any]:
    write_mcp_json(home, {"test": stdio_config()})
    host = McpHost(Settings(home=home, mcp_allow_json_servers=True))
    try:
        started = time.perf_counter()
        tools = {tool.name: tool for tool in await host.tools([ToolSource("test")])}
        cold = time.perf_counter() - started
        times = []
        for i in range(calls):
            began = time.perf_counter()
            await host.call(tools["add"], {"a": i, "b": 1})
            times.append(time.perf_counter() - began)
        began = time.perf_counter()
        await asyncio.gather(*(host.call(tools["add"], {"a": i, "b": 1}) for i in range(calls)))
        parallel = (time.perf_counter() - began) / calls
    finally:
        await host.aclose()
    return {
        "cold_start_ms": ms(cold),
        "call_p50_ms": ms(statistics.median(times)),
        "call_p95_ms": ms(statistics.quantiles(times, n=20)[-1]),
        "parallel_per_call_ms": ms(parallel),
    }


async def remote_figures(home: Path, url: str, calls: int) -> dict[str, Any]:
    host = McpHost(Settings(home=home, mcp_allow_remote_servers=True))
    source = ToolSource("remote", remote=RemoteServer(url))
    async with host.session() as scope:
        began = time.perf_counter()
        tools = {tool.name: tool for tool in await scope.tools([source])}
        connect = time.perf_counter() - began
        times = []
        for i in range(calls):
            began = time.perf_counter()
            await scope.call(tools["add"], {"a": i, "b": 1})
            times.append(time.perf_counter() - began)
    return {"remote_connect_list_ms": ms(connect), "remote_call_p50_ms": ms(statistics.median(times))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(stdio_figures(Path(tmp), args.calls))
        with http_server() as url:
            figures |= asyncio.run(remote_figures(Path(tmp), url, args.calls))
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
