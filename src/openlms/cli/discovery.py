"""Finding the server: `--host` values, the home, and the `server.json` a running server writes.

Kept free of pydantic and httpx so the common path (`lms ls` with a running server) stays fast: the home
and `server.json` location follow docs/http-api.md (`$OPENLMS_HOME` or `~/.lmstudio`, then
`openlms/server.json`); `openlms.core.settings` is imported only when the settings file is needed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PORT = 1234
HOME_ENV = "OPENLMS_HOME"  # the same variable as openlms.core.settings.HOME_ENV
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
_START_SLACK_S = 2.0  # /proc's boot time has one-second precision


def home_dir() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".lmstudio").expanduser()


def server_file(home: Path) -> Path:
    return home / "openlms" / "server.json"


def parse_host(value: str) -> str:
    """`host`, `host:port`, `[v6]:port` or `http(s)://host[:port]` -> a base URL; the port defaults to 1234.

    Raises ValueError with a one-line reason for anything else.
    """
    text = value.strip()
    if not text:
        raise ValueError("the host is empty")
    if "://" not in text:
        if text.count(":") > 1 and not text.startswith("["):
            text = f"[{text}]"  # a bare IPv6 address
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"unsupported scheme '{parts.scheme}' (use http or https)")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ValueError(f"invalid port in '{value}'") from None
    hostname = parts.hostname
    if not hostname or parts.query or parts.fragment or parts.username:
        raise ValueError(f"'{value}' is not a host, host:port or http://host:port")
    return f"{parts.scheme}://{url_host(hostname)}:{port}{parts.path.rstrip('/')}"


def url_host(host: str) -> str:
    """The host part of a URL for a server bound to `host` (a wildcard bind is reached via loopback)."""
    if host in _WILDCARD_HOSTS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def local_url(host: str, port: int) -> str:
    return f"http://{url_host(host)}:{port}"


def is_loopback_host(host: str) -> bool:
    """Whether `host` (a bind address or a URL's host, `[v6]` or bare) is localhost or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """The contents of `server.json`."""

    pid: int
    host: str
    port: int
    path: Path
    sdk_port: int | None = None  # the second port (the lmstudio SDK's default), if it listens on one
    version: str | None = None  # the openlms version that runs it
    started_at: float | None = None  # when the server wrote the record (epoch seconds)

    @property
    def url(self) -> str:
        return local_url(self.host, self.port)


def read_server_file(home: Path) -> ServerRecord | None:
    """The record, or None when there is none or it is unreadable (a half-written file counts as none)."""
    path = server_file(home)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid, port, host = data.get("pid"), data.get("port"), data.get("host")
    if not isinstance(pid, int) or not isinstance(port, int) or pid <= 0:
        return None
    sdk_port, version = data.get("sdk_port"), data.get("version")
    return ServerRecord(
        pid=pid,
        host=host if isinstance(host, str) else "127.0.0.1",
        port=port,
        path=path,
        sdk_port=sdk_port if isinstance(sdk_port, int) else None,
        version=version if isinstance(version, str) else None,
        started_at=_epoch(data.get("started_at")),
    )


def _epoch(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie child of ours is reaped and counts as gone).

    POSIX only: on Windows `os.kill(pid, 0)` would terminate the process, so the record is trusted.
    """
    if os.name == "nt":
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process that its parent (not us) has not reaped yet: dead, though its pid exists.
    Linux only (`/proc/<pid>/stat`, the state after the command name); elsewhere False."""
    fields = _proc_stat_fields(pid)
    if not fields:
        return False
    return fields[0] in (b"Z", b"X")


def _proc_stat_fields(pid: int) -> list[bytes] | None:
    """`/proc/<pid>/stat`'s fields after the command name (the state first); None without it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2 :].split()


def is_openlms_process(pid: int) -> bool:
    """Whether `pid` looks like an openlms server, so a recycled pid is never signalled.

    Reads `/proc/<pid>/cmdline` where there is one; elsewhere (macOS) trusts the record.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return b"openlms" in cmdline


def remove_server_file(record: ServerRecord) -> None:
    """Remove `server.json` if it still describes `record` (a new server may have replaced it)."""
    current = read_server_file(record.path.parent.parent)
    if current is not None and current.pid != record.pid:
        return
    with contextlib.suppress(FileNotFoundError):
        record.path.unlink()


def process_start_time(pid: int) -> float | None:
    """When `pid` started (epoch seconds), from /proc; None where there is no /proc."""
    fields = _proc_stat_fields(pid)
    if fields is None:
        return None
    try:
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        ticks = int(fields[19])  # field 22, counting the pid and the command name
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _pid_recycled(record: ServerRecord) -> bool:
    """Whether the record's pid now belongs to a process started after the server wrote the record
    (after a crash or a reboot, e.g. a container restarted with the home on a volume)."""
    if record.started_at is None:
        return False
    started = process_start_time(record.pid)
    return started is not None and started > record.started_at + _START_SLACK_S


def find_running_server(home: Path) -> ServerRecord | None:
    """The live server's record; a stale `server.json` (its pid is gone, or now another process's) is
    removed."""
    record = read_server_file(home)
    if record is None:
        return None
    if pid_alive(record.pid) and not _pid_recycled(record):
        return record
    remove_server_file(record)
    return None
