"""Where the built app lives and the headers it is served with (pure; no routes)."""

from __future__ import annotations

from pathlib import Path

import openlms
from openlms.core.settings import Settings

BUILD_COMMAND = "scripts/build-app.sh"

# Vite emits no inline script (index.html loads /assets/*.js): scripts only from this origin. Inline
# *styles* stay allowed: Svelte sets style attributes on elements (e.g. `style:` directives, transitions).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
INDEX_HEADERS = {**PAGE_HEADERS, "Cache-Control": "no-cache"}
# `GET /` says whether the app is built (what `lms app --json` reports as `built`).
APP_STATE_HEADER = "X-Openlms-App"
# Vite names every asset after its content hash: a changed file gets a new name.
ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


def app_dir(settings: Settings) -> Path:
    """The built app's folder: the `app_dir` setting, else `openlms/webapp/static` in the package."""
    if settings.app_dir is not None:
        return settings.app_dir.expanduser()
    return Path(openlms.__file__).parent / "webapp" / "static"


def asset_file(root: Path, name: str) -> Path | None:
    """The file `assets/<name>` under `root`, or None if it is missing or would leave that folder."""
    assets = (root / "assets").resolve()
    if not name or "\\" in name or any(part in ("", ".", "..") for part in name.split("/")):
        return None
    candidate = (assets / name).resolve()
    if not candidate.is_relative_to(assets) or not candidate.is_file():
        return None
    return candidate


def not_built_page(root: Path) -> str:
    """What `/` answers when the app is not built: how to build it."""
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>openlms: the app is not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>The openlms app is not built</h1>
<p>The server is running, and its APIs (<code>/v1/*</code>, <code>/api/v0/*</code>, <code>/api/v1/*</code>)
answer, but the web app's files are missing from <code>{_escape(str(root))}</code>.</p>
<p>Build it from the openlms repository, then reload this page:</p>
<pre><code>{BUILD_COMMAND}</code></pre>
<p>It needs Node.js 18 or newer (the script installs Debian's <code>nodejs</code> and <code>npm</code>
when run as root). Wheels of openlms carry the built app.</p>
</body>
</html>
"""


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
