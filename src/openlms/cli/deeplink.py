"""`lms app --deeplink URL` and `--register-deeplink`: LM Studio's "Add to LM Studio" links
(`lmstudio://add_mcp?name=...&config=...`) open the app at its install confirmation (`#/add-mcp?link=`).

On Linux the `lmstudio://` scheme is registered with an xdg desktop entry (`MimeType=
x-scheme-handler/lmstudio;`, `Exec=... app --deeplink %u`) under `$XDG_DATA_HOME/applications` (by default
`~/.local/share/applications`), made the scheme's default with `xdg-mime` when it is installed. macOS needs
an app bundle declaring `CFBundleURLTypes` and Windows a `HKCU\\Software\\Classes\\lmstudio` registry key:
neither is done yet (paste the link in the app's Program panel there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from openlms.cli.errors import CliError
from openlms.core.errors import McpConfigError
from openlms.core.mcp_deeplink import parse_deeplink

DESKTOP_FILE = "openlms-deeplink.desktop"
SCHEME_MIME = "x-scheme-handler/lmstudio"


def app_path_for(link: str) -> str:
    """The app's address (after the server's URL) that confirms installing `link`'s server."""
    try:
        parse_deeplink(link)
    except McpConfigError as exc:
        raise CliError(exc.message) from None
    return "/#/add-mcp?link=" + quote(link.strip(), safe="")


def desktop_entry(command: str) -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=openlms (MCP install links)\n"
        "Comment=Open lmstudio://add_mcp links in the openlms app\n"
        f"Exec={command} app --deeplink %u\n"
        "Terminal=false\n"
        "NoDisplay=true\n"
        f"MimeType={SCHEME_MIME};\n"
    )


def lms_command() -> str:
    """How the desktop entry runs `lms` (this environment's script, or the one on PATH, else this Python
    with the CLI module)."""
    beside = Path(sys.executable).with_name("lms")  # the script of this environment, even off PATH
    found = str(beside) if beside.is_file() else shutil.which("lms")
    if found:
        return _quoted(found)
    return f'{_quoted(sys.executable)} -c "import sys; from openlms.cli.main import main; sys.exit(main())"'


def register(data_home: Path | None = None) -> tuple[Path, bool]:
    """Write the desktop entry; answers its path and whether `xdg-mime` made it the scheme's default."""
    if sys.platform != "linux":
        raise CliError(
            "Registering lmstudio:// links is done on Linux only (macOS needs an app bundle, Windows a "
            "registry key: not done yet). Paste the link in the app's Program panel instead."
        )
    base = data_home or Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    path = base / "applications" / DESKTOP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(desktop_entry(lms_command()), encoding="utf-8")
    xdg_mime = shutil.which("xdg-mime")
    if xdg_mime is None:
        return path, False
    done = subprocess.run(  # noqa: S603 - a fixed program and arguments
        [xdg_mime, "default", DESKTOP_FILE, SCHEME_MIME], capture_output=True, check=False, timeout=30
    )
    return path, done.returncode == 0


def _quoted(path: str) -> str:
    """A desktop entry's Exec argument: quoted when it has spaces or quotes."""
    if not any(c in path for c in " \"'\\$`"):
        return path
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return f'"{escaped}"'
