"""`<home>/mcp.json`: the user's MCP servers, in Cursor's notation (LM Studio's file).

```json
{"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"], "env": {}},
                "hf": {"url": "https://huggingface.co/mcp", "headers": {"Authorization": "Bearer ..."}}}}
```

The file stays the user's: reading tolerates keys it does not know, and `add_server` / `remove_server`
change one server and keep everything else (other servers' keys, unknown top-level keys, key order),
written atomically with indent 2. A file that cannot be read as written is an `McpConfigError` naming the
file, the line and the field; nothing here rewrites a malformed file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from openlms.core.errors import McpConfigError, McpServerNotFoundError
from openlms.core.fsutil import atomic_write_text
from openlms.core.mcp_names import check_server_name

ConfigKind = Literal["stdio", "http", "sse"]  # the same values as services.mcp.types.ServerKind
SERVERS_KEY = "mcpServers"
_ErrorFactory = Callable[[str], McpConfigError]


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    """One server of mcp.json: a program to start (`command`, `args`, `env`) or a remote server (`url`,
    `headers`); exactly one of `command` and `url` is set."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> ConfigKind:
        """stdio for a program; sse when the URL's path ends in `/sse` (the legacy transport); else http
        (streamable HTTP)."""
        if self.url is None:
            return "stdio"
        return "sse" if urlsplit(self.url).path.rstrip("/").endswith("/sse") else "http"


def mcp_config_path(home: Path) -> Path:
    """Where LM Studio keeps the file: `<home>/mcp.json` (home: `~/.lmstudio` by default)."""
    return home / "mcp.json"


def read_mcp_config(path: Path) -> dict[str, McpServerConfig]:
    """The servers of the file at `path` in file order; a missing file has none."""
    text = _read_text(path)
    if text is None:
        return {}
    servers = _servers_object(path, text, _parse(path, text))
    return {name: _server(path, text, name, entry) for name, entry in servers.items()}


def check_mcp_text(path: Path, text: str) -> dict[str, McpServerConfig]:
    """The servers `text` gives as the file at `path` (`McpConfigError` naming the line and field)."""
    if not text.strip():
        return {}
    servers = _servers_object(path, text, _parse(path, text))
    return {name: _server(path, text, name, entry) for name, entry in servers.items()}


def write_mcp_text(path: Path, text: str) -> dict[str, McpServerConfig]:
    """Replace the whole file with `text` (the user's own edit), written atomically once it reads as
    written; `McpConfigError` (the file untouched) otherwise."""
    servers = check_mcp_text(path, text)
    atomic_write_text(path, text)
    return servers


def parse_server_entry(name: str, entry: object) -> McpServerConfig:
    """One entry as a request or a deeplink gives it (no file): the same checks as reading mcp.json."""
    check_server_name(name)
    return _entry(name, entry, lambda message: McpConfigError(message, param="config"))


def add_server(path: Path, name: str, entry: Mapping[str, Any]) -> bool:
    """Write (or replace) one server, keeping the rest of the file; True when it replaced one."""
    parse_server_entry(name, entry)
    text = _read_text(path)
    document: dict[str, Any] = {SERVERS_KEY: {}} if text is None else _parse(path, text)
    if text is not None:
        read_mcp_config(path)  # refuse to touch a file that does not read as written
    servers = document.setdefault(SERVERS_KEY, {})
    replaced = name in servers
    servers[name] = dict(entry)
    _write(path, document)
    return replaced


def remove_server(path: Path, name: str) -> None:
    """Remove one server, keeping the rest of the file; `McpServerNotFoundError` when it is not there."""
    text = _read_text(path)
    known = read_mcp_config(path)
    if text is None or name not in known:
        raise McpServerNotFoundError(_not_found_message(path, name, known))
    document = _parse(path, text)
    del document[SERVERS_KEY][name]
    _write(path, document)


def _not_found_message(path: Path, name: str, known: Mapping[str, McpServerConfig]) -> str:
    names = ", ".join(known) or "none"
    return f"No MCP server named {name!r} in {path} (servers: {names}). See them with `lms mcp ls`."


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise McpConfigError(f"{path} is not UTF-8 text ({exc.reason}): fix or remove the file.") from exc
    except OSError as exc:
        raise McpConfigError(f"Cannot read {path}: {exc.strerror or exc}.") from exc


def _parse(path: Path, text: str) -> dict[str, Any]:
    if not text.strip():
        return {SERVERS_KEY: {}}  # an empty file is an empty configuration
    try:
        document = json.loads(text)
    except RecursionError as exc:
        raise McpConfigError(f"{path} is nested too deeply to read: fix the file or remove it.") from exc
    except json.JSONDecodeError as exc:
        raise McpConfigError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            'Fix the file (Cursor\'s notation: {"mcpServers": {...}}) or remove it.'
        ) from exc
    if not isinstance(document, dict):
        raise McpConfigError(
            f'{path}: line 1: the file must be a JSON object like {{"mcpServers": {{...}}}}, '
            f"not a {_json_type(document)}. Fix the file or remove it."
        )
    return document


def _servers_object(path: Path, text: str, document: Mapping[str, Any]) -> Mapping[str, Any]:
    servers = document.get(SERVERS_KEY, {})
    if not isinstance(servers, dict):
        line = _key_line(text, SERVERS_KEY)
        raise McpConfigError(
            f'{path}: line {line}: "{SERVERS_KEY}" must be an object of servers by name, '
            f"not a {_json_type(servers)}. Fix the file or remove it."
        )
    return servers


def _server(path: Path, text: str, name: str, entry: object) -> McpServerConfig:
    line = _key_line(text, name, after=f'"{SERVERS_KEY}"')

    def error(message: str) -> McpConfigError:
        return McpConfigError(f"{path}: line {line}: {message} Fix the file or remove the server.")

    try:
        check_server_name(name)
    except McpConfigError as exc:
        raise error(exc.message) from None
    return _entry(name, entry, error)


def _entry(name: str, entry: object, error: _ErrorFactory) -> McpServerConfig:
    """Check one entry's shape; `error(message)` builds the exception (with or without the file's line).
    A key written with `null` is as wrong as any other value of the wrong type."""
    where = f"server {name!r}"
    if not isinstance(entry, dict):
        raise error(f'{where} must be an object with "command" or "url", not a {_json_type(entry)}.')
    if "command" in entry and "url" in entry:
        raise error(
            f'{where} has both "command" and "url": keep "command" for a program it starts, '
            'or "url" for a remote server.'
        )
    args, env = _str_list(where, entry, error), _str_map(where, "env", entry, error)
    headers = _str_map(where, "headers", entry, error)  # each known key is checked, whatever the kind
    if "url" in entry:
        return McpServerConfig(name=name, url=_url(where, entry["url"], error), headers=headers)
    if "command" not in entry:
        raise error(f'{where} needs "command" (a program to start) or "url" (a remote server).')
    command = entry["command"]
    if not isinstance(command, str) or not command.strip():
        raise error(f'{where}: "command" must be a non-empty string (the program to start).')
    return McpServerConfig(name=name, command=command, args=args, env=env)


def _url(where: str, url: object, error: _ErrorFactory) -> str:
    message = f'{where}: "url" must be an http:// or https:// URL, not {url!r}.'
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise error(message)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError:
        raise error(message) from None
    if not parts.hostname:
        raise error(message)
    return url


def _str_list(where: str, entry: Mapping[str, Any], error: _ErrorFactory) -> tuple[str, ...]:
    if "args" not in entry:
        return ()
    value = entry["args"]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise error(f'{where}: "args" must be a list of strings, like ["-y", "some-package"].')
    return tuple(value)


def _str_map(where: str, key: str, entry: Mapping[str, Any], error: _ErrorFactory) -> dict[str, str]:
    if key not in entry:
        return {}
    value = entry[key]
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise error(f'{where}: "{key}" must be an object of strings, like {{"NAME": "value"}}.')
    return dict(value)


def _key_line(text: str, key: str, *, after: str = "") -> int | str:
    """The line where `"key":` is first written (after `after`), or '?' when it cannot be found."""
    start = text.find(after) if after else 0
    pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:")
    found = pattern.search(text, max(start, 0))
    return text.count("\n", 0, found.start()) + 1 if found else "?"


def _json_type(value: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _write(path: Path, document: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
