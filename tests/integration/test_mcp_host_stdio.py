"""The MCP host on real stdio servers: the FastMCP test server and the published `mcp-server-time`."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from pathlib import Path

import psutil
import pytest

from openlms.core.errors import McpConnectionError
from openlms.services.mcp.host import McpHost
from openlms.services.mcp.outcome import MAX_RESULT_CHARS
from openlms.services.mcp.types import McpTool, ToolSource
from tests.integration.conftest import HostFactory
from tests.support.mcp import stdio_config, write_mcp_json

pytestmark = pytest.mark.slow

SOURCE = ToolSource("test")


async def tools_of(host: McpHost, source: ToolSource = SOURCE) -> dict[str, McpTool]:
    return {tool.name: tool for tool in await host.tools([source])}


def server_pids(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The pids the test server logged on stderr when it started (it reaches the log with its name)."""
    found = re.findall(r"\[mcp/test\] mcp-test-server started pid=(\d+)", caplog.text)
    return [int(pid) for pid in found]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_until(predicate: object, what: str, limit: float = 30.0) -> None:
    assert callable(predicate)
    for _ in range(int(limit / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {limit} s")


async def test_lists_and_calls_tools(tmp_path: Path, make_host: HostFactory) -> None:
    write_mcp_json(tmp_path, {"test": stdio_config({"OPENLMS_MCP_TEST_VALUE": "from mcp.json"})})
    host = make_host()
    tools = await tools_of(host)
    assert {"add", "echo", "fail", "hang", "big", "crash", "env"} <= set(tools)
    assert tools["add"].source == SOURCE
    assert tools["add"].as_function()["function"]["parameters"]["required"] == ["a", "b"]
    assert (await host.call(tools["add"], {"a": 2, "b": 3})).output == "5"
    echoed = await host.call(tools["echo"], {"text": "héllo wörld"})
    assert echoed.ok and echoed.output == "héllo wörld" and echoed.error is None
    env = await host.call(tools["env"], {"name": "OPENLMS_MCP_TEST_VALUE"})
    assert env.output == "from mcp.json"  # the entry's env, merged over the server's environment
    path = await host.call(tools["env"], {"name": "PATH"})
    assert path.output  # the rest of the environment is there too
    [status] = await host.statuses()
    assert (status.name, status.kind, status.state, status.error) == ("test", "stdio", "running", None)


async def test_tool_error_is_an_outcome(tmp_path: Path, make_host: HostFactory) -> None:
    write_mcp_json(tmp_path, {"test": stdio_config()})
    host = make_host()
    tools = await tools_of(host)
    failed = await host.call(tools["fail"], {})
    assert not failed.ok
    assert "this tool always fails" in failed.output and failed.error
    bad_arguments = await host.call(tools["add"], {"a": "two"})
    assert not bad_arguments.ok and bad_arguments.output
    assert (await host.call(tools["add"], {"a": 1, "b": 1})).output == "2"  # the server is still fine


async def test_hanging_tool_times_out_and_the_server_stays_usable(
    tmp_path: Path, make_host: HostFactory
) -> None:
    write_mcp_json(tmp_path, {"test": stdio_config()})
    host = make_host(mcp_tool_timeout_s=1.5)
    tools = await tools_of(host)
    hung = await host.call(tools["hang"], {})
    assert not hung.ok
    assert hung.output == "The tool hang did not answer within 1.5 s."
    assert hung.error and "mcp_tool_timeout_s" in hung.error
    assert (await host.call(tools["add"], {"a": 20, "b": 22})).output == "42"


async def test_crash_marks_failed_then_restarts_on_next_use(
    tmp_path: Path, make_host: HostFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="openlms.mcp")
    write_mcp_json(tmp_path, {"test": stdio_config()})
    host = make_host()
    tools = await tools_of(host)
    crashed = await host.call(tools["crash"], {})
    assert not crashed.ok
    assert "stopped during the call" in crashed.output
    [status] = await host.statuses()
    assert status.state == "failed" and status.error
    assert (await host.call(tools["add"], {"a": 1, "b": 2})).output == "3"
    [status] = await host.statuses()
    assert status.state == "running"
    first, second = server_pids(caplog)
    assert first != second and not alive(first)


async def test_big_results_pass_whole_up_to_the_cap(tmp_path: Path, make_host: HostFactory) -> None:
    write_mcp_json(tmp_path, {"test": stdio_config()})
    host = make_host()
    tools = await tools_of(host)
    assert (await host.call(tools["big"], {"n": 100_000})).output == "x" * 100_000
    huge = await host.call(tools["big"], {"n": MAX_RESULT_CHARS + 5000})
    assert huge.ok
    assert huge.output.startswith("x" * MAX_RESULT_CHARS)
    assert f"cut from {MAX_RESULT_CHARS + 5000} to {MAX_RESULT_CHARS} characters" in huge.output


async def test_stderr_goes_to_the_log_and_no_child_outlives_aclose(
    tmp_path: Path,
    make_host: HostFactory,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger="openlms.mcp")
    write_mcp_json(tmp_path, {"test": stdio_config()})
    host = make_host()
    await tools_of(host)
    [pid] = server_pids(caplog)
    assert alive(pid)
    assert "mcp-test-server started" not in capfd.readouterr().out  # never on our stdout
    await host.aclose()
    await wait_until(lambda: not alive(pid), "the server process's exit")
    assert [s.state for s in await host.statuses()] == ["stopped"]


async def test_idle_server_is_stopped(
    tmp_path: Path, make_host: HostFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="openlms.mcp")
    write_mcp_json(tmp_path, {"test": stdio_config()})
    host = make_host(mcp_idle_stop_s=0.5)
    tools = await tools_of(host)
    [pid] = server_pids(caplog)

    async def state() -> str:
        return (await host.statuses())[0].state

    for _ in range(300):
        if await state() == "stopped":
            break
        await asyncio.sleep(0.1)
    assert await state() == "stopped"
    await wait_until(lambda: not alive(pid), "the idle server process's exit")
    assert (await host.call(tools["add"], {"a": 2, "b": 2})).output == "4"  # started again on use


async def test_changed_entry_restarts_the_server(tmp_path: Path, make_host: HostFactory) -> None:
    write_mcp_json(tmp_path, {"test": stdio_config({"OPENLMS_MCP_TEST_VALUE": "first"})})
    host = make_host()
    tools = await tools_of(host)
    assert (await host.call(tools["env"], {"name": "OPENLMS_MCP_TEST_VALUE"})).output == "first"
    write_mcp_json(tmp_path, {"test": stdio_config({"OPENLMS_MCP_TEST_VALUE": "second one"})})
    assert (await host.call(tools["env"], {"name": "OPENLMS_MCP_TEST_VALUE"})).output == "second one"


async def test_stop_and_a_command_that_does_not_exist(tmp_path: Path, make_host: HostFactory) -> None:
    write_mcp_json(
        tmp_path, {"test": stdio_config(), "missing": {"command": str(tmp_path / "no-such-mcp-server")}}
    )
    host = make_host()
    await tools_of(host)
    await host.stop("test")
    assert {s.name: s.state for s in await host.statuses()} == {"test": "stopped", "missing": "stopped"}
    with pytest.raises(McpConnectionError, match="could not be started") as raised:
        await host.tools([ToolSource("missing")])
    assert "no-such-mcp-server" in raised.value.message
    statuses = {s.name: s for s in await host.statuses(with_tools=True)}
    assert statuses["missing"].state == "failed" and statuses["missing"].tools is None
    assert statuses["test"].state == "running" and statuses["test"].tools
    assert "add" in {tool.name for tool in statuses["test"].tools}


async def test_a_server_that_exits_at_once_shows_its_stderr(tmp_path: Path, make_host: HostFactory) -> None:
    script = "import sys; sys.exit('missing API key: set OPENLMS_MCP_TEST_KEY')"
    write_mcp_json(tmp_path, {"broken": {"command": sys.executable, "args": ["-c", script]}})
    host = make_host()
    with pytest.raises(McpConnectionError) as raised:
        await host.tools([ToolSource("broken")])
    assert "missing API key: set OPENLMS_MCP_TEST_KEY" in raised.value.message
    [status] = await host.statuses()
    assert status.state == "failed" and status.error and "missing API key" in status.error


async def test_allowed_tools_filter_and_refuse(tmp_path: Path, make_host: HostFactory) -> None:
    write_mcp_json(tmp_path, {"test": stdio_config()})
    host = make_host()
    source = ToolSource("test", allowed_tools=("add",))
    tools = await host.tools([source])
    assert [tool.name for tool in tools] == ["add"]
    echo = McpTool(source, "echo", "", {"type": "object"})
    refused = await host.call(echo, {"text": "hi"})
    assert not refused.ok and "not among the allowed tools" in refused.output


async def test_published_mcp_server_time(tmp_path: Path, make_host: HostFactory) -> None:
    command = Path(sys.executable).with_name("mcp-server-time")
    write_mcp_json(tmp_path, {"time": {"command": str(command), "args": ["--local-timezone", "UTC"]}})
    host = make_host()
    tools = {tool.name: tool for tool in await host.tools([ToolSource("time")])}
    assert "get_current_time" in tools
    result = await host.call(tools["get_current_time"], {"timezone": "UTC"})
    assert result.ok, result.output
    assert json.loads(result.output)["timezone"] == "UTC"
