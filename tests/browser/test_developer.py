"""The Developer page in a real browser: listed in Developer mode only, the server's status and endpoints,
a live setting (the JIT TTL) changed from the page and seen in the API, a restart-only one flagged, the
API switch (off: another program's request refused, the app still working; on again: accepted), a log
line of a chat request appearing live, and the narrow window's backdrop closing the sidebar."""

from __future__ import annotations

import json

import httpx
from playwright.sync_api import expect

from tests.support.browser import ROOT, AppPage, serious_violations
from tests.support.server import CHAT_MODEL, Server

SETTINGS = "/api/v1/app/server/settings"


def messages() -> dict[str, str]:
    data: dict[str, str] = {}
    for path in (ROOT / "app/src/i18n/en.json", ROOT / "app/src/i18n/developer/en.json"):
        data.update(json.loads(path.read_text(encoding="utf-8")))
    return data


def test_modes_decide_whether_the_developer_page_is_listed(app: AppPage) -> None:
    en = messages()
    page = app.open("/")
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link", name=en["nav.chat"])).to_be_visible()
    expect(nav.get_by_role("link", name=en["developer.nav"])).to_have_count(0)  # User mode
    expect(nav.locator("a[href='#/models']")).to_have_count(0)  # My Models: Power User and up
    page.goto(app.base_url + "/#/developer")  # its address still opens it, saying which mode lists it
    expect(page.get_by_test_id("developer-mode-hint")).to_be_visible()
    page.get_by_test_id("sidebar-mode").select_option("power")
    expect(nav.get_by_role("link", name=en["developer.nav"])).to_have_count(0)
    expect(nav.locator("a[href='#/models']")).to_have_count(1)
    page.get_by_test_id("sidebar-mode").select_option("developer")
    page.goto(app.base_url + "/#/")
    nav.get_by_role("link", name=en["developer.nav"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(en["developer.title"])
    expect(page.get_by_test_id("developer-mode-hint")).to_have_count(0)
    app.reload()  # the mode is kept
    expect(page.get_by_role("navigation").get_by_role("link", name=en["developer.nav"])).to_be_visible()
    assert app.errors == []


def test_status_endpoints_and_a_live_setting(app: AppPage, app_server: Server) -> None:
    en = messages()
    page = app.open("/#/developer")
    expect(page.get_by_test_id("server-status")).to_contain_text(en["developer.status.running"])
    expect(page.get_by_test_id("server-address")).to_have_text(app_server.url)
    endpoints = page.get_by_test_id("endpoints")
    for path in ("/v1/chat/completions", "/v1/messages", "/v1/responses", "/api/v0/models", "/api/v1/chat"):
        expect(endpoints.get_by_text(f"{app_server.url}{path}", exact=True)).to_have_count(1)
    app.shot("developer-page")
    assert serious_violations(page) == []

    ttl = page.get_by_test_id("setting-ttl")
    ttl.fill("321")
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("settings-message")).to_have_text(en["developer.settings.savedLive"])
    with app_server.http() as http:
        assert http.get(SETTINGS).json()["settings"]["jit_ttl_seconds"] == 321  # applied live

    expect(page.get_by_test_id("exposed-warning")).to_have_count(0)
    page.get_by_test_id("setting-network").check()  # not saved: a warning while no token is required
    expect(page.get_by_test_id("exposed-warning")).to_be_visible()
    page.get_by_test_id("setting-auth").check()
    expect(page.get_by_test_id("exposed-warning")).to_have_count(0)
    page.get_by_test_id("setting-auth").uncheck()
    page.get_by_test_id("setting-network").uncheck()
    page.get_by_test_id("setting-cors").check()
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("restart-required")).to_contain_text("cors")
    expect(page.get_by_test_id("restart-required")).to_contain_text("lms server stop && lms server start")
    with app_server.http() as http:
        view = http.get(SETTINGS).json()
        assert view["settings"]["cors"] is False and view["restart_required"] == {"cors": True}
        http.patch(SETTINGS, json={"cors": False, "jit_ttl_seconds": 3600}).raise_for_status()  # as it was

    ttl.fill("-5")  # the form refuses it before asking the server (which would answer 400, see unit tests)
    page.get_by_test_id("settings-save").click()
    assert ttl.evaluate("el => el.validity.valid") is False
    with app_server.http() as http:
        assert http.get(SETTINGS).json()["settings"]["jit_ttl_seconds"] == 3600
    assert app.errors == []


def test_the_api_switch_refuses_other_programs_and_the_app_keeps_working(
    app: AppPage, app_server: Server
) -> None:
    en = messages()
    page = app.open("/#/developer")
    switch = page.get_by_role("switch", name=en["developer.api.label"])
    state = page.get_by_test_id("api-state")
    expect(switch).to_be_checked()
    expect(state).to_have_text(en["developer.api.on"])
    try:
        with httpx.Client(base_url=app_server.url) as http:
            assert http.get("/v1/models").status_code == 200
            switch.click()
            expect(state).to_contain_text(en["developer.api.off"])
            expect(page.get_by_test_id("server-state")).to_have_text(en["developer.status.runningApiOff"])
            refused = http.get("/v1/models")
            assert refused.status_code == 503
            assert "switched off" in refused.json()["error"]["message"]
            assert http.get(SETTINGS).json()["settings"]["api_enabled"] is False
        # the app itself keeps working: its own requests, and the page's after a reload (still off)
        assert page.evaluate("fetch('/api/v1/models').then((r) => r.status)") == 200
        app.reload()
        expect(switch).not_to_be_checked()
        expect(page.get_by_test_id("loaded-models")).to_be_visible()
        app.shot("developer-api-off")
        assert serious_violations(page) == []
        switch.click()
        expect(state).to_have_text(en["developer.api.on"])
        app.shot("developer-api-on")
        with httpx.Client(base_url=app_server.url) as http:
            assert http.get("/v1/models").status_code == 200
    finally:
        with app_server.http() as http:  # on again for the other tests, whatever happened
            http.patch(SETTINGS, json={"api_enabled": True}).raise_for_status()
    assert app.errors == []


def test_a_chat_request_shows_up_in_the_live_logs(app: AppPage, app_server: Server) -> None:
    page = app.open("/#/developer")
    logs = page.get_by_test_id("logs")
    expect(logs).to_be_visible()
    with app_server.http() as http:  # the streams are open once the server's backlog has arrived
        expect(logs.locator(".dev-line[data-source=server]").first).to_be_visible()
        page.wait_for_timeout(300)
        body = {
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": "hello from w5"}],
            "max_tokens": 4,
        }
        response = http.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
    model_lines = logs.locator(".dev-line[data-source=model]")
    expect(model_lines.filter(has_text="hello from w5").first).to_be_visible()
    expect(
        logs.locator(".dev-line[data-source=server]").filter(has_text="/v1/chat/completions").first
    ).to_be_visible()
    page.get_by_test_id("logs-clear").click()
    expect(logs.locator(".dev-line")).to_have_count(0)
    assert app.errors == []


def test_narrow_window_backdrop_closes_the_sidebar(app: AppPage) -> None:
    app.page.set_viewport_size({"width": 375, "height": 740})
    en = messages()
    page = app.open("/#/developer")
    toggle = page.get_by_role("button", name=en["header.toggleSidebar"])
    toggle.click()
    backdrop = page.get_by_test_id("sidebar-backdrop")
    expect(backdrop).to_be_visible()
    app.shot("developer-375px-sidebar")
    page.mouse.click(360, 400)  # beside the sidebar: on the backdrop
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(backdrop).to_have_count(0)
    toggle.click()
    page.keyboard.press("Escape")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    app.shot("developer-375px")
    assert serious_violations(page) == []
    assert app.errors == []


def test_markdown_images_request_nothing(app: AppPage, app_server: Server) -> None:
    """A model's `![x](/api/...)` (or raw <img>) in an answer makes the browser fetch nothing."""
    answer = "See ![probe](/api/v1/models?probe=md) and <img src='/v1/models?probe=html'> here."
    chat = {
        "title": "Images",
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": answer}],
    }
    with app_server.http() as http:
        created = http.post("/api/v1/app/conversations", json=chat)
        assert created.status_code == 200, created.text
        cid = created.json()["id"]
    requested: list[str] = []
    app.page.on("request", lambda request: requested.append(request.url))
    page = app.open("/#/chat")
    page.get_by_test_id("chat-item").filter(has_text="Images").click()
    answer = page.locator("[data-testid=message][data-role=assistant] [data-testid=message-content]")
    expect(answer).to_contain_text("[probe]")  # the image's alt text in its place
    expect(answer).to_contain_text("here.")
    assert page.locator("#main img").count() == 0
    page.wait_for_timeout(300)
    assert [url for url in requested if "probe=" in url] == []
    with httpx.Client(base_url=app_server.url) as http:
        http.delete(f"/api/v1/app/conversations/{cid}")


def test_keyboard_alone_reaches_the_developer_controls(app: AppPage) -> None:
    page = app.open("/#/developer")
    expect(page.get_by_test_id("settings-save")).to_be_visible()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached: set[str] = set()
    for _ in range(80):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement?.dataset?.testid ?? ''"))
    wanted = {
        "sidebar-mode",
        "api-switch",
        "setting-port",
        "setting-ttl",
        "settings-save",
        "logs-pause",
        "logs-clear",
        "logs",
    }
    assert wanted <= reached, f"not reached by Tab: {wanted - reached}"
