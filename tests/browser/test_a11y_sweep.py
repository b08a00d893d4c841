"""Every page the sidebar lists (Developer mode lists them all) checked by axe for serious or critical
violations, in light and dark, and usable at 375 px (no sideways scrolling, the heading uncovered)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page

from tests.support.browser import AppPage, serious_violations

DEVELOPER_MODE = "localStorage.setItem('openlms.mode', 'developer')"


def pages(app: AppPage) -> list[str]:
    """The hash routes of every page listed in the sidebar."""
    page = app.open("/")
    links = page.locator("#sidebar a[href^='#/']")
    links.first.wait_for()
    found: list[str] = [str(link.get_attribute("href")) for link in links.all()]
    assert "#/developer" in found and "#/chat" in found and "#/settings" in found
    return found


def visit(app: AppPage, route: str) -> Page:
    page = app.open("/" + route)
    page.locator("#main > *").first.wait_for()
    page.wait_for_timeout(600)  # the page's first data has arrived and rendered
    return page


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_has_no_serious_axe_violation(app: AppPage, scheme: str) -> None:
    app.page.add_init_script(DEVELOPER_MODE)
    app.page.emulate_media(color_scheme=scheme)  # the theme is Auto: it follows the system
    found: dict[str, list[str]] = {}
    for route in pages(app):
        violations = serious_violations(visit(app, route))
        if violations:
            found[route] = violations
    assert found == {}
    assert app.errors == []


def test_every_page_fits_a_narrow_window(app: AppPage) -> None:
    app.page.add_init_script(DEVELOPER_MODE)
    routes = pages(app)
    app.page.set_viewport_size({"width": 375, "height": 740})
    too_wide: dict[str, int] = {}
    for route in routes:
        page = visit(app, route)
        width: int = page.evaluate("document.documentElement.scrollWidth")
        if width > 375:
            too_wide[route] = width
        assert page.locator("#sidebar.open").count() == 0, f"{route}: the sidebar covers the page"
    assert too_wide == {}
    assert app.errors == []
