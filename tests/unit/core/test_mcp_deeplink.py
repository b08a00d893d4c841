"""LM Studio's MCP install links: the docs' example, both base64 alphabets, the web button, round trips."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from openlms.core.errors import McpConfigError
from openlms.core.mcp_deeplink import make_deeplink, parse_deeplink

DOCS_LINK = (
    "lmstudio://add_mcp?name=hf-mcp-server&config=eyJ1cmwiOiJodHRwczovL2h1Z2dpbmdmYWNlLmNvL21jcCIsImhlYWRl"
    "cnMiOnsiQXV0aG9yaXphdGlvbiI6IkJlYXJlciA8WU9VUl9IRl9UT0tFTj4ifX0%3D"
)
DOCS_ENTRY = {"url": "https://huggingface.co/mcp", "headers": {"Authorization": "Bearer <YOUR_HF_TOKEN>"}}


def test_the_docs_example_decodes_to_the_docs_json() -> None:
    assert parse_deeplink(DOCS_LINK) == ("hf-mcp-server", DOCS_ENTRY)


def test_make_deeplink_writes_the_docs_link() -> None:
    assert make_deeplink("hf-mcp-server", DOCS_ENTRY) == DOCS_LINK


def test_the_web_button_link_is_accepted() -> None:
    web = DOCS_LINK.replace("lmstudio://add_mcp", "https://lmstudio.ai/install-mcp")
    assert parse_deeplink(web) == ("hf-mcp-server", DOCS_ENTRY)


@pytest.mark.parametrize(
    "entry",
    [
        {"command": "uvx", "args": ["mcp-server-time", "--local-timezone=Europe/Paris"], "env": {"A": "ü?>"}},
        {"url": "http://127.0.0.1:8000/sse"},
        {"command": "npx", "args": ["-y", "@x/y~z"], "env": {}},
    ],
)
def test_round_trip(entry: dict[str, object]) -> None:
    assert parse_deeplink(make_deeplink("my server/é", entry)) == ("my server/é", entry)


def _raw(entry: dict[str, object]) -> bytes:
    return json.dumps(entry).encode()


@pytest.mark.parametrize(
    "encode",
    [
        lambda raw: base64.urlsafe_b64encode(raw).decode(),
        lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("="),
        lambda raw: base64.b64encode(raw).decode().rstrip("="),
        lambda raw: base64.b64encode(raw).decode(),  # '+' and '=' unencoded in the query
        lambda raw: quote(base64.b64encode(raw).decode(), safe=""),
    ],
)
def test_both_alphabets_with_or_without_padding(encode: object) -> None:
    entry = {"command": "x", "args": ["?>?>?>~~~", "\u00ff\u00fe"]}  # bytes that give '+', '/', '-', '_'
    config = encode(_raw(entry))  # type: ignore[operator]
    assert parse_deeplink(f"lmstudio://add_mcp?name=t&config={config}") == ("t", entry)


def test_a_wrapped_entry_is_unwrapped() -> None:
    wrapped = base64.b64encode(json.dumps({"hf": DOCS_ENTRY}).encode()).decode()
    assert parse_deeplink(f"lmstudio://add_mcp?name=hf&config={quote(wrapped)}") == ("hf", DOCS_ENTRY)
    servers = base64.b64encode(json.dumps({"mcpServers": {"hf": DOCS_ENTRY}}).encode()).decode()
    assert parse_deeplink(f"lmstudio://add_mcp?name=hf&config={quote(servers)}") == ("hf", DOCS_ENTRY)


@pytest.mark.parametrize(
    ("link", "says"),
    [
        ("https://example.com/install-mcp?name=a&config=e30", "Not an MCP install link"),
        ("lmstudio://add_plugin?name=a&config=e30", "Not an MCP install link"),
        ("lmstudio://add_mcp?config=e30", "'name'"),
        ("lmstudio://add_mcp?name=a", "'config'"),
        ("lmstudio://add_mcp?name=a&name=b&config=e30", "more than once"),
        ("lmstudio://add_mcp?name=a&config=!!!!", "base64"),
        ("lmstudio://add_mcp?name=a&config=bm90IGpzb24", "base64-encoded JSON"),
        ("lmstudio://add_mcp?name=a&config=WzFd", "JSON object"),
    ],
)
def test_bad_links_say_what_is_wrong(link: str, says: str) -> None:
    with pytest.raises(McpConfigError, match=says):
        parse_deeplink(link)
