"""The app on a server that requires API tokens (`--require-auth`): the page opens without one, the app
asks for a token when the API answers 401, says so when the token is wrong, and works with a good one
(sent as `Authorization: Bearer` on every call, the live logs' stream, the load dialog's streamed load and
a chat's Continue included)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Request, Route, expect

from tests.support.browser import APP_INDEX, ROOT, AppPage, serious_violations
from tests.support.server import CHAT_MODEL, Server, default_models_dir, free_port, start_server


def messages() -> dict[str, str]:
    data: dict[str, str] = {}
    for path in (ROOT / "app/src/i18n/en.json", ROOT / "app/src/i18n/developer/en.json"):
        data.update(json.loads(path.read_text(encoding="utf-8")))
    return data


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = {"app_dir": str(APP_INDEX.parent)}
    srv = start_server(
        tmp_path_factory.mktemp("auth"),
        default_models_dir(),
        free_port(),
        "--require-auth",
        settings=settings,
    )
    yield srv
    srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def token(auth_server: Server) -> str:
    """One API token for the module's tests (a name can be created only once)."""
    created = auth_server.lms_json("token", "create", "--name", "browser-test")
    assert isinstance(created, dict)
    value: str = created["token"]
    return value


@pytest.fixture
def auth_app(browser: Browser, auth_server: Server) -> Iterator[AppPage]:
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    page = AppPage(context.new_page(), auth_server.url)
    page.attach()
    try:
        yield page
    finally:
        context.close()


def test_the_page_opens_but_the_api_needs_a_token(auth_server: Server) -> None:
    with httpx.Client(base_url=auth_server.url) as http:
        assert http.get("/").status_code == 200
        for path in (
            "/v1/models",
            "/api/v1/models",
            "/api/v1/app/server/settings",
            "/api/v1/app/conversations",
        ):
            assert http.get(path).status_code == 401, path


def test_the_app_asks_for_a_token_and_says_when_it_is_wrong(auth_app: AppPage, token: str) -> None:
    en = messages()
    page = auth_app.open("/#/developer")
    prompt = page.get_by_test_id("auth-prompt")
    expect(prompt).to_be_visible()
    expect(prompt.get_by_role("heading")).to_have_text(en["developer.auth.title"])
    expect(page.get_by_test_id("auth-wrong")).to_have_count(0)
    auth_app.shot("auth-prompt")
    assert serious_violations(page) == []

    page.get_by_test_id("auth-token").fill("sk-lm-wrong:token")
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("auth-wrong")).to_have_text(en["developer.auth.wrong"])

    page.get_by_test_id("auth-token").fill(token)
    page.get_by_test_id("auth-submit").click()
    expect(page.get_by_test_id("server-status")).to_contain_text(en["developer.status.running"])
    expect(page.get_by_test_id("auth-prompt")).to_have_count(0)
    # the live logs' stream carries the token too: the server's lines arrive
    expect(page.get_by_test_id("logs").locator(".dev-line[data-source=server]").first).to_be_visible()
    expect(page.get_by_test_id("settings-save")).to_be_visible()
    auth_app.page.goto(auth_app.base_url + "/#/chat")  # another page of the app works with it
    expect(page.get_by_test_id("message-input")).to_be_visible()
    expect(page.get_by_test_id("auth-prompt")).to_have_count(0)


def test_the_load_dialog_and_continue_send_the_token(auth_app: AppPage, auth_server: Server) -> None:
    """The Models page's streamed load and a chat's Continue carry the token as every other call does
    (they called `fetch` directly before, and were answered 401 with tokens required)."""
    created_token = auth_server.lms_json("token", "create", "--name", "browser-load-continue")
    assert isinstance(created_token, dict)
    token = str(created_token["token"])
    sent: list[tuple[str, str, bool]] = []

    def record(request: Request) -> None:
        path = urlsplit(request.url).path
        if path.startswith(("/api/", "/v1/")):
            sent.append((request.method, path, request.headers.get("authorization") == f"Bearer {token}"))

    def short(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        route.continue_(post_data=json.dumps(body | {"max_tokens": 4}))

    page = auth_app.open("/")
    page.evaluate("t => sessionStorage.setItem('openlms.apiToken', t)", token)
    page.evaluate("localStorage.setItem('openlms.mode', 'power')")
    page.on("request", record)
    page.route("**/api/v0/completions", short)
    bearer = {"Authorization": f"Bearer {token}"}
    try:
        page = auth_app.open("/#/models")
        page = auth_app.reload()  # a fresh start with the token (the hash change alone keeps the page)
        expect(page.get_by_test_id("auth-prompt")).to_have_count(0)
        row = page.locator(f"[data-testid=model-row][data-key='{CHAT_MODEL}']")
        row.get_by_test_id("load-button").click()
        dialog = page.get_by_test_id("load-dialog")
        dialog.get_by_test_id("load-confirm").click()
        expect(dialog).to_be_hidden(timeout=60_000)
        expect(page.locator(f"[data-testid=loaded-instance][data-id='{CHAT_MODEL}']")).to_be_visible()

        story = [
            {"role": "user", "content": "Tell me a story."},
            {"role": "assistant", "content": "Once upon a time"},
        ]
        with httpx.Client(base_url=auth_server.url, headers=bearer) as http:
            created = http.post("/api/v1/app/conversations", json={"title": "Story", "messages": story})
            assert created.status_code == 200, created.text
        page = auth_app.open("/#/chat")
        page.get_by_test_id("chat-item").filter(has_text="Story").click()
        answer = page.locator("[data-testid=message][data-role=assistant]")
        answer.get_by_test_id("continue-message").click()
        expect(answer).not_to_have_attribute("aria-busy", "true", timeout=60_000)
        expect(answer.get_by_test_id("message-error")).to_have_count(0)
        expect(page.get_by_test_id("auth-prompt")).to_have_count(0)
    finally:
        with httpx.Client(base_url=auth_server.url, headers=bearer) as http:
            for model in http.get("/api/v1/models").json()["models"]:
                for instance in model["loaded_instances"]:
                    http.post("/api/v1/models/unload", json={"instance_id": instance["id"]})
    assert ("POST", "/api/v1/models/load", True) in sent
    assert ("POST", "/api/v0/completions", True) in sent
    assert [request for request in sent if not request[2]] == []
