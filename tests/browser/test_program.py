"""The chat's Program panel (MCP) in a real browser on the real server and SmolLM2, with the FastMCP test
server (stdio, `tests/support/mcp/server_script.py`) in mcp.json: the panel lists it with its tools and a
server that cannot start with why; a malformed mcp.json edit is refused with its line marked; with the
server switched on for the chat, a tool call (forced through the request: `tool_choice` names `add`) asks
for consent: Deny sends "denied" back, Allow once runs it (the result shown, sent back with its call's id,
and the model answers), Always allows it without asking again; an "Add to LM Studio" link's confirmation
installs a server; axe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, Route, expect

from openlms.core.mcp_deeplink import make_deeplink
from tests.support.browser import ROOT, AppPage, serious_violations
from tests.support.mcp.helpers import stdio_config, write_mcp_json
from tests.support.server import CHAT_MODEL, Server

EN: dict[str, str] = json.loads((ROOT / "app" / "src" / "i18n" / "program" / "en.json").read_text("utf-8"))
CHAT_API = "**/api/v0/chat/completions"
ANSWER_TIMEOUT = 90_000  # the first answer includes loading the model on a busy CI machine
SERVER = "calc"


@pytest.fixture(scope="module", autouse=True)
def mcp_json(app_server: Server) -> Iterator[Path]:
    broken = {"command": str(app_server.home / "no-such-program")}
    yield write_mcp_json(app_server.home, {SERVER: stdio_config(), "broken": broken})


def open_program(app: AppPage) -> Page:
    """A new chat with SmolLM2 chosen (loaded) and the Program panel open, the test server listed."""
    page = app.open("/#/chat")
    picker = page.get_by_test_id("model-picker")
    expect(picker.locator(f"option[value='{CHAT_MODEL}']")).to_have_count(1)
    picker.select_option(CHAT_MODEL)
    expect(page.get_by_test_id("model-loading")).to_have_count(0, timeout=ANSWER_TIMEOUT)
    page.get_by_test_id("new-chat").click()
    page.get_by_test_id("program-toggle").click()
    expect(page.get_by_test_id("program-panel")).to_be_visible()
    expect(server_item(page).get_by_test_id("mcp-tool").filter(has_text="add")).to_have_count(1)
    return page


def server_item(page: Page, name: str = SERVER) -> Any:
    return page.locator(f"[data-testid=mcp-server][data-name='{name}']")


def force_add(bodies: list[dict[str, Any]]) -> Any:
    """The app's request with only `add` offered and called when the last message is the user's (a
    forced call), and no tools offered to answer a result (SmolLM2 would call again); each body kept."""

    def handle(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        bodies.append(body)
        sent = {key: value for key, value in body.items() if key != "tools"} | {"max_tokens": 16}
        if body["messages"][-1]["role"] == "user" and body.get("tools"):  # room for the call's arguments
            add = [t for t in body["tools"] if t["function"]["name"] == "add"]
            sent |= {"tools": add, "tool_choice": {"type": "function", "function": {"name": "add"}}}
            sent["max_tokens"] = 96
        route.continue_(post_data=json.dumps(sent))

    return handle


def send(page: Page, text: str) -> None:
    box = page.get_by_test_id("message-input")
    box.fill(text)
    box.press("Enter")


def tool_messages(page: Page) -> Any:
    return page.locator("[data-testid=message][data-role=tool]")


def finished(page: Page) -> None:
    answer = page.locator("[data-testid=message][data-role=assistant]").last
    expect(answer.get_by_test_id("message-stats")).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(page.get_by_test_id("send")).to_be_visible()


def test_the_panel_lists_the_server_and_a_bad_edit_shows_its_line(app: AppPage, app_server: Server) -> None:
    page = open_program(app)
    item = server_item(page)
    expect(item.get_by_test_id("mcp-status")).to_have_text(EN["program.status.running"])
    expect(item.get_by_test_id("mcp-server-switch")).not_to_be_checked()
    broken = server_item(page, "broken")
    expect(broken.get_by_test_id("mcp-status")).to_have_text(EN["program.status.failed"])
    expect(broken.get_by_test_id("mcp-error")).not_to_be_empty()  # why it failed (the OS says)
    assert serious_violations(page) == []
    before = (app_server.home / "mcp.json").read_text()
    broken = '{\n  "mcpServers": {\n    "calc": 42\n  }\n}\n'
    page.get_by_test_id("mcp-config").fill(broken)
    page.get_by_test_id("mcp-config-save").click()
    error = page.get_by_test_id("mcp-config-error")
    expect(error).to_contain_text(EN["program.config.atLine"].replace("{line}", "3"))
    expect(page.get_by_test_id("mcp-config-error-line")).to_have_text("3")
    expect(page.get_by_test_id("mcp-config")).to_have_attribute("aria-invalid", "true")
    assert (app_server.home / "mcp.json").read_text() == before  # never written
    app.shot("program-panel-error")


def test_deny_then_allow_once(app: AppPage) -> None:
    page = open_program(app)
    server_item(page).get_by_test_id("mcp-server-switch").check()
    bodies: list[dict[str, Any]] = []
    page.route(CHAT_API, force_add(bodies))

    send(page, "Add 2 and 3.")
    dialog = page.get_by_test_id("consent-dialog")
    expect(dialog).to_be_visible(timeout=ANSWER_TIMEOUT)
    assert bodies[0]["tools"] and {t["function"]["name"] for t in bodies[0]["tools"]} >= {"add", "echo"}
    app.shot("program-consent")
    assert serious_violations(page) == []
    page.get_by_test_id("consent-deny").click()
    denied = EN["program.result.denied"].replace("{name}", "add")
    expect(tool_messages(page).last).to_contain_text(denied)
    finished(page)
    sent = [m for m in bodies[-1]["messages"] if m["role"] == "tool"]
    assert sent and sent[-1]["content"] == denied and sent[-1]["tool_call_id"]

    send(page, "Add them again.")
    expect(dialog).to_be_visible(timeout=ANSWER_TIMEOUT)
    args = json.loads(page.get_by_test_id("consent-args").inner_text())
    page.get_by_test_id("consent-once").click()
    expect(tool_messages(page)).to_have_count(2)
    expect(tool_messages(page).last.get_by_test_id("message-content")).to_have_text(
        str(args["a"] + args["b"])
    )
    finished(page)
    result = [m for m in bodies[-1]["messages"] if m["role"] == "tool"][-1]
    call_ids = [c["id"] for m in bodies[-1]["messages"] for c in m.get("tool_calls") or []]
    assert result["content"] == str(args["a"] + args["b"]) and result["tool_call_id"] == call_ids[-1]
    assert bodies[-1]["messages"][-1]["role"] == "tool"  # the model answered the result


def test_always_allows_the_tool_without_asking_again(app: AppPage) -> None:
    page = open_program(app)
    server_item(page).get_by_test_id("mcp-server-switch").check()
    bodies: list[dict[str, Any]] = []
    page.route(CHAT_API, force_add(bodies))
    send(page, "Add 1 and 1.")
    expect(page.get_by_test_id("consent-dialog")).to_be_visible(timeout=ANSWER_TIMEOUT)
    page.get_by_test_id("consent-always").click()
    expect(tool_messages(page)).to_have_count(1)
    finished(page)
    asked = len(bodies)
    send(page, "And 4 and 5?")
    expect(tool_messages(page)).to_have_count(2, timeout=ANSWER_TIMEOUT)
    finished(page)
    expect(page.get_by_test_id("consent-dialog")).not_to_be_visible()
    assert len(bodies) == asked + 2  # the call and the answer, no question in between
    assert tool_messages(page).last.get_by_test_id("message-content").inner_text().strip().isdigit()


def test_an_install_link_is_confirmed_then_installed(app: AppPage, app_server: Server) -> None:
    entry = stdio_config({"SECRET_TOKEN": "hunter2"})
    link = make_deeplink("linked", entry)
    page = open_program(app)
    page.get_by_test_id("mcp-link").fill(link)
    page.get_by_test_id("mcp-link-open").click()
    expect(page.get_by_test_id("add-mcp-name")).to_have_text("linked")
    expect(page.get_by_test_id("add-mcp-command")).to_contain_text("server_script.py")
    expect(page.get_by_test_id("add-mcp-env")).to_have_text("SECRET_TOKEN")
    expect(page.get_by_test_id("add-mcp")).not_to_contain_text("hunter2")
    assert "linked" not in json.loads((app_server.home / "mcp.json").read_text())["mcpServers"]
    assert serious_violations(page) == []
    app.shot("program-add-mcp")
    page.get_by_test_id("add-mcp-install").click()
    expect(page.get_by_test_id("add-mcp-done")).to_be_visible()
    servers = json.loads((app_server.home / "mcp.json").read_text())["mcpServers"]
    assert servers["linked"] == entry and SERVER in servers
    page.goto(f"{app_server.url}/#/add-mcp?link={quote(link, safe='')}")
    page.reload()
    expect(page.get_by_test_id("add-mcp-replaces")).to_be_visible()
