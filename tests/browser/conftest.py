"""Browser-test fixtures: the real server (`lms server start`, a home of its own, the default models)
serving the built app at `/`, one headless system chromium per module driven by Playwright, and a fresh
page (its own context: storage, language, colour scheme) per test. A failed test leaves its screenshot
and the page's console log under test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.support.browser import APP_HINT, APP_INDEX, CHROMIUM_HINT, AppPage, chromium_path
from tests.support.server import CHAT_MODEL, Server, default_models_dir, free_port, start_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is a `browser` test and an `e2e` one (the real server and model)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, object]:
    report = yield
    setattr(item, f"report_{getattr(report, 'when', '')}", report)
    return report


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server per module, serving the built app."""
    if not APP_INDEX.is_file():
        pytest.fail(APP_HINT)
    models = default_models_dir()
    if not any("smollm2-135m" in p.name.lower() for p in models.rglob("*.gguf")):
        pytest.fail(f"{CHAT_MODEL} missing in {models}: run .venv/bin/openlms-setup-models first")
    # the build the tests check (OPENLMS_APP_DIR's or the package's): the server's env is cleared of OPENLMS_*
    app_dir = {"app_dir": str(APP_INDEX.parent)}
    srv = start_server(tmp_path_factory.mktemp("app"), models, free_port(), settings=app_dir)
    yield srv
    srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless system chromium, one per module."""
    path = chromium_path()
    if path is None:
        pytest.fail(CHROMIUM_HINT)
    browser = playwright.chromium.launch(executable_path=path, headless=True)
    yield browser
    browser.close()


@pytest.fixture
def app(request: pytest.FixtureRequest, browser: Browser, app_server: Server) -> Iterator[AppPage]:
    """A fresh page (new context: empty storage, English, light system scheme, 1280x800), its console
    recorded; screenshot + console log saved under test-artifacts/browser/ when the test fails."""
    context = browser.new_context(
        locale="en-US", color_scheme="light", viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(15_000)
    page = AppPage(context.new_page(), app_server.url)
    page.attach()
    try:
        yield page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            page.save_artifacts(request.node.nodeid)
        context.close()
