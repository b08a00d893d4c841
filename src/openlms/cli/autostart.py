"""Start on login: a systemd user unit (Linux) or a launchd agent (macOS) that runs the server.

The files are built by pure functions (`systemd_unit`, `launchd_plist`) from a `ServiceSpec`, so both can
be generated and checked on any OS; `install` / `uninstall` write or remove the one for this platform and
ask `systemctl --user` or `launchctl` to enable or disable it when they are there to ask.

The service runs `python -m openlms.server --sdk-port-optional` in the foreground with the same Python
the CLI uses and the `OPENLMS_*` environment in effect (the home above all), so it serves with the last
used settings (without the SDK port, and a warning in its log, if another program holds it). It is
restarted after a crash (not after `lms daemon down` or `lms server stop`, which exit cleanly).
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from openlms.core.fsutil import atomic_write_bytes, atomic_write_text

SYSTEMD_UNIT_NAME = "openlms.service"
LAUNCHD_LABEL = "ai.openlms.server"
_SYSTEMCTL_TIMEOUT_S = 15.0
_KEPT_ENV_PREFIX = "OPENLMS_"
_SKIPPED_ENV = frozenset({"OPENLMS_DEBUG"})  # a CLI switch, not a server setting


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """What the service runs: the command line, its environment, and where its stdout goes (launchd)."""

    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    stdout_log: Path | None = None


def service_environment(home: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`OPENLMS_HOME` (always, absolute) and the other `OPENLMS_*` variables set now."""
    env = os.environ if environ is None else environ
    kept = {k: v for k, v in env.items() if k.startswith(_KEPT_ENV_PREFIX) and k not in _SKIPPED_ENV}
    kept["OPENLMS_HOME"] = str(home.expanduser().absolute())
    return dict(sorted(kept.items()))


# -- systemd -----------------------------------------------------------------------------------------


def systemd_unit_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/systemd/user/openlms.service` (`~/.config` without XDG_CONFIG_HOME)."""
    env = os.environ if environ is None else environ
    config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config).expanduser() / "systemd" / "user" / SYSTEMD_UNIT_NAME


def systemd_quote(value: str, *, command: bool = True) -> str:
    """One word of a unit file's command line (`command`) or an `Environment=` assignment: specifiers
    (`%`) and, on a command line, variables (`$`) escaped; quoted if need be."""
    escaped = value.replace("%", "%%")
    if command:
        escaped = escaped.replace("$", "$$")
    if escaped and not any(c.isspace() or c in "\"'\\;" for c in escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit(spec: ServiceSpec) -> str:
    exec_start = " ".join(systemd_quote(arg) for arg in spec.command)
    environment = [
        f"Environment={systemd_quote(f'{k}={v}', command=False)}" for k, v in spec.environment.items()
    ]
    return "\n".join(
        [
            "[Unit]",
            "Description=openlms server (LM Studio compatible local LLM server)",
            "After=network.target",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={exec_start}",
            *environment,
            "Restart=on-failure",
            "RestartSec=3",
            "RestartPreventExitStatus=2",  # invalid settings: restarting cannot help
            "TimeoutStopSec=30",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


# -- launchd -----------------------------------------------------------------------------------------


def launchd_plist_path(home: Path | None = None) -> Path:
    return (home or Path.home()) / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def launchd_plist(spec: ServiceSpec) -> bytes:
    agent: dict[str, object] = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": list(spec.command),
        "EnvironmentVariables": dict(spec.environment),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restarted after a crash, not after a clean stop
        "ThrottleInterval": 10,
    }
    if spec.stdout_log is not None:
        agent["StandardOutPath"] = agent["StandardErrorPath"] = str(spec.stdout_log)
    return plistlib.dumps(agent, sort_keys=False)


# -- install / uninstall -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What install/uninstall did: the file, and lines for the user."""

    path: Path
    lines: tuple[str, ...]


def platform_kind() -> str:
    return "launchd" if sys.platform == "darwin" else "systemd"


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str] | None:
    """Run a service manager command; None when it cannot run at all."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=_SYSTEMCTL_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _first_line(result: subprocess.CompletedProcess[str] | None) -> str:
    if result is None:
        return "not found"
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[0] if text else f"exit code {result.returncode}"


def systemd_user_available() -> tuple[bool, str]:
    """Whether `systemctl --user` reaches a user manager (not in most containers), and why not."""
    result = _run(["systemctl", "--user", "show-environment"])
    if result is not None and result.returncode == 0:
        return True, ""
    return False, _first_line(result)


def install_systemd(spec: ServiceSpec, path: Path) -> Outcome:
    atomic_write_text(path, systemd_unit(spec))
    enable = f"systemctl --user daemon-reload && systemctl --user enable {SYSTEMD_UNIT_NAME}"
    available, why = systemd_user_available()
    if not available:
        return Outcome(
            path,
            (
                f"systemctl --user is not available here ({why}), so it is not enabled.",
                f"Enable it where a user session runs systemd: {enable}",
            ),
        )
    _run(["systemctl", "--user", "daemon-reload"])
    result = _run(["systemctl", "--user", "enable", SYSTEMD_UNIT_NAME])
    if result is None or result.returncode != 0:
        return Outcome(path, (f"Could not enable it ({_first_line(result)}). Try: {enable}",))
    return Outcome(
        path,
        (
            "Enabled: the server starts when you log in (and restarts if it crashes).",
            f"Start it now: systemctl --user start {SYSTEMD_UNIT_NAME} (stop `lms daemon down` first).",
            "To start it at boot without logging in: loginctl enable-linger $USER",
        ),
    )


def uninstall_systemd(path: Path) -> Outcome | None:
    if not path.exists():
        return None
    lines: list[str] = []
    if systemd_user_available()[0]:
        result = _run(["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT_NAME])
        if result is not None and result.returncode == 0:
            lines.append("Stopped and disabled it.")
    path.unlink(missing_ok=True)
    if lines:
        _run(["systemctl", "--user", "daemon-reload"])
    return Outcome(path, tuple(lines))


def install_launchd(spec: ServiceSpec, path: Path, *, load_now: bool) -> Outcome:
    atomic_write_bytes(path, launchd_plist(spec))
    command = f"launchctl load -w {path}"
    if not load_now:
        return Outcome(
            path, (f"It starts at your next login; to start it now, stop the server and run: {command}",)
        )
    result = _run(["launchctl", "load", "-w", str(path)])
    if result is None or result.returncode != 0:
        return Outcome(path, (f"Could not load it ({_first_line(result)}). Try: {command}",))
    return Outcome(path, ("Loaded: the server starts when you log in (and restarts if it crashes).",))


def uninstall_launchd(path: Path) -> Outcome | None:
    if not path.exists():
        return None
    result = _run(["launchctl", "unload", "-w", str(path)])
    path.unlink(missing_ok=True)
    return Outcome(path, ("Unloaded it.",) if result is not None and result.returncode == 0 else ())
