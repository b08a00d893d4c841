"""The chat list's conversations in a real browser on the real server (no model is needed: the chats are
written through the conversations API, as a script would): nested folders made with the button and the
Ctrl+Shift+N shortcut, drag and drop of chats and folders (checked in the server's files under
`<home>/conversations/`), "Move to…" from the keyboard, folders that stay collapsed after a reload, the
open chat remembered, duplicate, rename, delete with Undo, search opening the chat at its message, and a
file the server could not read shown as a notice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.support.browser import ROOT, AppPage, serious_violations
from tests.support.server import Server

I18N = ROOT / "app" / "src" / "i18n"
CHAT_API = "**/api/v0/chat/completions"
EN: dict[str, str] = json.loads((I18N / "en.json").read_text("utf-8")) | json.loads(
    (I18N / "conversations" / "en.json").read_text("utf-8")
)


def tree(server: Server) -> Path:
    return server.home / "conversations"


def files(server: Server) -> set[str]:
    """The chat files and folders under the server's conversations folder, relative, trash left out."""
    root = tree(server)
    return {
        p.relative_to(root).as_posix() for p in root.rglob("*") if ".trash" not in p.relative_to(root).parts
    }


def make_chat(server: Server, title: str, texts: list[str], folder: str = "") -> str:
    roles = ["user", "assistant"]
    messages = [{"role": roles[i % 2], "content": text} for i, text in enumerate(texts)]
    with server.http() as http:
        if folder:
            http.post("/api/v1/app/folders", json={"path": folder})
        body = {"title": title, "messages": messages, "folder": folder}
        return str(http.post("/api/v1/app/conversations", json=body).raise_for_status().json()["id"])


def open_list(app: AppPage) -> Page:
    page = app.open("/#/chat")
    expect(page.get_by_test_id("chat-list")).to_be_visible()
    expect(page.get_by_test_id("message-input")).to_be_focused()  # the chats are read
    return page


def folder(page: Page, path: str) -> Locator:
    return page.locator(f"[data-testid=folder][data-path='{path}']")


def row(page: Page, title: str) -> Locator:
    return page.get_by_test_id("chat-row").filter(
        has=page.get_by_test_id("chat-item").get_by_text(title, exact=True)
    )


def name_new_folder(page: Page, name: str) -> None:
    box = page.get_by_test_id("folder-rename-input")
    expect(box).to_be_focused()
    box.fill(name)
    box.press("Enter")
    expect(page.get_by_test_id("folder-rename-input")).to_have_count(0)


@pytest.fixture(autouse=True)
def _empty_tree(app_server: Server) -> Iterator[None]:
    """Each test starts with no chats or folders (the module shares one server)."""
    yield
    with httpx.Client(base_url=app_server.url, timeout=30) as http:
        listing = http.get("/api/v1/app/conversations").json()
        for path in [f for f in listing.get("folders", []) if "/" not in f]:
            http.delete("/api/v1/app/folders", params={"path": path})
        for chat in http.get("/api/v1/app/conversations").json().get("conversations", []):
            http.delete(f"/api/v1/app/conversations/{chat['id']}")


def test_folders_drag_and_drop_move_to_and_reload(app: AppPage, app_server: Server) -> None:
    first = make_chat(app_server, "Alpha", ["Hello alpha", "Hi"])
    second = make_chat(app_server, "Beta", ["Hello beta", "Hi"])
    page = open_list(app)

    page.get_by_test_id("new-folder").click()  # the button
    name_new_folder(page, "Work")
    expect(folder(page, "Work")).to_be_visible()
    page.get_by_test_id("message-input").press("Control+Shift+N")  # the shortcut
    name_new_folder(page, "Drafts")
    expect(folder(page, "Drafts")).to_be_visible()
    assert {"Work", "Drafts"} <= files(app_server)

    # a chat into a folder, by drag and drop
    row(page, "Alpha").get_by_test_id("chat-item").drag_to(
        folder(page, "Work").get_by_test_id("folder-toggle")
    )
    expect(folder(page, "Work").get_by_test_id("chat-item")).to_have_text(["Alpha"])
    assert f"Work/{first}.conversation.json" in files(app_server)
    # a folder into a folder
    folder(page, "Drafts").get_by_test_id("folder-toggle").drag_to(
        folder(page, "Work").get_by_test_id("folder-toggle")
    )
    expect(folder(page, "Work/Drafts")).to_be_visible()
    assert "Work/Drafts" in files(app_server) and "Drafts" not in files(app_server)
    # a chat into the sub-folder, then back to the top
    row(page, "Beta").get_by_test_id("chat-item").drag_to(
        folder(page, "Work/Drafts").get_by_test_id("folder-toggle")
    )
    expect(folder(page, "Work/Drafts").get_by_test_id("chat-item")).to_have_text(["Beta"])
    assert f"Work/Drafts/{second}.conversation.json" in files(app_server)
    row(page, "Alpha").get_by_test_id("chat-item").drag_to(page.get_by_test_id("drop-top"))
    expect(folder(page, "Work").get_by_test_id("chat-item")).to_have_text(["Beta"])
    assert f"{first}.conversation.json" in files(app_server)
    app.shot("conversations-folders")

    # the keyboard's way: the ••• menu's "Move to…"
    alpha = row(page, "Alpha")
    alpha.get_by_test_id("item-menu").click()
    expect(alpha.get_by_test_id("item-menu")).to_have_attribute("aria-expanded", "true")
    assert serious_violations(page) == []  # the list with folders and an open menu
    alpha.get_by_test_id("move-to").select_option("Work/Drafts")
    expect(folder(page, "Work/Drafts").get_by_test_id("chat-item")).to_have_text(["Beta", "Alpha"])
    assert f"Work/Drafts/{first}.conversation.json" in files(app_server)

    # a folder's "Move to…" never offers itself, its own folders or where it is already (Work: nowhere)
    work_menu = folder(page, "Work").get_by_test_id("item-menu").first
    work_menu.click()
    options = folder(page, "Work").get_by_test_id("move-to").first.locator("option")
    expect(options).to_have_text(["—"])
    work_menu.click()
    drafts = folder(page, "Work/Drafts")
    drafts.get_by_test_id("item-menu").first.click()
    drafts.get_by_test_id("move-to").first.select_option(label=EN["conversations.top"])
    expect(folder(page, "Drafts").get_by_test_id("chat-item")).to_have_text(["Beta", "Alpha"])
    assert f"Drafts/{first}.conversation.json" in files(app_server)
    assert "Work/Drafts" not in files(app_server)
    folder(page, "Drafts").get_by_test_id("folder-toggle").drag_to(
        folder(page, "Work").get_by_test_id("folder-toggle")
    )
    expect(folder(page, "Work/Drafts")).to_be_visible()

    # open Alpha, close Work: a reload keeps both
    folder(page, "Work/Drafts").get_by_test_id("chat-item").get_by_text("Alpha").click()
    expect(page.locator("[data-testid=message][data-role=user] [data-testid=message-content]")).to_have_text(
        ["Hello alpha"]
    )
    folder(page, "Work").get_by_test_id("folder-toggle").first.click()
    expect(page.get_by_test_id("chat-item")).to_have_count(0)
    app.reload()
    expect(folder(page, "Work")).to_be_visible()
    expect(folder(page, "Work").get_by_test_id("folder-toggle").first).to_have_attribute(
        "aria-expanded", "false"
    )
    expect(page.locator("[data-testid=message][data-role=user] [data-testid=message-content]")).to_have_text(
        ["Hello alpha"]
    )
    assert app.errors == []


def test_duplicate_rename_delete_undo_and_search(app: AppPage, app_server: Server) -> None:
    source = make_chat(
        app_server, "Recipes", ["How do I bake bread?", "Knead the dough.", "And pizza?", "Use a hot oven."]
    )
    make_chat(app_server, "Other", ["Nothing here"], folder="Kitchen")
    page = open_list(app)

    menu = row(page, "Recipes").get_by_test_id("item-menu")
    menu.click()
    row(page, "Recipes").get_by_test_id("duplicate-chat").focus()
    page.keyboard.press("Escape")  # closes the menu, the focus back on its button
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    row(page, "Recipes").get_by_test_id("duplicate-chat").click()
    copy = row(page, "Recipes (copy)")
    expect(copy.get_by_test_id("chat-item")).to_have_attribute("aria-current", "true")  # the copy is opened
    expect(page.locator("[data-testid=message]")).to_have_count(4)
    with app_server.http() as http:
        titles = sorted(c["title"] for c in http.get("/api/v1/app/conversations").json()["conversations"])
    assert titles == ["Other", "Recipes", "Recipes (copy)"]

    # rename a folder from its menu
    kitchen = folder(page, "Kitchen")
    kitchen.get_by_test_id("item-menu").first.click()
    kitchen.get_by_test_id("rename-folder").click()
    name_new_folder(page, "Cooking")
    expect(folder(page, "Cooking").get_by_test_id("chat-item")).to_have_text(["Other"])
    assert "Cooking" in files(app_server) and "Kitchen" not in files(app_server)

    # delete the folder (with its chat), then Undo
    folder(page, "Cooking").get_by_test_id("item-menu").first.click()
    folder(page, "Cooking").get_by_test_id("delete-folder").click()
    expect(page.get_by_test_id("undo-delete")).to_contain_text("Cooking")
    expect(folder(page, "Cooking")).to_have_count(0)
    assert "Cooking" not in files(app_server)
    page.get_by_test_id("undo").click()
    expect(folder(page, "Cooking").get_by_test_id("chat-item")).to_have_text(["Other"])
    assert "Cooking" in files(app_server)

    # a new chat in the folder: saved there with its first answer (a canned one: no model needed)
    cooking = folder(page, "Cooking")
    cooking.get_by_test_id("item-menu").first.click()
    cooking.get_by_test_id("new-chat-in").click()
    expect(cooking.get_by_test_id("chat-item")).to_have_count(2)
    answer = 'data: {"choices": [{"index": 0, "delta": {"content": "Soup."}, "finish_reason": "stop"}]}\n\n'
    page.route(CHAT_API, lambda route: route.fulfill(content_type="text/event-stream", body=answer))
    page.get_by_test_id("message-input").fill("What is for dinner?")
    page.get_by_test_id("message-input").press("Enter")
    expect(page.locator("[data-testid=message][data-role=assistant]")).to_contain_text("Soup.")
    expect(page.get_by_test_id("send")).to_be_visible()  # saved
    page.unroute(CHAT_API)
    expect(cooking.get_by_test_id("chat-item")).to_have_count(2)
    saved = [f for f in files(app_server) if f.startswith("Cooking/") and f.endswith(".conversation.json")]
    assert len(saved) == 2

    # search: a message's text opens its chat at that message
    page.get_by_test_id("search-chats").fill("HOT OVEN")
    results = page.get_by_test_id("search-result")
    expect(results).to_have_count(2)  # the chat and its copy
    expect(results.first).to_contain_text("Use a hot oven.")
    result = results.filter(has=page.locator(".result-title").get_by_text("Recipes", exact=True))
    app.shot("conversations-search")
    assert serious_violations(page) == []
    result.click()
    page.get_by_test_id("search-chats").fill("")
    expect(row(page, "Recipes").get_by_test_id("chat-item")).to_have_attribute("aria-current", "true")
    found = page.locator("[data-testid=message][data-found=true]")
    expect(found).to_have_count(1)
    expect(found.get_by_test_id("message-content")).to_have_text("Use a hot oven.")
    page.get_by_test_id("search-chats").fill("no such words anywhere")
    expect(page.get_by_test_id("no-results")).to_be_visible()
    assert source
    assert app.errors == []


def test_a_file_the_server_skipped_is_shown(app: AppPage, app_server: Server) -> None:
    make_chat(app_server, "Fine", ["Hello"])
    broken = tree(app_server) / "1700000000000-abcdef.conversation.json"
    broken.write_text("{ not json", encoding="utf-8")
    try:
        page = open_list(app)
        notice = page.get_by_test_id("skipped-notice")
        expect(notice).to_contain_text("1")
        notice.locator("summary").click()
        expect(notice).to_contain_text(broken.name)
        expect(row(page, "Fine")).to_have_count(1)
        assert broken.read_text(encoding="utf-8") == "{ not json"  # kept as it was
    finally:
        broken.unlink()


def test_shortcuts_shown_with_the_mac_keys(app: AppPage, app_server: Server) -> None:
    """On macOS the list shows ⌘N and ⇧⌘N, and ⌘⇧N makes a folder (elsewhere: Ctrl+N, Ctrl+Shift+N)."""
    page = open_list(app)
    expect(page.get_by_test_id("new-folder").locator("kbd")).to_have_text("Ctrl+Shift+N")
    page.context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'platform', { get: () => 'MacIntel' })"
    )
    app.reload()  # the script runs on the next load
    expect(page.get_by_test_id("message-input")).to_be_focused()
    expect(page.get_by_test_id("new-chat").locator("kbd")).to_have_text("⌘N")
    expect(page.get_by_test_id("new-folder").locator("kbd")).to_have_text("⇧⌘N")
    expect(page.get_by_test_id("new-folder")).to_have_attribute("aria-keyshortcuts", "Meta+Shift+N")
    page.get_by_test_id("message-input").press("Meta+Shift+N")
    name_new_folder(page, "Mac folder")
    expect(folder(page, "Mac folder")).to_be_visible()
    assert "Mac folder" in files(app_server)
    assert app.errors == []


def test_branch_from_a_message_of_yours_then_answer_it(app: AppPage, app_server: Server) -> None:
    """Power User: Branch from a user message opens a new chat ending with it (the original unchanged),
    which says where it came from; Answer lets the model answer it there (a canned answer: no model)."""
    source = make_chat(app_server, "Plans", ["Plan a trip.", "Go north.", "And in winter?", "Go south."])
    page = open_list(app)
    page.goto(app.base_url + "/#/settings")
    page.locator("[data-testid=mode-switch] input[value=power]").check()
    page.goto(app.base_url + "/#/chat")
    row(page, "Plans").get_by_test_id("chat-item").click()
    users = page.locator("[data-testid=message][data-role=user]")
    expect(users).to_have_count(2)
    users.nth(1).get_by_test_id("branch-message").click()
    note = page.get_by_test_id("branched-from")
    expect(note).to_contain_text("Plans")
    expect(note).to_contain_text("3")
    expect(page.locator("[data-testid=message]")).to_have_count(3)
    expect(page.locator("[data-testid=chat-item][aria-current=true]")).to_have_text("Plans (branch)")

    answer = 'data: {"choices": [{"index": 0, "delta": {"content": "Ski."}, "finish_reason": "stop"}]}\n\n'
    page.route(CHAT_API, lambda route: route.fulfill(content_type="text/event-stream", body=answer))
    users.nth(1).get_by_test_id("answer-message").click()
    expect(page.locator("[data-testid=message]").last).to_contain_text("Ski.")
    expect(page.get_by_test_id("send")).to_be_visible()  # saved
    page.unroute(CHAT_API)
    with app_server.http() as http:
        chats = {c["title"]: c["id"] for c in http.get("/api/v1/app/conversations").json()["conversations"]}
        branch = http.get(f"/api/v1/app/conversations/{chats['Plans (branch)']}").json()
        original = http.get(f"/api/v1/app/conversations/{source}").json()
    assert [m["content"] for m in branch["messages"]] == [
        "Plan a trip.",
        "Go north.",
        "And in winter?",
        "Ski.",
    ]
    assert branch["branchedFrom"] == {"conversation": source, "messageIndex": 2}
    assert [m["content"] for m in original["messages"]][-1] == "Go south."
    page.get_by_test_id("open-original").click()
    expect(page.locator("[data-testid=message]")).to_have_count(4)
    assert serious_violations(page) == []
    assert app.errors == []
