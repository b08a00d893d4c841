"""Documents in a chat in a real browser on the real server (SmolLM2 answers, MiniLM embeds): attach a long
PDF (a fact planted on one page) with the attach button, see its chip, send a question, and see the sources
under the answer (the planted page cited); an unsupported file is refused at once, a corrupt PDF's reason
is shown in place of the answer. Answers are capped at a few tokens: the checks are on what the model was
given and what the page shows, never on the model's words."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Page, Route, expect

from tests.browser.test_chat import ANSWER_TIMEOUT, CHAT_API, messages, open_chat
from tests.support.browser import AppPage, serious_violations
from tests.support.documents import CONTEXT, FACT_PAGE, QUESTION, long_pdf
from tests.support.server import CHAT_MODEL, Server


def capture(page: Page) -> list[dict[str, Any]]:
    """The chat requests the page sends (answers capped at 4 tokens)."""
    sent: list[dict[str, Any]] = []

    def cap(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        sent.append(body)
        route.continue_(post_data=json.dumps(body | {"max_tokens": 4}))

    page.route(CHAT_API, cap)
    return sent


def attach(page: Page, name: str, data: bytes, mime: str) -> None:
    page.get_by_test_id("attach-input").set_input_files({"name": name, "mimeType": mime, "buffer": data})


def load_small(server: Server) -> None:
    """The chat model with a small context (the test's few pages are then long: retrieval)."""
    with server.http() as http:
        loaded = http.post(
            "/api/v1/models/load", json={"model": CHAT_MODEL, "context_length": CONTEXT}, timeout=120
        )
        assert loaded.status_code == 200, loaded.text


def test_attach_a_pdf_send_and_see_the_cited_page(app: AppPage, app_server: Server) -> None:
    load_small(app_server)
    page = open_chat(app)
    sent = capture(page)
    attach(page, "table.xlsx", b"PK\x03\x04", "application/vnd.ms-excel")
    expect(page.get_by_test_id("attach-error")).to_contain_text("'table.xlsx' cannot be attached")
    attach(page, "notes.txt", b"a note", "text/plain")
    attach(page, "handbook.pdf", long_pdf(), "application/pdf")
    chips = page.get_by_test_id("document-chip")
    expect(chips).to_have_count(2)
    chips.filter(has_text="notes.txt").get_by_test_id("remove-document").click()
    expect(chips).to_have_count(1)
    expect(chips.first).to_contain_text("handbook.pdf")
    expect(chips.first).to_contain_text("KB")
    app.shot("documents-attached")
    assert serious_violations(page) == []

    box = page.get_by_test_id("message-input")
    box.fill(QUESTION)
    box.press("Enter")
    expect(page.get_by_test_id("document-chips")).to_have_count(1)  # now on the sent message only
    answer = messages(page, "assistant").last
    expect(answer.get_by_test_id("message-stats")).to_be_visible(timeout=ANSWER_TIMEOUT)
    user = sent[-1]["messages"][-1]
    assert user["role"] == "user" and user["content"].startswith("The following citations were found")
    assert "QUARTZ-4417" in user["content"] and user["content"].rstrip().endswith(QUESTION)

    sources = answer.get_by_test_id("sources")
    expect(sources).to_be_visible()
    cited = sources.get_by_test_id("citation").filter(has_text=f"handbook.pdf, page {FACT_PAGE}")
    expect(cited.filter(has_text="QUARTZ-4417").first).to_be_visible()
    expect(messages(page, "user").last.get_by_test_id("document-chip")).to_contain_text("handbook.pdf")
    app.shot("documents-sources")
    assert serious_violations(page) == []

    answer.get_by_test_id("regenerate").click()  # answered again with the documents prepared again
    expect(page.get_by_test_id("send")).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(messages(page, "assistant").last.get_by_test_id("message-stats")).to_be_visible()
    assert len(sent) == 2 and sent[-1]["messages"][-1]["content"] == user["content"]
    page.unroute(CHAT_API)
    page = app.reload()  # the chat as saved: its file chip and the sources under the answer
    expect(messages(page, "user").last.get_by_test_id("document-chip")).to_contain_text("handbook.pdf")
    expect(page.get_by_test_id("citation").filter(has_text="QUARTZ-4417").first).to_be_visible()


def test_a_corrupt_pdf_is_shown_in_place_of_the_answer(app: AppPage) -> None:
    page = open_chat(app)
    page.get_by_test_id("new-chat").click()
    sent = capture(page)
    attach(page, "broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50, "application/pdf")
    box = page.get_by_test_id("message-input")
    box.fill(QUESTION)
    box.press("Enter")
    error = messages(page, "assistant").last.get_by_test_id("message-error")
    expect(error).to_contain_text("'broken.pdf' could not be read")
    expect(page.get_by_test_id("send")).to_be_visible()
    assert sent == []  # nothing went to the model
    page.unroute(CHAT_API)


def drop_file(page: Page, name: str, text: str) -> None:
    """A file dropped onto the message box (a DragEvent carrying it, as the browser sends one)."""
    page.get_by_test_id("message-input").evaluate(
        """(box, [name, text]) => {
            const data = new DataTransfer();
            data.items.add(new File([text], name, { type: "text/plain" }));
            const form = box.closest("form");
            const init = { dataTransfer: data, bubbles: true, cancelable: true };
            form.dispatchEvent(new DragEvent("dragover", init));
            form.dispatchEvent(new DragEvent("drop", init));
        }""",
        [name, text],
    )


def test_a_dropped_short_file_is_used_in_full(app: AppPage) -> None:
    page = open_chat(app)
    page.get_by_test_id("new-chat").click()
    sent = capture(page)
    drop_file(page, "notes.txt", "The gate code is 5521.")
    expect(page.get_by_test_id("document-chip")).to_contain_text("notes.txt")
    box = page.get_by_test_id("message-input")
    held: list[Route] = []

    def hold(route: Route) -> None:  # the server's answer waits until the page is checked
        held.append(route)

    page.route("**/api/v1/app/documents/prepare", hold)
    box.fill("What is the gate code?")
    with page.expect_request("**/api/v1/app/documents/prepare"):
        box.press("Enter")
    expect(page.get_by_test_id("documents-preparing")).to_be_visible()  # while the server reads them
    for _ in range(500):  # the route handler runs as the page's events are read
        if held:
            break
        page.wait_for_timeout(20)
    held[0].continue_()
    answer = messages(page, "assistant").last
    expect(answer.get_by_test_id("message-stats")).to_be_visible(timeout=ANSWER_TIMEOUT)
    assert "** notes.txt full content **" in sent[-1]["messages"][-1]["content"]
    expect(answer.get_by_test_id("sources-full")).to_be_attached()
    answer.get_by_test_id("sources").locator("summary").click()
    expect(answer.get_by_test_id("sources-full")).to_have_text("Used in full: notes.txt")
    page.unroute(CHAT_API)
