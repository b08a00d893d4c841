"""Run the server in the foreground: bind, record server.json, persist settings, serve, clean up."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import socket
import sys
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler

from openlms.core.fsutil import atomic_write_text
from openlms.core.settings import Settings, load_settings, persist_settings

log = logging.getLogger("openlms.server")

WS_MAX_BYTES = 96 * 1024 * 1024  # SDK image uploads arrive base64-encoded in one frame


# The on/off flags (`--x` / `--no-x`; unset: the last used value): flag, settings field, help.
_TOGGLES = (
    ("--cors", "cors", "allow any web origin"),
    ("--jit", "jit", "JIT-load models on request"),
    ("--auto-evict", "auto_evict", "one JIT model at a time"),
    (
        "--restore-models",
        "restore_loaded_models",
        "load again, on start, the models loaded when the server last stopped",
    ),
    (
        "--allow-mcp-json",
        "mcp_allow_json_servers",
        "let requests call the servers of mcp.json (they may run programs on this machine)",
    ),
    ("--allow-remote-mcp", "mcp_allow_remote_servers", "let a request name a remote MCP server by URL"),
    ("--require-auth", "require_auth", "require an API token"),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m openlms.server", description="Run the openlms server.")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 serves the network)")
    p.add_argument("--port", type=int, help="HTTP port (default: the last used one, else 1234)")
    p.add_argument("--sdk-port", type=int, help="second port for the lmstudio SDK (default 41343; 0: none)")
    for flag, dest, text in _TOGGLES:
        p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, dest=dest, help=text)
    p.add_argument(
        "--jit-ttl", type=int, dest="jit_ttl_seconds", help="idle TTL of JIT-loaded models, seconds"
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log level")
    p.add_argument(
        "--sdk-port-optional",
        action="store_true",
        dest="sdk_port_optional",
        help="serve without the SDK port when it is taken (a warning) instead of failing",
    )
    return p.parse_args(argv)


def bind_socket(host: str, port: int, *, flag: str = "--port") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SystemExit(
                f"Error: port {port} is already in use on {host}. "
                f"Stop what uses it, or start with {flag} <other>"
                + (" (0: none)." if flag == "--sdk-port" else ".")
            ) from None
        raise SystemExit(f"Error: cannot bind {host}:{port}: {exc.strerror}.") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def setup_logging(settings: Settings) -> None:
    """The server log, rotated by size; this process is its only writer (`lms` sends the server's own
    stdout and stderr to a separate file, `openlms-server.stdout.log`)."""
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(
        settings.server_log_file, maxBytes=settings.log_max_bytes, backupCount=settings.log_backups
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if sys.stderr.isatty():
        root.addHandler(logging.StreamHandler())
    root.setLevel(settings.log_level.upper())


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    optional_sdk_port = args.sdk_port_optional
    overrides = {k: v for k, v in vars(args).items() if v is not None and k != "sdk_port_optional"}
    try:
        settings = load_settings(**overrides)
    except ValueError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    sockets, skipped = bind_sockets(settings, optional_sdk_port=optional_sdk_port)
    setup_logging(settings)
    if skipped is not None:
        log.warning("%s Serving without the SDK port.", skipped.removeprefix("Error: "))
    persist_settings(settings)  # the configured SDK port is kept even when it was skipped this time
    write_server_file(settings, sdk_port=settings.sdk_port if len(sockets) > 1 else None)
    try:
        serve(settings, sockets)
    finally:
        _remove_server_file(settings)
    return 0


def bind_sockets(settings: Settings, *, optional_sdk_port: bool) -> tuple[list[socket.socket], str | None]:
    """The HTTP socket and the SDK one (if any). A taken SDK port fails the start, unless
    `optional_sdk_port` (an automatic restart): then it is skipped and the reason returned."""
    sock = bind_socket(settings.host, settings.port)
    if not settings.sdk_port or settings.sdk_port == settings.port:
        return [sock], None
    try:
        return [sock, bind_socket(settings.host, settings.sdk_port, flag="--sdk-port")], None
    except SystemExit as exc:
        if optional_sdk_port:
            return [sock], str(exc.code)
        sock.close()
        raise


def write_server_file(settings: Settings, *, sdk_port: int | None) -> None:
    """`server.json`: how `lms` finds this server (and `lms daemon status` its pid and version)."""
    from openlms import __version__

    info = {
        "pid": os.getpid(),
        "host": settings.host,
        "port": settings.port,
        "sdk_port": sdk_port,
        "version": __version__,
        "started_at": datetime.now(UTC).isoformat(),
    }
    atomic_write_text(settings.server_file, json.dumps(info) + "\n")


def serve(settings: Settings, sockets: list[socket.socket]) -> None:
    import uvicorn

    # The scheduler thread needs the GIL back the moment llama_decode returns; a short switch interval
    # bounds how long event-loop work (JSON, SSE) can hold it up.
    sys.setswitchinterval(0.0005)

    from openlms.server.app import create_app

    app = create_app(settings)
    from openlms.server.guard.http_protocol import MAX_HEADER_BYTES, guarded_http_protocol

    config = uvicorn.Config(
        app,
        log_config=None,
        log_level=settings.log_level,
        access_log=True,
        timeout_graceful_shutdown=5,
        ws_max_size=WS_MAX_BYTES,
        lifespan="on",
        # Limits (issue 10): idle keep-alive connections, header size and a header deadline (slow loris).
        timeout_keep_alive=max(1, round(settings.idle_timeout_s)),
        http=guarded_http_protocol(),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    server = uvicorn.Server(config)
    log.info("openlms server listening on http://%s:%d", settings.host, settings.port)
    if len(sockets) > 1:
        log.info("the lmstudio SDK finds it on port %d too", settings.sdk_port)
    server.run(sockets=sockets)


def _remove_server_file(settings: Settings) -> None:
    try:
        data = json.loads(settings.server_file.read_text())
        if data.get("pid") == os.getpid():
            settings.server_file.unlink()
    except (OSError, ValueError):
        pass
