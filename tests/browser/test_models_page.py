"""The Models page (#/models) in a real browser on the real server and SmolLM2: load it through the load
dialog with a non-default context length (the estimate follows the setting), see it loaded with that
context (and in /api/v1/models), unload it; the advanced load settings in Power User mode, the server's
error in place and a load the guardrail would refuse flagged; per-model settings saved, kept across a
reload and reset; the prompt template switched to Manual and back; the chat's model picker while the
list is read."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.support.browser import ROOT, AppPage, serious_violations
from tests.support.server import CHAT_MODEL, Server

EN: dict[str, str] = json.loads((ROOT / "app" / "src" / "i18n" / "models" / "en.json").read_text("utf-8"))
LOAD_TIMEOUT = 60_000  # loading SmolLM2 on a busy CI machine


def api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


@pytest.fixture(autouse=True)
def nothing_loaded_after(app_server: Server) -> Iterator[None]:
    """Every test starts and ends with no model loaded and no per-model settings for SmolLM2."""
    yield
    with api(app_server) as http:
        for model in http.get("/api/v1/models").json()["models"]:
            for instance in model["loaded_instances"]:
                http.post("/api/v1/models/unload", json={"instance_id": instance["id"]})
        http.delete("/api/v1/models/config", params={"model": CHAT_MODEL})


def open_models(app: AppPage, mode: str = "user") -> Page:
    page = app.open("/#/models")
    if mode != "user":
        page.evaluate("mode => localStorage.setItem('openlms.mode', mode)", mode)
        page = app.reload()
    expect(row(page)).to_be_visible()
    return page


def row(page: Page, key: str = CHAT_MODEL) -> Locator:
    return page.locator(f"[data-testid=model-row][data-key='{key}']")


def open_load_dialog(page: Page) -> Locator:
    row(page).get_by_test_id("load-button").click()
    dialog = page.get_by_test_id("load-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("estimate-total")).to_be_visible()
    return dialog


def test_load_with_a_context_length_see_it_loaded_then_unload(app: AppPage, app_server: Server) -> None:
    page = open_models(app)
    with api(app_server) as http:
        listed = {m["key"]: m for m in http.get("/api/v1/models").json()["models"]}
    smol = listed[CHAT_MODEL]
    assert smol["display_name"] == "SmolLM2 135M Instruct"  # not the GGUF's general.name (a training run)
    expect(row(page).locator(".model-name")).to_have_text(smol["display_name"])
    expect(row(page)).to_contain_text(smol["quantization"]["name"])
    expect(page.get_by_test_id("loaded-empty")).to_be_visible()
    assert serious_violations(page) == []

    dialog = open_load_dialog(page)
    expect(dialog.get_by_test_id("load-gpu")).to_have_count(0)  # User mode: the context length only
    total = dialog.get_by_test_id("estimate-total")
    default_bytes = total.get_attribute("data-bytes")
    dialog.get_by_test_id("load-context").fill("2048")
    expect(total).not_to_have_attribute("data-bytes", default_bytes or "")
    assert int(total.get_attribute("data-bytes") or 0) < int(default_bytes or 0)  # 2048 < the default 4096
    expect(dialog.get_by_test_id("estimate-verdict")).to_have_attribute("data-fits", "true")
    assert serious_violations(page) == []
    app.shot("models-load-dialog")

    dialog.get_by_test_id("load-confirm").click()
    expect(dialog).to_be_hidden(timeout=LOAD_TIMEOUT)
    instance = page.locator(f"[data-testid=loaded-instance][data-id='{CHAT_MODEL}']")
    expect(instance.get_by_test_id("instance-context")).to_have_text("2048")
    with api(app_server) as http:
        (loaded,) = next(m for m in http.get("/api/v1/models").json()["models"] if m["key"] == CHAT_MODEL)[
            "loaded_instances"
        ]
    assert loaded["id"] == CHAT_MODEL and loaded["config"]["context_length"] == 2048
    app.shot("models-loaded")

    # loaded: the prompt template's preview is the prompt the model builds (apply-template)
    page.evaluate("localStorage.setItem('openlms.mode', 'power')")
    page = app.reload()
    settings = open_settings(page)
    settings.get_by_test_id("template-preview").click()
    preview = settings.get_by_test_id("template-preview-text")
    expect(preview).to_contain_text(EN["models.template.sampleUser"])
    expect(preview).to_contain_text("<|im_start|>assistant")
    # an unsaved Manual template is previewed as it is, and not saved
    settings.get_by_test_id("template-kind-manual").check()
    settings.get_by_test_id("template-beforeUser").fill("USER> ")
    settings.get_by_test_id("template-preview").click()
    expect(preview).to_contain_text("USER> " + EN["models.template.sampleUser"])
    expect(preview).not_to_contain_text("<|im_start|>")
    assert saved_config(app_server) == {"load": {}, "prediction": {}}
    settings.get_by_test_id("settings-close").click()
    expect(row(page).get_by_test_id("settings-button")).to_be_focused()  # focus back where it was

    instance = page.locator(f"[data-testid=loaded-instance][data-id='{CHAT_MODEL}']")
    instance.get_by_test_id("unload-button").click()
    expect(page.get_by_test_id("loaded-empty")).to_be_visible()
    with api(app_server) as http:
        assert all(not m["loaded_instances"] for m in http.get("/api/v1/models").json()["models"])
    assert app.errors == []


def test_power_user_settings_the_servers_error_and_a_load_that_would_not_fit(
    app: AppPage, app_server: Server
) -> None:
    page = open_models(app, "power")
    dialog = open_load_dialog(page)
    for field in (
        "load-gpu",
        "load-flash",
        "load-kcache",
        "load-vcache",
        "load-parallel",
        "load-ttl",
        "load-identifier",
    ):
        expect(dialog.get_by_test_id(field)).to_be_visible()
    # a quantized V cache without flash attention: the server refuses it, the estimate and the load say why
    dialog.get_by_test_id("load-flash").select_option("off")
    dialog.get_by_test_id("load-vcache").select_option("q8_0")
    expect(dialog.get_by_test_id("estimate-error")).to_contain_text("flash")
    dialog.get_by_test_id("load-confirm").click()
    expect(dialog.get_by_test_id("load-error")).to_contain_text("flash")
    expect(dialog).to_be_visible()
    with api(app_server) as http:
        assert all(not m["loaded_instances"] for m in http.get("/api/v1/models").json()["models"])

    # the guardrail's "will fail to load" verdict is flagged (the server's answer, reshaped)
    def refused(route: Route) -> None:
        body = route.fetch().json()
        body["guardrails"] |= {"fits": False}
        route.fulfill(json=body)

    page.route("**/api/v1/models/estimate", refused)
    dialog.get_by_test_id("load-vcache").select_option("")
    expect(dialog.get_by_test_id("load-error")).to_have_count(0)  # the refused settings changed
    verdict = dialog.get_by_test_id("estimate-verdict")
    expect(verdict).to_have_attribute("data-fits", "false")
    expect(verdict).to_contain_text(EN["models.estimate.noFit"])
    app.shot("models-load-dialog-power")
    assert serious_violations(page) == []
    dialog.get_by_test_id("load-cancel").click()
    expect(dialog).to_be_hidden()
    expect(row(page).get_by_test_id("load-button")).to_be_focused()


def test_a_load_can_remember_its_settings_as_the_models_defaults(app: AppPage, app_server: Server) -> None:
    page = open_models(app)
    dialog = open_load_dialog(page)
    dialog.get_by_test_id("load-context").fill("2560")
    dialog.get_by_test_id("load-remember").check()
    dialog.get_by_test_id("load-confirm").click()
    expect(dialog).to_be_hidden(timeout=LOAD_TIMEOUT)
    instance = page.locator(f"[data-testid=loaded-instance][data-id='{CHAT_MODEL}']")
    expect(instance.get_by_test_id("instance-context")).to_have_text("2560")
    assert saved_config(app_server) == {"load": {"contextLength": 2560}, "prediction": {}}
    settings = open_settings(page)  # User mode: the defaults, no prompt template editor
    expect(settings.get_by_test_id("settings-context")).to_have_value("2560")
    expect(settings.get_by_test_id("template-editor")).to_have_count(0)


def test_a_custom_identifier_and_ttl_in_power_user_mode(app: AppPage, app_server: Server) -> None:
    page = open_models(app, "power")
    dialog = open_load_dialog(page)
    dialog.get_by_test_id("load-identifier").fill("my-smol")
    dialog.get_by_test_id("load-ttl").fill("600")
    dialog.get_by_test_id("load-confirm").click()
    expect(dialog).to_be_hidden(timeout=LOAD_TIMEOUT)
    instance = page.locator("[data-testid=loaded-instance][data-id='my-smol']")
    expect(instance).to_contain_text("600")
    with api(app_server) as http:
        smol = next(m for m in http.get("/api/v1/models").json()["models"] if m["key"] == CHAT_MODEL)
    (loaded,) = smol["loaded_instances"]
    assert loaded["id"] == "my-smol" and loaded["ttl_seconds"] == 600


def test_the_empty_state_points_to_discover_and_lms_get(app: AppPage) -> None:
    app.page.route("**/api/v1/models", lambda route: route.fulfill(json={"models": []}))
    page = app.open("/#/models")
    empty = page.get_by_test_id("models-empty")
    expect(empty).to_contain_text("lms get")
    expect(empty.get_by_role("link", name=EN["models.empty.discover"])).to_have_attribute(
        "href", "#/discover"
    )
    expect(page.get_by_test_id("loaded-empty")).to_be_visible()


def open_settings(page: Page) -> Locator:
    row(page).get_by_test_id("settings-button").click()
    dialog = page.get_by_test_id("settings-dialog")
    expect(dialog.get_by_test_id("settings-context")).to_be_visible()
    return dialog


def saved_config(server: Server) -> dict[str, object]:
    with api(server) as http:
        body: dict[str, object] = http.get("/api/v1/models/config", params={"model": CHAT_MODEL}).json()
    return body


def save(dialog: Locator) -> None:
    """Save, once the server has answered the PUT (a second save shows the same "Saved.")."""
    with dialog.page.expect_response(
        lambda r: "/api/v1/models/config" in r.url and r.request.method == "PUT"
    ):
        dialog.get_by_test_id("settings-save").click()
    expect(dialog.get_by_test_id("settings-status")).to_have_text(EN["models.settings.saved"])


def test_per_model_settings_are_kept_across_a_reload_and_reset(app: AppPage, app_server: Server) -> None:
    page = open_models(app, "power")
    dialog = open_settings(page)
    dialog.get_by_test_id("settings-context").fill("3072")
    dialog.get_by_test_id("settings-overflow").select_option("truncateMiddle")
    save(dialog)
    assert saved_config(app_server) == {
        "load": {"contextLength": 3072},
        "prediction": {"contextOverflowPolicy": "truncateMiddle"},
    }
    assert serious_violations(page) == []
    app.shot("models-settings")

    page = app.reload()
    dialog = open_settings(page)
    expect(dialog.get_by_test_id("settings-context")).to_have_value("3072")
    expect(dialog.get_by_test_id("settings-overflow")).to_have_value("truncateMiddle")
    # the load dialog starts from the model's defaults
    dialog.get_by_test_id("settings-close").click()
    load = open_load_dialog(page)
    expect(load.get_by_test_id("load-context")).to_have_value("3072")
    load.get_by_test_id("load-cancel").click()

    dialog = open_settings(page)
    dialog.get_by_test_id("settings-reset").click()
    expect(dialog.get_by_test_id("settings-status")).to_have_text(EN["models.settings.resetDone"])
    expect(dialog.get_by_test_id("settings-context")).to_have_value("")
    assert saved_config(app_server) == {"load": {}, "prediction": {}}
    assert app.errors == []


def test_prompt_template_manual_and_back(app: AppPage, app_server: Server) -> None:
    with api(app_server) as http:
        own = http.get("/api/v1/models/template", params={"model": CHAT_MODEL}).json()
    gguf_template = own["promptTemplate"]["jinjaPromptTemplate"]["template"]
    page = open_models(app, "power")
    dialog = open_settings(page)
    editor = dialog.get_by_test_id("template-editor")
    expect(editor.get_by_test_id("template-source")).to_have_text(EN["models.template.fromGguf"])
    expect(editor.get_by_test_id("template-jinja")).to_have_value(gguf_template)
    expect(editor.get_by_test_id("template-preview")).to_be_disabled()  # not loaded: nothing to preview
    expect(editor.get_by_test_id("template-preview-hint")).to_have_text(
        EN["models.template.previewNeedsLoad"]
    )

    # Manual and back to Jinja: still the model's own template, nothing saved as an override
    editor.get_by_test_id("template-kind-manual").check()
    expect(editor.get_by_test_id("template-beforeUser")).to_be_visible()
    editor.get_by_test_id("template-kind-jinja").check()
    expect(editor.get_by_test_id("template-jinja")).to_have_value(gguf_template)
    save(dialog)
    assert saved_config(app_server) == {"load": {}, "prediction": {}}

    # a template that is not valid Jinja: the server's message, nothing saved
    editor.get_by_test_id("template-jinja").fill("{% for m in messages %}")
    dialog.get_by_test_id("settings-save").click()
    expect(dialog.get_by_test_id("settings-error")).to_contain_text("not valid Jinja")
    assert saved_config(app_server) == {"load": {}, "prediction": {}}
    editor.get_by_test_id("template-use-model").click()
    expect(editor.get_by_test_id("template-jinja")).to_have_value(gguf_template)

    # a Manual template saved, then shown again after a reload
    editor.get_by_test_id("template-kind-manual").check()
    editor.get_by_test_id("template-beforeUser").fill("<|im_start|>user\n")
    editor.get_by_test_id("template-afterUser").fill("<|im_end|>\n")
    editor.get_by_test_id("template-beforeAssistant").fill("<|im_start|>assistant\n")
    editor.get_by_test_id("template-stops").fill("<|im_end|>")
    expect(editor.get_by_test_id("template-source")).to_have_text(EN["models.template.override"])
    save(dialog)
    template = saved_config(app_server)["prediction"]["promptTemplate"]  # type: ignore[index]
    assert template["type"] == "manual" and template["stopStrings"] == ["<|im_end|>"]
    assert template["manualPromptTemplate"]["beforeUser"] == "<|im_start|>user\n"
    page = app.reload()
    dialog = open_settings(page)
    editor = dialog.get_by_test_id("template-editor")
    expect(editor.get_by_test_id("template-kind-manual")).to_be_checked()
    expect(editor.get_by_test_id("template-afterUser")).to_have_value("<|im_end|>\n")
    assert serious_violations(page) == []
    app.shot("models-template-manual")

    # back to the model's own template: the override is removed
    editor.get_by_test_id("template-use-model").click()
    expect(editor.get_by_test_id("template-jinja")).to_have_value(gguf_template)
    save(dialog)
    assert "promptTemplate" not in saved_config(app_server)["prediction"]  # type: ignore[operator]
    assert [e for e in app.errors if "status of 400" not in e] == []  # the refused template's PUT


def test_the_chat_picker_says_loading_until_the_list_is_read(app: AppPage) -> None:
    held: list[Route] = []
    released: list[bool] = []

    def hold(route: Route) -> None:
        if released:
            route.continue_()
        else:
            held.append(route)

    app.page.route("**/api/v1/models", hold)
    page = app.open("/#/chat")
    picker = page.get_by_test_id("model-picker")
    expect(picker.locator("option").first).to_have_text(EN["models.reading"])
    released.append(True)
    for route in held:
        route.continue_()
    expect(picker.locator(f"option[value='{CHAT_MODEL}']")).to_contain_text("SmolLM2 135M Instruct")
