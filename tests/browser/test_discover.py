"""The Discover page (#/discover) in a real browser on the real server, its Hub a local FakeHub serving
small GGUFs slowly (so progress shows): the staff picks, search, a quantization picked, Download with
progress to completion, Load it, the model in the chat's model list; Pause / Resume with the list kept
across pages; an unknown repo's error in place; the offline message (a server whose Hub name does not
resolve); axe on the page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from openlms.store.curated import curated_models
from tests.support.browser import APP_INDEX, ROOT, AppPage, serious_violations
from tests.support.fake_hub import FakeHub
from tests.support.server import Server, free_port, start_server
from tests.support.tiny_gguf import write_tiny_llama_gguf

REPO = "acme/Tiny-GGUF"
GATED = "acme/Gated-GGUF"
OTHER = "acme/Other-GGUF"
EN: dict[str, str] = json.loads((ROOT / "app/src/i18n/discover/en.json").read_text(encoding="utf-8"))
DONE_TIMEOUT = 60_000  # an upper bound for a small download on a busy machine; not a timing assertion


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    root = tmp_path_factory.mktemp("hub-files")
    with FakeHub() as fake:
        fake.add_repo(
            GATED, {"Gated-Q4_K_M.gguf": write_tiny_llama_gguf(root / "g.gguf", name="Gated")}, gated=True
        )
        fake.add_repo(OTHER, {"Other-Q4_K_M.gguf": write_tiny_llama_gguf(root / "o.gguf", name="Other")})
        fake.add_repo(
            REPO,
            {
                "Tiny-Q4_K_M.gguf": write_tiny_llama_gguf(root / "q4.gguf", name="Tiny"),  # ~0.8 MB
                "Tiny-Q8_0.gguf": write_tiny_llama_gguf(root / "q8.gguf", name="Tiny", n_embd=128),  # ~2.5 MB
            },
            downloads=42,
            likes=7,
        )
        yield fake


def _server(tmp: Path, hub_url: str) -> Server:
    (tmp / "models").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
            patch.delenv(name, raising=False)
        patch.setenv("HF_ENDPOINT", hub_url)
        patch.setenv("HF_HOME", str(tmp / "hf"))
        return start_server(tmp, tmp / "models", free_port(), settings={"app_dir": str(APP_INDEX.parent)})


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[Server]:
    """This module's server: an empty models folder, HF_ENDPOINT at the fake Hub."""
    srv = _server(tmp_path_factory.mktemp("discover"), hub.url)
    yield srv
    srv.lms("server", "stop", check=False)


def search(page: Page, term: str) -> None:
    box = page.get_by_test_id("discover-search")
    box.fill(term)
    box.press("Enter")


def job_of(page: Page, quantization: str) -> Locator:
    return page.get_by_test_id("discover-job").filter(has_text=f"{REPO} · {quantization}")


def choose(page: Page, quantization: str) -> None:
    search(page, "Tiny-GGUF")
    page.locator(f"[data-testid=discover-result][data-identifier='{REPO}']").click()
    options = page.get_by_test_id("discover-option")
    expect(options).to_have_count(2)
    expect(page.get_by_test_id("discover-recommended")).to_have_count(1)
    page.locator(f"[data-testid=discover-option][data-quantization='{quantization}'] input").check()


def test_search_download_with_progress_then_load_it_in_the_chat(
    app: AppPage, hub: FakeHub, app_server: Server
) -> None:
    page = app.open("/#/discover")
    expect(page.get_by_role("heading", name=EN["discover.picks.heading"])).to_be_visible()
    expect(page.get_by_test_id("discover-result").first).to_be_visible()  # the staff picks, before a search
    app.shot("discover-picks")
    page.get_by_test_id("discover-all-picks").check()  # the picks too large for this machine as well
    expect(page.get_by_test_id("discover-result")).to_have_count(len(curated_models()))
    hub.slow(200_000)  # ~4 s for the 0.8 MB file: the progress is seen
    try:
        choose(page, "Q4_K_M")
        result = page.locator(f"[data-testid=discover-result][data-identifier='{REPO}']")
        expect(result).to_contain_text("42")  # its downloads
        expect(result.get_by_test_id("discover-result-downloaded")).to_have_count(0)
        page.get_by_test_id("discover-download").click()
        job = job_of(page, "Q4_K_M")
        expect(job).to_have_attribute("data-status", "downloading")
        expect(job.locator("progress")).to_be_visible()
        expect(job.get_by_test_id("discover-pause")).to_be_visible()
        assert serious_violations(page) == []
        expect(job).to_have_attribute("data-status", "completed", timeout=DONE_TIMEOUT)
    finally:
        hub.slow(None)
    total = job.locator("progress").get_attribute("max")
    expect(job.locator("progress")).to_have_attribute("value", total or "")
    expect(job.get_by_test_id("discover-job-status")).to_have_text(EN["discover.job.completed"])
    q4 = page.locator("[data-testid=discover-option][data-quantization='Q4_K_M']")
    expect(q4.get_by_test_id("discover-option-downloaded")).to_be_visible()
    expect(result.get_by_test_id("discover-result-downloaded")).to_be_visible()
    app.shot("discover-downloaded")
    with app_server.http() as http:
        jobs = http.get("/api/v1/models/download/jobs").json()["jobs"]
    key = next(j["model_key"] for j in jobs if j["quantization"] == "Q4_K_M")
    job.get_by_test_id("discover-load").click()
    page.wait_for_url("**/#/chat", timeout=DONE_TIMEOUT)
    expect(page.get_by_test_id("model-picker").locator(f"option[value='{key}']")).to_have_count(1)
    assert not [e for e in app.errors if e.startswith("uncaught")], app.errors


def test_pause_resume_and_the_list_survives_leaving_the_page(app: AppPage, hub: FakeHub) -> None:
    page = app.open("/#/discover")
    hub.slow(100_000)  # the 2.5 MB file would take ~25 s: paused long before
    try:
        choose(page, "Q8_0")
        page.get_by_test_id("discover-download").click()
        job = job_of(page, "Q8_0")
        expect(job).to_have_attribute("data-status", "downloading")
        job.get_by_test_id("discover-pause").click()
        expect(job).to_have_attribute("data-status", "paused", timeout=DONE_TIMEOUT)
        expect(job.get_by_test_id("discover-job-status")).to_have_text(EN["discover.job.paused"])
    finally:
        hub.slow(None)
    app.open("/#/chat")
    page = app.open("/#/discover")  # the server keeps the jobs: the list is there again
    job = job_of(page, "Q8_0")
    expect(job).to_have_attribute("data-status", "paused")
    job.get_by_test_id("discover-resume").click()
    expect(job).to_have_attribute("data-status", "completed", timeout=DONE_TIMEOUT)
    expect(job.get_by_test_id("discover-load")).to_be_visible()


def test_a_download_another_client_starts_shows_up(app: AppPage, app_server: Server) -> None:
    page = app.open("/#/discover")
    expect(page.get_by_test_id("discover-search")).to_be_visible()
    with app_server.http() as http:  # as `lms get` or a script would
        started = http.post("/api/v1/models/download", json={"model": OTHER})
    assert started.status_code == 200, started.text
    job = page.get_by_test_id("discover-job").filter(has_text=OTHER)
    expect(job).to_have_attribute("data-status", "completed", timeout=DONE_TIMEOUT)


def test_an_unknown_repo_and_a_gated_one_show_the_servers_message_in_place(app: AppPage) -> None:
    page = app.open("/#/discover")
    search(page, "nobody/nothing-GGUF")
    expect(page).to_have_url(re.compile(r"#/discover\?q=nobody%2Fnothing-GGUF$"))
    page = app.reload()  # the search is in the address: a reload shows it again
    expect(page.get_by_test_id("discover-search")).to_have_value("nobody/nothing-GGUF")
    page.locator("[data-testid=discover-result][data-identifier='nobody/nothing-GGUF']").click()
    error = page.get_by_test_id("discover-options-error")
    expect(error).to_contain_text("nobody/nothing-GGUF")
    expect(page.get_by_test_id("discover-download")).to_have_count(0)
    assert serious_violations(page) == []
    search(page, GATED)  # its listing is public; its files need a granted HF_TOKEN
    page.locator(f"[data-testid=discover-result][data-identifier='{GATED}']").click()
    page.get_by_test_id("discover-download").click()
    job = page.get_by_test_id("discover-job").filter(has_text=GATED)
    expect(job).to_have_attribute("data-status", "failed", timeout=DONE_TIMEOUT)
    expect(job.get_by_test_id("discover-job-error")).to_contain_text("HF_TOKEN")
    expect(job.get_by_test_id("discover-resume")).to_have_text(EN["discover.job.retry"])
    app.shot("discover-errors")


def test_offline_the_picks_show_and_a_search_says_the_hub_cannot_be_reached(
    browser: Browser, tmp_path: Path
) -> None:
    srv = _server(tmp_path, "http://hub.openlms-offline.invalid")  # a name that never resolves
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    try:
        app = AppPage(context.new_page(), srv.url)
        app.attach()
        page = app.open("/#/discover")
        expect(page.get_by_test_id("discover-result").first).to_be_visible()  # the picks need no Hub
        search(page, "nothing-curated-xyz")
        expect(page.get_by_test_id("discover-error")).to_contain_text("Could not reach the model hub")
        app.shot("discover-offline")
    finally:
        context.close()
        srv.lms("server", "stop", check=False)
