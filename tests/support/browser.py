"""The browser-test harness's helpers (tests/browser): the system chromium that Playwright drives (its own
browser download is not reachable here), the built app's location, a page that records its console, and
axe-core's accessibility check (axe-playwright-python bundles axe.min.js: no network)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import ConsoleMessage, Error, Page, Request

import openlms

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# the built app the server serves: the package's copy, or OPENLMS_APP_DIR's (which the server reads too)
APP_INDEX = (
    Path(os.environ.get("OPENLMS_APP_DIR") or Path(openlms.__file__).parent / "webapp" / "static")
    / "index.html"
)

CHROMIUM_HINT = (
    "the browser tests drive the system chromium: install it (Debian/Ubuntu: apt-get install chromium; "
    "./scripts/test.sh does it when run as root), or set OPENLMS_CHROMIUM to a Chromium/Chrome binary, "
    "or deselect them with -m 'not browser'"
)
APP_HINT = (
    f"the web app is not built ({APP_INDEX} is missing): run ./scripts/build-app.sh (or ./scripts/setup.sh, "
    "which builds it)"
)


def chromium_path() -> str | None:
    """OPENLMS_CHROMIUM, else `chromium` / `chromium-browser` on PATH."""
    configured = os.environ.get("OPENLMS_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class AppPage:
    """A page of the app with what it wrote to its console and the errors it threw."""

    page: Page
    base_url: str
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", self._on_error)
        self.page.on("requestfailed", self._on_request_failed)

    def _on_console(self, message: ConsoleMessage) -> None:
        where = message.location.get("url", "")
        self.console.append(f"[{message.type}] {message.text} ({where})")
        if message.type == "error":
            self.errors.append(f"console error: {message.text} ({where})")

    def _on_request_failed(self, request: Request) -> None:
        # a stream the app aborts itself (the stop button) fails with net::ERR_ABORTED: not an error
        self.console.append(f"[requestfailed] {request.method} {request.url}: {request.failure}")

    def _on_error(self, error: Error) -> None:
        self.console.append(f"[pageerror] {error.message}\n{error.stack or ''}")
        self.errors.append(f"uncaught: {error.message}")

    def open(self, path: str = "/") -> Page:
        """The app at `path` ("/" or a hash route like "/#/settings"), once the shell has rendered."""
        self.page.goto(self.base_url + path)
        return self._started()

    def reload(self) -> Page:
        self.page.reload()
        return self._started()

    def _started(self) -> Page:
        self.page.locator("#main, body > h1").first.wait_for()  # the shell, or the server's "not built" page
        if self.page.locator("#main").count() == 0:
            title = self.page.locator("h1").inner_text()
            raise AssertionError(f"the app did not start at {self.page.url}: {title!r}")
        return self.page

    def shot(self, name: str) -> Path:
        """A screenshot under test-artifacts/browser/ (kept for a person to look at)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{safe_name(name)}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def save_artifacts(self, name: str, folder: Path = ARTIFACTS) -> None:
        """The page's screenshot and console log, for a failed test."""
        folder.mkdir(parents=True, exist_ok=True)
        stem = safe_name(name)
        (folder / f"{stem}.console.log").write_text("\n".join(self.console) + "\n")
        try:
            self.page.screenshot(path=folder / f"{stem}.png", full_page=True)
        except Error as exc:  # a crashed or closed page: the log is still worth keeping
            (folder / f"{stem}.screenshot-error.txt").write_text(str(exc))


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150]


def serious_violations(page: Page) -> list[str]:
    """axe-core's violations of serious or critical impact on the page as it is now, one line each."""
    results = Axe().run(page)
    found: list[str] = []
    for violation in results.response["violations"]:
        if violation.get("impact") not in ("serious", "critical"):
            continue
        targets = [", ".join(node.get("target", [])) for node in violation["nodes"][:5]]
        found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return found
