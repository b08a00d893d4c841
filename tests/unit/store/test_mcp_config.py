"""mcp.json: reading Cursor's notation, errors with their line, and edits that keep the rest of the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openlms.core.errors import McpConfigError, McpServerNotFoundError
from openlms.store.mcp_config import (
    McpServerConfig,
    add_server,
    mcp_config_path,
    parse_server_entry,
    read_mcp_config,
    remove_server,
)

GOOD = """{
  "mcpServers": {
    "time": {
      "command": "mcp-server-time",
      "args": ["--local-timezone", "UTC"],
      "env": {"TZ": "UTC"},
      "disabled": false
    },
    "hf-mcp-server": {
      "url": "https://huggingface.co/mcp",
      "headers": {"Authorization": "Bearer <YOUR_HF_TOKEN>"}
    },
    "legacy": {"url": "http://127.0.0.1:9000/sse"}
  },
  "someEditorSetting": {"keep": [1, 2, 3]}
}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return mcp_config_path(tmp_path)


def test_reads_stdio_and_remote_servers_in_file_order(config: Path) -> None:
    config.write_text(GOOD)
    servers = read_mcp_config(config)
    assert list(servers) == ["time", "hf-mcp-server", "legacy"]
    time = servers["time"]
    assert time == McpServerConfig(
        name="time", command="mcp-server-time", args=("--local-timezone", "UTC"), env={"TZ": "UTC"}
    )
    assert time.kind == "stdio"
    assert servers["hf-mcp-server"].kind == "http"
    assert servers["hf-mcp-server"].headers == {"Authorization": "Bearer <YOUR_HF_TOKEN>"}
    assert servers["legacy"].kind == "sse"


def test_missing_and_empty_files_have_no_servers(config: Path) -> None:
    assert read_mcp_config(config) == {}
    config.write_text("  \n")
    assert read_mcp_config(config) == {}
    config.write_text("{}")
    assert read_mcp_config(config) == {}


def test_bad_json_names_the_file_line_and_column(config: Path) -> None:
    config.write_text('{\n  "mcpServers": {\n    "time": {"command": "x",}\n  }\n}\n')
    with pytest.raises(McpConfigError) as caught:
        read_mcp_config(config)
    message = caught.value.message
    assert str(config) in message
    assert "line 3" in message and "column" in message
    assert "remove" in message


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ('{"args": ["x"]}', '"command"'),
        ('{"command": ["x"]}', '"command"'),
        ('{"command": "x", "args": "a b"}', '"args"'),
        ('{"command": "x", "env": {"A": 1}}', '"env"'),
        ('{"url": "ftp://example.com"}', '"url"'),
        ('{"url": "https://example.com/mcp", "headers": []}', '"headers"'),
        ('{"url": "https://example.com/mcp", "env": {"A": 1}}', '"env"'),
        ('{"command": "x", "headers": {"A": null}}', '"headers"'),
        ('{"command": null}', '"command"'),
        ('{"url": "https://example.com/mcp", "command": "x"}', '"command"'),
        ('"mcp-server-time"', "object"),
    ],
)
def test_a_wrong_shape_names_the_server_field_and_its_line(config: Path, entry: str, field: str) -> None:
    config.write_text(
        '{\n  "mcpServers": {\n    "ok": {"command": "a"},\n\n    "broken": ' + entry + "\n  }\n}\n"
    )
    with pytest.raises(McpConfigError) as caught:
        read_mcp_config(config)
    message = caught.value.message
    assert "'broken'" in message and field in message
    assert "line 5" in message and str(config) in message


def test_wrong_top_level_shapes(config: Path) -> None:
    config.write_text("[1, 2]")
    with pytest.raises(McpConfigError, match="JSON object"):
        read_mcp_config(config)
    config.write_text('{\n  "other": 1,\n  "mcpServers": []\n}')
    with pytest.raises(McpConfigError, match="line 3"):
        read_mcp_config(config)


@pytest.mark.parametrize("name", ["", " ", "a/b", "..", "a\\b", "tab\there", " padded"])
def test_path_like_or_empty_names_are_refused(config: Path, name: str) -> None:
    with pytest.raises(McpConfigError):
        add_server(config, name, {"command": "x"})
    assert not config.exists()


def test_add_and_remove_keep_the_rest_of_the_file(config: Path) -> None:
    config.write_text(GOOD)
    assert add_server(config, "echo", {"command": "python", "args": ["-m", "srv"], "cwd": "/tmp"}) is False
    document = json.loads(config.read_text())
    assert list(document["mcpServers"]) == ["time", "hf-mcp-server", "legacy", "echo"]
    assert document["mcpServers"]["time"]["disabled"] is False  # unknown keys kept
    assert document["mcpServers"]["echo"]["cwd"] == "/tmp"
    assert document["someEditorSetting"] == {"keep": [1, 2, 3]}
    assert config.read_text().startswith('{\n  "mcpServers": {\n    "time": {\n      "command"')  # indent 2

    assert add_server(config, "time", {"url": "https://example.com/mcp"}) is True
    assert read_mcp_config(config)["time"].kind == "http"
    assert list(json.loads(config.read_text())["mcpServers"])[0] == "time"  # replaced in place

    remove_server(config, "echo")
    remove_server(config, "time")
    document = json.loads(config.read_text())
    assert list(document["mcpServers"]) == ["hf-mcp-server", "legacy"]
    assert document["someEditorSetting"] == {"keep": [1, 2, 3]}


def test_add_creates_the_file(config: Path) -> None:
    add_server(config, "time", {"command": "mcp-server-time"})
    assert json.loads(config.read_text()) == {"mcpServers": {"time": {"command": "mcp-server-time"}}}


def test_remove_of_an_unknown_server_names_the_known_ones(config: Path) -> None:
    with pytest.raises(McpServerNotFoundError, match="none"):
        remove_server(config, "time")
    config.write_text(GOOD)
    with pytest.raises(McpServerNotFoundError) as caught:
        remove_server(config, "nope")
    assert "'nope'" in caught.value.message and "hf-mcp-server" in caught.value.message


def test_a_malformed_file_is_never_rewritten(config: Path) -> None:
    broken = '{"mcpServers": {"a": {"command": 3}}, "x": 1}'
    config.write_text(broken)
    with pytest.raises(McpConfigError):
        add_server(config, "b", {"command": "x"})
    with pytest.raises(McpConfigError):
        remove_server(config, "a")
    config.write_text("{not json")
    with pytest.raises(McpConfigError):
        add_server(config, "b", {"command": "x"})
    assert config.read_text() == "{not json"


def test_a_bad_entry_is_refused_before_writing(config: Path) -> None:
    config.write_text(GOOD)
    with pytest.raises(McpConfigError, match='needs "command"'):
        add_server(config, "bad", {"args": []})
    assert config.read_text() == GOOD
    assert parse_server_entry("t", {"command": "x"}).kind == "stdio"
