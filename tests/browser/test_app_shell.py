"""The app's shell in a real browser: it opens at `/` without console errors or serious accessibility
violations, the theme, mode and language switches work and persist, and a phone-width window is usable."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from tests.support.browser import ROOT, AppPage, serious_violations

I18N = ROOT / "app" / "src" / "i18n"


def messages(language: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((I18N / f"{language}.json").read_text(encoding="utf-8"))
    return data


def html_data(page: Page, name: str) -> str | None:
    value: str | None = page.evaluate(f"document.documentElement.dataset.{name} ?? null")
    return value


def background(page: Page) -> str:
    value: str = page.evaluate("getComputedStyle(document.body).backgroundColor")
    return value


def test_app_opens_at_root_clean_and_accessible(app: AppPage) -> None:
    page = app.open("/")
    expect(page).to_have_title(f"{messages('en')['nav.home']} · openlms")
    expect(page.get_by_role("heading", level=1)).to_have_text(messages("en")["home.title"])
    expect(page.get_by_role("navigation")).to_be_visible()
    # what to do next: the models here (the default ones, none loaded), the API's address, a chat
    expect(page.get_by_test_id("home-models-status")).to_contain_text("loaded: 0")
    expect(page.get_by_test_id("home-api-url")).to_have_text(f"{app.base_url.rstrip('/')}/v1")
    app.shot("shell-home")
    assert serious_violations(page) == []
    page.get_by_role("link", name=messages("en")["home.settingsLink"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(messages("en")["settings.title"])
    app.shot("shell-settings")
    assert serious_violations(page) == []
    page.go_back()
    page.get_by_test_id("home-start-chat").click()
    expect(page.get_by_test_id("message-input")).to_be_visible()
    assert app.errors == []


def test_keyboard_reaches_the_skip_link_first(app: AppPage) -> None:
    page = app.open("/")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == messages("en")["app.skipToContent"]
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_keyboard_alone_reaches_the_chat_controls(app: AppPage) -> None:
    """Tab walks through the chat page without a trap, reaching its controls."""
    page = app.open("/#/chat")
    expect(page.get_by_test_id("message-input")).to_be_visible()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    reached: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                "(() => { const e = document.activeElement;"
                " return e ? (e.dataset.testid || e.id || e.tagName) : ''; })()"
            )
        )
    for control in ("new-chat", "model-picker", "message-input"):
        assert control in reached, f"Tab never reached {control}: {reached}"
    assert len(set(reached)) > 5, f"focus stuck: {reached}"


def test_settings_shortcut(app: AppPage) -> None:
    page = app.open("/")
    page.keyboard.press("Control+Comma")  # LM Studio's settings shortcut (Cmd+, on macOS)
    expect(page.get_by_role("heading", level=1)).to_have_text(messages("en")["settings.title"])


def test_theme_switch_light_dark_auto(app: AppPage) -> None:
    page = app.open("/#/settings")
    en = messages("en")
    page.get_by_role("radio", name=en["theme.light"]).check()
    assert html_data(page, "theme") == "light"
    light_bg = background(page)
    page.get_by_role("radio", name=en["theme.dark"]).check()
    assert html_data(page, "theme") == "dark"
    assert background(page) != light_bg
    app.shot("shell-settings-dark")
    assert serious_violations(page) == []
    app.reload()
    assert html_data(page, "theme") == "dark"  # kept across a reload
    expect(page.get_by_role("radio", name=en["theme.dark"])).to_be_checked()
    page.get_by_role("radio", name=en["theme.auto"]).check()
    assert html_data(page, "theme") == "light"  # the context's system scheme is light
    page.emulate_media(color_scheme="dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")  # follows the system
    page.emulate_media(color_scheme="light")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert app.errors == []


def test_mode_switch(app: AppPage) -> None:
    page = app.open("/#/settings")
    en = messages("en")
    assert html_data(page, "mode") == "user"  # a first-time user's mode
    for mode, label in (("power", "mode.power"), ("developer", "mode.developer"), ("user", "mode.user")):
        page.get_by_role("radio", name=en[label], exact=True).check()
        assert html_data(page, "mode") == mode
        expect(page.get_by_text(en[f"mode.{mode}.hint"])).to_be_visible()
    page.get_by_role("radio", name=en["mode.developer"], exact=True).check()
    app.reload()
    assert html_data(page, "mode") == "developer"
    assert app.errors == []


def test_language_switch_changes_visible_text(app: AppPage) -> None:
    page = app.open("/#/settings")
    en = messages("en")
    heading = page.get_by_role("heading", level=1)
    for language in ("es", "de", "zh"):
        text = messages(language)
        assert text["settings.title"] != en["settings.title"], f"{language}.json: settings.title untranslated"
        page.get_by_test_id("language-switch").select_option(language)
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(heading).to_have_text(text["settings.title"])
        expect(page.get_by_role("navigation").get_by_role("link", name=text["nav.home"])).to_be_visible()
        app.shot(f"shell-settings-{language}")
    app.reload()
    expect(heading).to_have_text(messages("zh")["settings.title"])  # kept across a reload
    assert serious_violations(page) == []
    page.get_by_test_id("language-switch").select_option("en")
    expect(heading).to_have_text(en["settings.title"])
    assert app.errors == []


def uncovered(page: Page, selector: str) -> bool:
    """Whether the first element matching `selector` is what a tap on its centre reaches."""
    found: bool = page.evaluate(
        """(selector) => {
            const el = document.querySelector(selector);
            const box = el.getBoundingClientRect();
            const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
            return hit !== null && el.contains(hit);
        }""",
        selector,
    )
    return found


def test_narrow_window_is_usable(app: AppPage) -> None:
    app.page.set_viewport_size({"width": 375, "height": 740})
    page = app.open("/")
    en = messages("en")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_be_visible()
    app.shot("shell-home-375px")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "no sideways scrolling at 375 px"
    assert uncovered(page, "#main h1"), "the page's heading is covered at 375 px"
    box = heading.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    toggle = page.get_by_role("button", name=en["header.toggleSidebar"])
    expect(toggle).to_have_attribute("aria-expanded", "false")  # the sidebar starts closed here
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    nav_settings = page.get_by_role("navigation").get_by_role("link", name=en["nav.settings"])
    expect(nav_settings).to_be_visible()
    app.shot("shell-sidebar-375px")
    nav_settings.click()
    expect(heading).to_have_text(en["settings.title"])
    expect(toggle).to_have_attribute("aria-expanded", "false")  # and closes on navigation
    assert uncovered(page, "[data-testid=language-switch]")
    page.get_by_test_id("language-switch").select_option("de")
    expect(heading).to_have_text(messages("de")["settings.title"])
    app.shot("shell-settings-375px")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert serious_violations(page) == []
    assert app.errors == []


def test_narrow_window_chat(app: AppPage) -> None:
    app.page.set_viewport_size({"width": 375, "height": 740})
    page = app.open("/#/chat")
    composer = page.get_by_test_id("message-input")
    expect(composer).to_be_visible()
    app.shot("chat-375px")
    assert uncovered(page, "[data-testid=message-input]"), "the message box is covered at 375 px"
    box = composer.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "no sideways scrolling at 375 px"
    assert app.errors == []


def test_unknown_route_shows_not_found(app: AppPage) -> None:
    page = app.open("/#/no-such-page")
    expect(page.get_by_role("heading", level=1)).to_have_text(messages("en")["notFound.title"])
    page.get_by_role("link", name=messages("en")["notFound.home"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(messages("en")["home.title"])
