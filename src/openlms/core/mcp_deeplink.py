"""LM Studio's "Add to LM Studio" MCP links: `lmstudio://add_mcp?name=<name>&config=<base64 JSON>`.

`config` is the server's mcp.json entry (`{"command": ...}` or `{"url": ..., "headers": ...}`) as JSON, in
base64. The docs' button links to `https://lmstudio.ai/install-mcp?name=...&config=...`, which this accepts
too. Reading is lenient (standard or URL-safe base64, with or without padding, URL-encoded or not);
`make_deeplink` writes what LM Studio's generator writes (compact JSON, standard base64, URL-encoded).
Pure: the CLI and the server both use it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from openlms.core.errors import McpConfigError

_WEB_HOSTS = {"lmstudio.ai", "www.lmstudio.ai"}
_EXAMPLE = "lmstudio://add_mcp?name=<name>&config=<base64 JSON>"


def parse_deeplink(url: str) -> tuple[str, dict[str, Any]]:
    """The server name and its mcp.json entry; `McpConfigError` saying what is wrong otherwise."""
    parts = urlsplit(url.strip())
    if not _is_add_mcp(parts.scheme.lower(), parts.netloc.lower(), parts.path):
        raise McpConfigError(
            f"Not an MCP install link: {_short(url)}. Expected {_EXAMPLE}.", param="deeplink"
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    name, config = _one(query, "name"), _one(query, "config")
    return name, unwrap_entry(name, _decode_config(config))


def make_deeplink(name: str, entry: dict[str, Any]) -> str:
    """The `lmstudio://add_mcp` link that installs `entry` as `name`."""
    payload = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    config = base64.b64encode(payload).decode("ascii")
    return f"lmstudio://add_mcp?name={quote(name, safe='')}&config={quote(config, safe='')}"


def _is_add_mcp(scheme: str, host: str, path: str) -> bool:
    if scheme == "lmstudio":
        return (host or path.strip("/")) == "add_mcp" and path.strip("/") in {"", "add_mcp"}
    return scheme in {"https", "http"} and host in _WEB_HOSTS and path.rstrip("/") == "/install-mcp"


def _one(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key)
    if not values or not values[0].strip():
        raise McpConfigError(
            f"The MCP install link has no '{key}' parameter. Expected {_EXAMPLE}.", param=key
        )
    if len(values) > 1:
        raise McpConfigError(f"The MCP install link has '{key}' more than once: keep one.", param=key)
    return values[0]


def _decode_config(config: str) -> object:
    # parse_qs turns an unencoded '+' of standard base64 into a space: put it back
    text = "".join(config.replace(" ", "+").split()).replace("-", "+").replace("_", "/").rstrip("=")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        return json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise McpConfigError(
            f"The MCP install link's 'config' is not base64-encoded JSON ({exc}). "
            "Copy the whole link again, or add the server with `lms mcp add <name> --config '<JSON>'`.",
            param="config",
        ) from exc


def unwrap_entry(
    name: str, config: object, *, what: str = "The MCP install link's 'config'"
) -> dict[str, Any]:
    """The entry itself; also accepts `{name: entry}` and `{"mcpServers": {name: entry}}` (what the docs'
    link generator is given, and what a user may paste from an mcp.json)."""
    if isinstance(config, dict) and set(config) == {"mcpServers"} and isinstance(config["mcpServers"], dict):
        config = config["mcpServers"]
    if isinstance(config, dict) and set(config) == {name} and isinstance(config[name], dict):
        config = config[name]
    if not isinstance(config, dict):
        raise McpConfigError(
            f"{what} must be a JSON object (the server's mcp.json entry).",
            param="config",
        )
    return config


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "..."
