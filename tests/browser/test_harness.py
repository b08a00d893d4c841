"""The browser harness itself, without a server: the accessibility check finds what it should (so an empty
list from it means something), works offline, and the chromium it drives is the system's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.support.browser import AppPage, chromium_path, safe_name, serious_violations

BAD_PAGE = """<!doctype html><html><head><title>bad</title></head><body>
<img src="data:,">
<button></button>
<p style="color:#777;background:#888">low contrast text</p>
</body></html>"""

GOOD_PAGE = """<!doctype html><html lang="en"><head><title>good</title></head><body>
<main><h1>Fine</h1><button type="button">Press</button><p>Readable text.</p></main>
</body></html>"""


def test_axe_reports_serious_violations_offline(browser: Browser) -> None:
    context = browser.new_context(offline=True)  # axe.min.js is injected from the package, not fetched
    try:
        page = context.new_page()
        page.set_content(BAD_PAGE)
        found = " ".join(serious_violations(page))
        for rule in ("image-alt", "button-name", "color-contrast"):
            assert rule in found
        page.set_content(GOOD_PAGE)
        assert serious_violations(page) == []
    finally:
        context.close()


def test_console_errors_and_failure_artifacts(browser: Browser, tmp_path: Path) -> None:
    context = browser.new_context()
    try:
        app = AppPage(context.new_page(), "http://127.0.0.1:9")
        app.attach()
        app.page.set_content(
            "<html><body><script>console.error('boom'); undefinedCall();</script></body></html>"
        )
        assert any("boom" in e for e in app.errors)
        assert any("undefinedCall" in e for e in app.errors)
        app.save_artifacts("tests/browser/x.py::test_x", tmp_path)
        assert (tmp_path / "tests_browser_x.py_test_x.png").read_bytes().startswith(b"\x89PNG")
        assert "boom" in (tmp_path / "tests_browser_x.py_test_x.console.log").read_text()
    finally:
        context.close()


def test_chromium_is_the_system_one(monkeypatch: pytest.MonkeyPatch, browser: Browser) -> None:
    path = chromium_path()
    assert path is not None
    reported = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout
    assert browser.version in reported  # the browser driven is that binary (same full version)
    monkeypatch.setenv("OPENLMS_CHROMIUM", "/nonexistent/chromium")
    assert chromium_path() is None
    assert safe_name("tests/browser/test_x.py::test_y[a b]") == "tests_browser_test_x.py_test_y_a_b"
