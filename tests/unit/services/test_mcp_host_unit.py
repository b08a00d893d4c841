"""The MCP host's pure parts: consent, unknown labels, a broken mcp.json, results as outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as mt
import pytest

from openlms.core.errors import McpConfigError, McpNotAllowedError, McpServerNotFoundError
from openlms.core.settings import Settings
from openlms.services.mcp import outcome
from openlms.services.mcp.host import McpHost
from openlms.services.mcp.types import McpTool, RemoteServer, ToolSource
from tests.support.mcp import stdio_config, write_mcp_json

REMOTE = ToolSource("web", remote=RemoteServer("http://127.0.0.1:9/mcp"))


def host_on(home: Path, **settings: Any) -> McpHost:
    return McpHost(Settings(home=home, **settings))


async def test_mcp_json_servers_need_consent(tmp_path: Path) -> None:
    write_mcp_json(tmp_path, {"test": stdio_config()})
    host = host_on(tmp_path, mcp_allow_remote_servers=True)
    with pytest.raises(McpNotAllowedError) as raised:
        await host.tools([ToolSource("test")])
    message = raised.value.message
    assert '"mcp_allow_json_servers": true' in message
    assert str(tmp_path / "openlms" / "settings.json") in message
    assert "OPENLMS_MCP_ALLOW_JSON_SERVERS" in message
    assert [s.state for s in await host.statuses()] == ["stopped"]  # nothing was started


async def test_remote_servers_need_consent(tmp_path: Path) -> None:
    host = host_on(tmp_path, mcp_allow_json_servers=True)
    with pytest.raises(McpNotAllowedError, match="mcp_allow_remote_servers") as raised:
        await host.tools([REMOTE])
    assert "http://127.0.0.1:9/mcp" in raised.value.message
    tool = McpTool(REMOTE, "echo", "", {"type": "object"})
    refused = await host.call(tool, {"text": "x"})  # a call never raises: the model reads why
    assert not refused.ok and "mcp_allow_remote_servers" in refused.output


async def test_consent_is_checked_for_every_source_before_anything_starts(tmp_path: Path) -> None:
    write_mcp_json(tmp_path, {"test": stdio_config()})
    host = host_on(tmp_path, mcp_allow_json_servers=True)
    with pytest.raises(McpNotAllowedError):
        await host.tools([ToolSource("test"), REMOTE])
    assert [s.state for s in await host.statuses()] == ["stopped"]


async def test_unknown_label_lists_the_servers(tmp_path: Path) -> None:
    write_mcp_json(tmp_path, {"beta": stdio_config(), "alpha": stdio_config()})
    host = host_on(tmp_path, mcp_allow_json_servers=True)
    with pytest.raises(McpServerNotFoundError) as raised:
        await host.tools([ToolSource("gamma")])
    assert "'gamma'" in raised.value.message and "alpha, beta" in raised.value.message
    with pytest.raises(McpServerNotFoundError):
        await host.stop("gamma")


async def test_no_mcp_json_means_no_servers(tmp_path: Path) -> None:
    host = host_on(tmp_path, mcp_allow_json_servers=True)
    assert await host.statuses(with_tools=True) == []
    with pytest.raises(McpServerNotFoundError, match="servers there: none"):
        await host.tools([ToolSource("time")])


async def test_broken_mcp_json_is_a_config_error_then_read_again(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {\n  "test": {"command": }\n}}\n', encoding="utf-8")
    host = host_on(tmp_path, mcp_allow_json_servers=True)
    with pytest.raises(McpConfigError, match="line 2"):
        await host.statuses()
    write_mcp_json(tmp_path, {"test": stdio_config()})  # fixed: taken without a restart
    assert [(s.name, s.kind, s.state) for s in await host.statuses()] == [("test", "stdio", "stopped")]


def test_text_content_is_joined_and_other_content_described() -> None:
    result = mt.CallToolResult(
        content=[
            mt.TextContent(type="text", text="first"),
            mt.ImageContent(type="image", data="aGk=", mime_type="image/png"),
            mt.ResourceLink(type="resource_link", name="doc", uri="file:///doc.txt"),
            mt.EmbeddedResource(
                type="resource", resource=mt.TextResourceContents(uri="file:///a.txt", text="embedded")
            ),
            mt.TextContent(type="text", text="last"),
        ]
    )
    done = outcome.from_result("t", result)
    assert done.ok and done.error is None
    assert done.output.split("\n") == [
        "first",
        "[image: image/png]",
        "[resource link: file:///doc.txt]",
        "embedded",
        "last",
    ]


def test_tool_error_and_structured_only_results() -> None:
    failed = outcome.from_result(
        "t", mt.CallToolResult(content=[mt.TextContent(type="text", text="no")], is_error=True)
    )
    assert (failed.ok, failed.output, failed.error) == (False, "no", "no")
    empty_error = outcome.from_result("t", mt.CallToolResult(content=[], is_error=True))
    assert not empty_error.ok and empty_error.output == "The tool t failed."
    structured = outcome.from_result("t", mt.CallToolResult(content=[], structured_content={"n": 1}))
    assert structured.ok and structured.output == '{"n": 1}'


def test_timeout_and_cap_messages() -> None:
    late = outcome.timed_out("search", 60.0)
    assert late.output == "The tool search did not answer within 60 s." and not late.ok
    text = "y" * (outcome.MAX_RESULT_CHARS + 1)
    capped = outcome.capped("t", text)
    assert capped.startswith("y" * outcome.MAX_RESULT_CHARS)
    assert capped.endswith(f"cut from {len(text)} to {outcome.MAX_RESULT_CHARS} characters]")
    assert outcome.capped("t", "short") == "short"


async def test_a_missing_program_is_named_in_the_servers_error(tmp_path: Path) -> None:
    """An mcp.json entry whose command does not exist says which command, not just "[Errno 2] ..."."""
    write_mcp_json(tmp_path, {"gone": {"command": "openlms-no-such-mcp-server", "args": []}})
    host = host_on(tmp_path, mcp_allow_json_servers=True)
    try:
        [status] = await host.statuses(with_tools=True)
    finally:
        await host.aclose()
    assert status.state == "failed"
    assert status.error is not None and "'openlms-no-such-mcp-server' was not found" in status.error
