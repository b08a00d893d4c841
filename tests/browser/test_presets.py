"""The chat's settings sidebar and presets in a real browser on the real server and SmolLM2: a system
prompt and a temperature saved as a preset (an LM Studio-format file in <home>/config-presets/) that the
SDK then applies with `preset=` (the system prompt reaches the model: the prompt in the model log stream),
update, reset, deselect, import from a URL and from a file, delete; the draft model (SmolLM2 drafting for
itself) with the accepted draft tokens counted and marked under the answer; the server's refusal of a draft
model shown in place; axe on the open sidebar."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lmstudio as lms
import pytest
from playwright.sync_api import Page, Route, expect

from tests.support.browser import ROOT, AppPage, serious_violations
from tests.support.sdk import host_of
from tests.support.server import CHAT_MODEL, Server

EN: dict[str, str] = json.loads((ROOT / "app" / "src" / "i18n" / "presets" / "en.json").read_text("utf-8"))
ANSWER_TIMEOUT = 90_000  # the first answer includes loading the model on a busy CI machine
PROMPT = "You are a ship's cook. Mention the galley."
P = "llm.prediction."


def open_settings(app: AppPage) -> Page:
    """The chat in Power User mode, SmolLM2 chosen (loaded), the settings sidebar open."""
    app.page.add_init_script("localStorage.setItem('openlms.mode', 'power')")
    page = app.open("/#/chat")
    picker = page.get_by_test_id("model-picker")
    expect(picker.locator(f"option[value='{CHAT_MODEL}']")).to_have_count(1)
    picker.select_option(CHAT_MODEL)
    expect(page.get_by_test_id("model-loading")).to_have_count(0, timeout=ANSWER_TIMEOUT)
    page.get_by_test_id("settings-toggle").click()
    expect(page.get_by_test_id("settings-panel")).to_be_visible()
    return page


def fill(page: Page, testid: str, value: str) -> None:
    field = page.get_by_test_id(testid)
    field.fill(value)
    field.blur()  # the sidebar applies a change when the field is left


def preset_file(server: Server, stem: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((server.home / "config-presets" / f"{stem}.preset.json").read_text())
    return data


def field_values(preset: dict[str, Any]) -> dict[str, Any]:
    return {f["key"]: f["value"] for f in preset["operation"]["fields"]}


def model_prompt_of(server: Server, action: Any) -> str:
    """The prompt the model was given while `action` ran (the model log stream's input event)."""
    prompts: list[str] = []
    ready, seen = threading.Event(), threading.Event()

    def read() -> None:
        url = f"{server.url}/api/v1/logs/stream"
        with httpx.stream("GET", url, params={"source": "model"}, timeout=120) as response:
            for line in response.iter_lines():
                if line.startswith("event: ready"):
                    ready.set()
                elif line.startswith("data: ") and '"input"' in line:
                    prompts.append(json.loads(line[6:])["input"])
                    seen.set()
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert ready.wait(30), "the model log stream did not open"
    action()
    assert seen.wait(60), "no model input was logged"
    return prompts[0]


def test_settings_saved_as_a_preset_the_sdk_applies_then_update_reset_deselect_delete(
    app: AppPage, app_server: Server
) -> None:
    page = open_settings(app)
    assert serious_violations(page) == []
    fill(page, "system-prompt", PROMPT)
    fill(page, "setting-temperature", "0.3")
    page.get_by_test_id("save-as-preset").click()
    page.get_by_test_id("preset-name").fill("Ship Cook")
    page.get_by_test_id("confirm-save-as").click()
    expect(page.get_by_test_id("preset-status")).to_contain_text("Ship Cook")
    expect(page.get_by_test_id("preset-picker")).to_have_value("@local:ship-cook")
    expect(page.get_by_test_id("preset-modified")).to_have_count(0)
    app.shot("presets-sidebar")

    saved = preset_file(app_server, "ship-cook")  # LM Studio's format
    assert (saved["identifier"], saved["name"]) == ("@local:ship-cook", "Ship Cook")
    assert field_values(saved) == {f"{P}systemPrompt": PROMPT, f"{P}temperature": 0.3}

    with lms.Client(host_of(app_server)) as client:
        llm = client.llm.model(CHAT_MODEL)
        prompt = model_prompt_of(
            app_server, lambda: llm.respond("Hi", preset="@local:ship-cook", config={"maxTokens": 2})
        )
    assert PROMPT in prompt

    fill(page, "setting-temperature", "0.5")  # update: the file follows
    expect(page.get_by_test_id("preset-modified")).to_be_visible()
    page.get_by_test_id("save-preset").click()
    expect(page.get_by_test_id("preset-modified")).to_have_count(0)
    assert field_values(preset_file(app_server, "ship-cook"))[f"{P}temperature"] == 0.5

    fill(page, "system-prompt", "Something else.")  # reset: back to the preset
    expect(page.get_by_test_id("preset-modified")).to_be_visible()
    page.get_by_test_id("reset-preset").click()
    expect(page.get_by_test_id("system-prompt")).to_have_value(PROMPT)
    expect(page.get_by_test_id("setting-temperature")).to_have_value("0.5")

    page.get_by_test_id("deselect-preset").click()  # deselect: the settings stay, no preset
    expect(page.get_by_test_id("preset-picker")).to_have_value("")
    expect(page.get_by_test_id("system-prompt")).to_have_value(PROMPT)

    page.get_by_test_id("preset-picker").select_option("@local:ship-cook")
    page.get_by_test_id("delete-preset").click()
    expect(page.get_by_test_id("preset-picker")).to_have_value("")
    expect(page.get_by_test_id("preset-picker").locator("option")).to_have_count(1)
    assert not (app_server.home / "config-presets" / "ship-cook.preset.json").exists()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A local web server with a preset file (what 'Import from a URL' fetches)."""
    preset = {
        "name": "Web Preset",
        "operation": {"fields": [{"key": f"{P}systemPrompt", "value": "From the web."}]},
    }
    (tmp_path / "web.preset.json").write_text(json.dumps(preset))

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_import_from_a_url_and_from_a_file(
    app: AppPage, app_server: Server, served: str, tmp_path: Path
) -> None:
    page = open_settings(app)
    page.locator(".preset-import summary").click()
    page.get_by_test_id("import-url").fill(f"{served}/web.preset.json")
    page.get_by_test_id("import-url-button").click()
    expect(page.get_by_test_id("preset-status")).to_contain_text("Web Preset")
    expect(page.get_by_test_id("system-prompt")).to_have_value("From the web.")
    assert preset_file(app_server, "web-preset")["name"] == "Web Preset"

    upload = tmp_path / "mine.preset.json"
    fields = [{"key": f"{P}systemPrompt", "value": "From a file."}, {"key": f"{P}topKSampling", "value": 12}]
    upload.write_text(
        json.dumps({"identifier": "@local:x", "name": "File Preset", "operation": {"fields": fields}})
    )
    other = tmp_path / "other.preset.json"
    other.write_text(json.dumps({"name": "Other Preset", "operation": {"fields": []}}))
    page.get_by_test_id("import-file").set_input_files([other, upload])  # several at once; the last applies
    expect(page.get_by_test_id("system-prompt")).to_have_value("From a file.")
    expect(page.get_by_test_id("preset-picker").locator("option", has_text="Other Preset")).to_have_count(1)
    expect(page.get_by_test_id("setting-topK")).to_have_value("12")
    expect(page.get_by_test_id("preset-picker")).to_have_value("@local:file-preset")

    page.get_by_test_id("import-url").fill(f"{served}/missing.json")  # the server's error, in place
    page.get_by_test_id("import-url-button").click()
    expect(page.get_by_test_id("preset-error")).to_contain_text("404")
    assert serious_violations(page) == []


def test_draft_model_accepted_tokens_counted_and_marked(app: AppPage) -> None:
    page = open_settings(app)
    fill(page, "setting-temperature", "0")  # greedy: SmolLM2 drafting for itself is always right
    fill(page, "setting-maxTokens", "16")
    page.get_by_test_id("draft-model").select_option(CHAT_MODEL)
    box = page.get_by_test_id("message-input")
    box.fill("Count from 1 to 10.")
    with page.expect_request("**/api/v0/chat/completions") as sent:
        box.press("Enter")
    body = json.loads(sent.value.post_data or "{}")
    assert (body["draft_model"], body["max_tokens"], body["temperature"]) == (CHAT_MODEL, 16, 0)
    answer = page.locator("[data-testid=message][data-role=assistant]").last
    expect(answer.get_by_test_id("draft-stats")).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(answer.get_by_test_id("draft-stats")).to_contain_text(EN["presets.draft.accepted"].split(":")[0])
    expect(answer.locator("[data-testid=message-content] mark.drafted").first).to_be_visible()
    app.shot("presets-draft-answer")
    expect(page.get_by_test_id("send")).to_be_visible()  # the answer (and the chat's settings) saved

    page = app.reload()  # the chat keeps its settings (its conversation file)
    page.get_by_test_id("settings-toggle").click()
    expect(page.get_by_test_id("draft-model")).to_have_value(CHAT_MODEL)
    expect(page.get_by_test_id("setting-maxTokens")).to_have_value("16")
    expect(page.locator("[data-testid=message-content] mark.drafted").first).to_be_visible()

    def bad_draft(route: Route) -> None:  # the server refuses a draft model it cannot use (400)
        sent_body = json.loads(route.request.post_data or "{}")
        route.continue_(post_data=json.dumps(sent_body | {"draft_model": "no-such-draft"}))

    page.route("**/api/v0/chat/completions", bad_draft)
    box.fill("Again.")
    box.press("Enter")
    error = page.locator("[data-testid=message][data-role=assistant]").last.get_by_test_id("message-error")
    expect(error).to_contain_text("no-such-draft", timeout=ANSWER_TIMEOUT)


def test_user_mode_shows_only_the_system_prompt(app: AppPage) -> None:
    page = app.open("/#/chat")
    toggle = page.get_by_test_id("settings-toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_test_id("system-prompt")).to_be_visible()
    expect(page.get_by_test_id("preset-picker")).to_be_visible()
    for hidden in ("setting-temperature", "draft-model", "reset-settings"):
        expect(page.get_by_test_id(hidden)).to_have_count(0)
    page.get_by_test_id("system-prompt").press("Escape")  # Escape closes it too, focus back on the button
    expect(page.get_by_test_id("settings-panel")).to_have_count(0)
    expect(toggle).to_be_focused()
    toggle.click()
    page.get_by_test_id("close-settings").click()
    expect(page.get_by_test_id("settings-panel")).to_have_count(0)


def chunk(content: str, drafted: bool) -> dict[str, object]:
    body: dict[str, object] = {
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    }
    return body | ({"contains_drafted": True} if drafted else {})


DRAFTED_STREAM = (
    "".join(
        f"data: {json.dumps(c)}\n\n"
        for c in (
            chunk("Plain start. ", False),
            chunk("**bold words** here", True),
            chunk(" then plain; ", False),
            chunk("drafted tail.", True),
            {
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 9},
                "stats": {
                    "stop_reason": "eosFound",
                    "draft_model": "tiny-draft",
                    "total_draft_tokens_count": 8,
                    "accepted_draft_tokens_count": 6,
                },
            },
        )
    )
    + "data: [DONE]\n\n"
)


def test_drafted_chunks_are_marked_in_the_rendered_answer(app: AppPage) -> None:
    """A canned /api/v0 stream: the text of `contains_drafted` chunks is marked, markdown and all; the
    counts come from the stats."""
    page = app.open("/#/chat")
    page.route(
        "**/api/v0/chat/completions",
        lambda route: route.fulfill(status=200, content_type="text/event-stream", body=DRAFTED_STREAM),
    )
    box = page.get_by_test_id("message-input")
    expect(box).to_be_focused()  # the chat is ready (models and chats read)
    box.fill("Hi")
    box.press("Enter")
    answer = page.locator("[data-testid=message][data-role=assistant]").last
    expect(answer.get_by_test_id("draft-stats")).to_contain_text("6 of 8 (75%)")
    expect(answer.get_by_test_id("draft-stats")).to_contain_text("tiny-draft")
    marks = answer.locator("[data-testid=message-content] mark.drafted")
    expect(marks).to_have_text(["bold", "words", "here", "drafted tail."])
    expect(answer.locator("[data-testid=message-content] strong")).to_have_text("bold words")
    assert serious_violations(page) == []
