"""A first-time user's run in a real browser, on the real server and model: open the chat, load the
default model from the picker, chat with a streamed answer, stop a long answer, regenerate it, and reload
the page with the conversation kept (the app's conversations API, one JSON file per chat); errors (a
refused request, the model unloaded mid-answer) shown in place.

The page's own requests go to the real server; the test only adds `max_tokens` (short answers, fast) and,
for the answer it stops, a `logit_bias` that bans SmolLM2's end tokens (it then writes until stopped),
so that nothing depends on what the model chooses to write or how long."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.support.browser import ROOT, AppPage, serious_violations
from tests.support.server import CHAT_MODEL, NEVER_ENDS, Server

CHAT_PATHS = ("**/api/v0/chat/completions", "**/v1/chat/completions")


@dataclass
class AnswerShaper:
    """Adds sampling limits to the page's chat requests on their way to the server."""

    extra: dict[str, object] = field(default_factory=lambda: {"max_tokens": 16})
    bodies: list[dict[str, object]] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        body.update(self.extra)
        self.bodies.append(body)
        route.continue_(post_data=json.dumps(body))


@pytest.fixture
def chat_page(app: AppPage) -> Iterator[tuple[AppPage, AnswerShaper]]:
    shaper = AnswerShaper()
    for path in CHAT_PATHS:
        app.page.route(path, shaper.handle)
    yield app, shaper


def messages_en() -> dict[str, str]:
    data: dict[str, str] = json.loads((ROOT / "app" / "src" / "i18n" / "en.json").read_text("utf-8"))
    return data


def answers(page: Page) -> Locator:
    return page.locator("[data-testid=message][data-role=assistant]")


def finished(message: Locator) -> None:
    """Wait for an answer to be complete: no longer busy, its stats shown."""
    expect(message).not_to_have_attribute("aria-busy", "true", timeout=60_000)
    expect(message.get_by_test_id("message-stats")).to_be_visible()


def open_chat(app: AppPage) -> Page:
    """The chat page once it is ready: the model list read and the chat opened (the box has the focus)."""
    page = app.open("/#/chat")
    expect(page.get_by_test_id("model-picker").locator(f"option[value='{CHAT_MODEL}']")).to_have_count(1)
    expect(page.get_by_test_id("message-input")).to_be_focused()
    return page


def send(page: Page, text: str) -> None:
    sent = page.locator("[data-testid=message][data-role=user]")
    before = sent.count()
    page.get_by_test_id("message-input").fill(text)
    page.get_by_test_id("message-input").press("Enter")
    expect(sent).to_have_count(before + 1)


def loaded_models(server: Server) -> list[str]:
    with server.http() as http:
        body = http.get("/api/v0/models").json()
    return [m["id"] for m in body["data"] if m.get("state") == "loaded"]


def wait_idle(server: Server, key: str, within: float = 30) -> None:
    """Wait until the instance `key` runs no prediction (`/api/v1/models`: status idle, no active one)."""
    deadline = time.monotonic() + within
    seen: list[dict[str, object]] = []
    with server.http() as http:
        while time.monotonic() < deadline:
            models = http.get("/api/v1/models").json()["models"]
            seen = [i for m in models if m["key"] == key for i in m["loaded_instances"]]
            if seen and all(i.get("status") == "idle" and i.get("active_requests") == 0 for i in seen):
                return
            time.sleep(0.2)
    raise AssertionError(f"{key} still busy {within}s after Stop: {seen}")


def test_first_run_load_chat_stop_regenerate_reload(
    chat_page: tuple[AppPage, AnswerShaper], app_server: Server
) -> None:
    app, shaper = chat_page
    page = open_chat(app)
    picker = page.get_by_test_id("model-picker")
    expect(picker).to_be_enabled()
    app.shot("first-run-chat-empty")
    assert serious_violations(page) == []

    # load the default model from the picker
    assert CHAT_MODEL not in loaded_models(app_server)
    picker.select_option(CHAT_MODEL)
    chosen = picker.locator(f"option[value='{CHAT_MODEL}']")
    expect(chosen).to_contain_text(messages_en()["chat.loaded"], timeout=60_000)  # marked once loaded
    expect(page.get_by_test_id("model-loading")).to_have_count(0)
    expect(picker).to_have_value(CHAT_MODEL)
    assert CHAT_MODEL in loaded_models(app_server)
    assert page.get_by_test_id("chat-notice").count() == 0

    # a short answer, streamed
    send(page, "Say hello.")
    expect(page.locator("[data-testid=message][data-role=user]")).to_have_count(1)
    first = answers(page).nth(0)
    finished(first)
    expect(first.get_by_test_id("message-content")).not_to_be_empty()
    expect(first.get_by_test_id("message-error")).to_have_count(0)
    assert shaper.bodies[-1]["stream"] is True and shaper.bodies[-1]["model"] == CHAT_MODEL

    # a long answer: its text shows while it streams, and Stop ends it
    shaper.extra = {"max_tokens": 4000, "logit_bias": NEVER_ENDS}
    send(page, "Tell me a long story.")
    second = answers(page).nth(1)
    expect(second).to_have_attribute("aria-busy", "true")
    expect(second.get_by_test_id("message-content")).not_to_be_empty(timeout=60_000)
    expect(second).to_have_attribute("aria-busy", "true")  # text shown before the answer ends
    expect(page.get_by_test_id("stop")).to_be_visible()
    app.shot("first-run-streaming")
    page.get_by_test_id("stop").click()
    expect(page.get_by_test_id("stop")).to_have_count(0)
    expect(second).not_to_have_attribute("aria-busy", "true")
    expect(second.get_by_test_id("message-content")).not_to_be_empty()  # the partial answer is kept
    expect(second.get_by_test_id("message-error")).to_have_count(0)
    expect(page.get_by_test_id("send")).to_be_visible()
    wait_idle(app_server, CHAT_MODEL)  # the server stopped generating too (4000 tokens would take a minute)

    # regenerate the stopped answer: it is replaced, not added
    shaper.extra = {"max_tokens": 16}
    requests_before = len(shaper.bodies)
    second.get_by_test_id("regenerate").click()
    expect(answers(page)).to_have_count(2)
    finished(answers(page).nth(1))
    assert len(shaper.bodies) == requests_before + 1
    regenerated = shaper.bodies[-1]["messages"]
    assert isinstance(regenerated, list) and regenerated[-1] == {
        "role": "user",
        "content": "Tell me a long story.",
    }
    expect(answers(page).nth(1).get_by_test_id("message-content")).not_to_be_empty()
    app.shot("first-run-answered")
    assert serious_violations(page) == []

    # the conversation is on the server, and a reload shows it again
    with app_server.http() as http:
        listing = http.get("/api/v1/app/conversations").json()
    assert len(listing["conversations"]) == 1
    app.reload()
    expect(page.get_by_test_id("chat-item")).to_have_count(1)
    page.get_by_test_id("chat-item").first.click()
    users = page.locator("[data-testid=message][data-role=user] [data-testid=message-content]")
    expect(users).to_have_text(["Say hello.", "Tell me a long story."])
    expect(answers(page)).to_have_count(2)
    app.shot("first-run-reloaded")
    page.emulate_media(color_scheme="dark")  # the theme is Auto: the chat follows the system into dark
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    app.shot("first-run-dark")
    assert serious_violations(page) == []  # contrast of messages, stats and buttons in dark too
    assert app.errors == []


def test_chat_api_errors_show_in_place(chat_page: tuple[AppPage, AnswerShaper]) -> None:
    """A request the server refuses shows its message in the answer's place, never a blank answer."""
    app, shaper = chat_page
    page = open_chat(app)
    shaper.extra = {"max_tokens": -5}
    send(page, "Hello?")
    error = answers(page).nth(0).get_by_test_id("message-error")
    expect(error).to_be_visible(timeout=60_000)
    expect(error).to_contain_text("max_tokens")
    app.shot("chat-error-in-place")
    # the 400 itself is logged by chromium as a failed resource load; nothing else may be
    assert [e for e in app.errors if "status of 400" not in e] == []


@pytest.fixture(autouse=True)
def _fresh_conversations(app_server: Server) -> Iterator[None]:
    """Each test starts with no saved chats (the module shares one server)."""
    yield
    with httpx.Client(base_url=app_server.url, timeout=30) as http:
        for chat in http.get("/api/v1/app/conversations").json().get("conversations", []):
            http.delete(f"/api/v1/app/conversations/{chat['id']}")


def test_model_unloaded_mid_answer_shows_an_error(
    chat_page: tuple[AppPage, AnswerShaper], app_server: Server
) -> None:
    """The issue's "an error shown when the model is unloaded mid-answer": the partial text stays and
    the server's reason shows under it."""
    app, shaper = chat_page
    page = open_chat(app)
    picker = page.get_by_test_id("model-picker")
    picker.select_option(CHAT_MODEL)
    chosen = picker.locator(f"option[value='{CHAT_MODEL}']")
    expect(chosen).to_contain_text(messages_en()["chat.loaded"], timeout=60_000)  # one instance, loaded
    shaper.extra = {"max_tokens": 4000, "logit_bias": NEVER_ENDS}
    send(page, "Tell me a long story.")
    answer = answers(page).nth(0)
    expect(answer.get_by_test_id("message-content")).not_to_be_empty(timeout=60_000)
    expect(answer).to_have_attribute("aria-busy", "true")
    with app_server.http() as http:
        instances = [m["id"] for m in http.get("/api/v0/models").json()["data"] if m.get("state") == "loaded"]
        assert CHAT_MODEL in instances
        http.post("/api/v1/models/unload", json={"instance_id": CHAT_MODEL}).raise_for_status()
    error = answer.get_by_test_id("message-error")
    expect(error).to_be_visible(timeout=30_000)
    expect(answer).not_to_have_attribute("aria-busy", "true")
    expect(answer.get_by_test_id("message-content")).not_to_be_empty()  # what came before is kept
    expect(error).to_contain_text("unload")  # the server's reason, in place of a blank or stuck answer
    app.shot("chat-model-unloaded-mid-answer")
    assert app.errors == []


def test_first_run_edit_insert_continue_branch_and_reload_keeps_everything(
    chat_page: tuple[AppPage, AnswerShaper], app_server: Server
) -> None:
    """The rest of a first run, as a Power User: edit a message (answered again), insert one, let the model
    continue an answer, branch the chat, put the branch in a new folder; then a reload keeps all of it:
    the chats, the folder, the messages, the open chat, the theme, the language and the mode."""
    app, shaper = chat_page
    page = open_chat(app)
    page.route("**/api/v0/completions", shaper.handle)  # Continue's request, capped like the chats
    page.goto(app.base_url + "/#/settings")
    page.locator("[data-testid=mode-switch] input[value=power]").check()
    page.locator("[data-testid=theme-switch] input[value=dark]").check()
    page.get_by_test_id("language-switch").select_option("es")
    page.goto(app.base_url + "/#/chat")
    picker = page.get_by_test_id("model-picker")
    picker.select_option(CHAT_MODEL)
    expect(page.get_by_test_id("model-loading")).to_have_count(0, timeout=60_000)
    expect(picker).to_have_value(CHAT_MODEL)

    shaper.extra = {"max_tokens": 8}
    send(page, "Say hello.")
    finished(answers(page).nth(0))
    user = page.locator("[data-testid=message][data-role=user]").first
    user.get_by_test_id("edit-message").click()
    user.get_by_test_id("edit-input").fill("Say hi.")
    user.get_by_test_id("save-edit").click()
    finished(answers(page).nth(0))
    assert shaper.bodies[-1]["messages"] == [{"role": "user", "content": "Say hi."}]
    contents = page.locator("[data-testid=message] [data-testid=message-content]")
    expect(contents).to_have_count(2)

    # insert a user message and an answer of our own after it; then the model continues that answer
    answers(page).nth(0).get_by_test_id("insert-message").click()
    page.get_by_test_id("insert-input").fill("Tell me a story.")
    page.get_by_test_id("save-insert").click()
    inserted = page.locator("[data-testid=message][data-role=user]").nth(1)
    expect(inserted.get_by_test_id("message-content")).to_have_text("Tell me a story.")
    inserted.get_by_test_id("insert-message").click()
    page.get_by_test_id("insert-role").select_option("assistant")
    page.get_by_test_id("insert-input").fill("Once upon a time")
    page.get_by_test_id("save-insert").click()
    expect(contents).to_have_count(4)
    shaper.extra = {"max_tokens": 8, "logit_bias": NEVER_ENDS}
    answers(page).nth(1).get_by_test_id("continue-message").click()
    finished(answers(page).nth(1))
    prompt = shaper.bodies[-1]["prompt"]
    assert isinstance(prompt, str) and prompt.endswith(
        "Tell me a story.<|im_end|>\n<|im_start|>assistant\nOnce upon a time"
    )
    continued = answers(page).nth(1).get_by_test_id("message-content").inner_text()
    assert continued.startswith("Once upon a time")
    expect(page.get_by_test_id("send")).to_be_visible()  # not busy: the chat is saved
    with app_server.http() as http:  # saved: the text so far plus the 8 tokens the model added to it
        (chat,) = http.get("/api/v1/app/conversations").json()["conversations"]
        saved = http.get(f"/api/v1/app/conversations/{chat['id']}").json()["messages"][3]
    assert saved["content"].startswith("Once upon a time") and saved["stats"]["completionTokens"] == 8
    expect(answers(page).nth(1).get_by_test_id("message-error")).to_have_count(0)

    # branch from the first answer: a new chat with the first two messages, opened, pointing back
    answers(page).nth(0).get_by_test_id("branch-message").click()
    expect(page.get_by_test_id("branched-from")).to_be_visible()
    expect(contents).to_have_count(2)
    current = page.locator("[data-testid=chat-item][aria-current=true]")
    expect(current).to_contain_text("(branch)")
    with app_server.http() as http:
        chats = http.get("/api/v1/app/conversations").json()["conversations"]
    assert sorted(c["messageCount"] for c in chats) == [2, 4]

    # a new folder (the shortcut), and the branch moved into it from its menu
    page.get_by_test_id("message-input").press("Control+Shift+N")
    box = page.get_by_test_id("folder-rename-input")
    box.fill("Historias")
    box.press("Enter")
    row = page.get_by_test_id("chat-row").filter(has=current)
    row.get_by_test_id("item-menu").click()
    row.get_by_test_id("move-to").select_option("Historias")
    folder = page.locator("[data-testid=folder][data-path='Historias']")
    expect(folder.get_by_test_id("chat-item")).to_contain_text("(branch)")
    app.shot("first-run-branched")

    app.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("html")).to_have_attribute("data-mode", "power")
    expect(folder.get_by_test_id("chat-item")).to_contain_text("(branch)")
    expect(page.get_by_test_id("chat-item")).to_have_count(2)
    expect(folder.locator("[data-testid=chat-item][aria-current=true]")).to_have_count(1)  # still open
    expect(page.get_by_test_id("branched-from")).to_be_visible()
    expect(contents).to_have_count(2)
    expect(page.locator("[data-testid=message][data-role=user] [data-testid=message-content]")).to_have_text(
        ["Say hi."]
    )
    page.get_by_test_id("open-original").click()
    expect(contents).to_have_count(4)
    expect(answers(page).nth(1).get_by_test_id("message-content")).to_have_text(continued)
    app.shot("first-run-reloaded-es-dark")
    assert serious_violations(page) == []
    assert app.errors == []
