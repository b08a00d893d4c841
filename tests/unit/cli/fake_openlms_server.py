"""A stand-in for `python -m openlms.server`, for the `lms server start/stop` tests.

It takes the same flags, answers `/lmstudio-greeting` and `/api/v1/models` (no models), writes and
removes `<OPENLMS_HOME>/openlms/server.json` like the real server, and exits with code 2 and an
`Error: port N is already in use` line when it cannot bind. With FAKE_SERVER_IGNORE_TERM=1 it ignores
SIGTERM (to test the SIGKILL fallback). An SDK port given by `--sdk-port` or `OPENLMS_SDK_PORT` is bound
for real (a taken one fails, or with `--sdk-port-optional` is left out of server.json); without one it
records the default 41343 without binding it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        bodies = {"/lmstudio-greeting": {"lmstudio": True}, "/api/v1/models": {"models": []}}
        body = bodies.get(self.path)
        data = json.dumps(body or {"error": {"message": "not found"}}).encode()
        self.send_response(200 if body else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def sdk_socket(host: str, port: int | None, *, optional: bool) -> tuple[int | None, object]:
    """The SDK port to record, and the listening socket to keep open (if bound)."""
    if port is None:
        return 41343, None
    if port == 0:
        return None, None
    try:
        return port, ThreadingHTTPServer((host, port), Handler)
    except OSError:
        if optional:
            return None, None
        print(f"Error: port {port} is already in use on {host}.", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=1234)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--sdk-port", type=int, default=os.environ.get("OPENLMS_SDK_PORT"))
    parser.add_argument("--sdk-port-optional", action="store_true")
    args, _ = parser.parse_known_args()
    host = args.host
    print(f"fake server argv: {' '.join(sys.argv[1:])}", flush=True)
    try:
        httpd = ThreadingHTTPServer((host, args.port), Handler)
    except OSError:
        print(f"Error: port {args.port} is already in use (another server runs there?).", file=sys.stderr)
        sys.exit(2)
    sdk_port, _held = sdk_socket(host, args.sdk_port, optional=args.sdk_port_optional)
    server_file = Path(os.environ["OPENLMS_HOME"]) / "openlms" / "server.json"
    server_file.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": os.getpid(), "host": host, "port": args.port, "sdk_port": sdk_port, "version": "9.9.9"}
    server_file.write_text(json.dumps(record))

    def stop(signum: int, frame: FrameType | None) -> None:
        server_file.unlink(missing_ok=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, signal.SIG_IGN if os.environ.get("FAKE_SERVER_IGNORE_TERM") else stop)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
