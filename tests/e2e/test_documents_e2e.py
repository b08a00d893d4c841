"""Documents in a chat on the real server and default models (SmolLM2 answers, MiniLM embeds): the SDK's
`prepare_file` + a file in a chat message, and the app's `POST /api/v1/app/documents/prepare`.

A long PDF and a long DOCX are made here with one unique fact planted on one page (one paragraph); the
tests check where the citations point and what the model was given (the server's model log), never the
model's wording."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import lmstudio as lms
import pytest

from tests.support.documents import CONTEXT, FACT, FACT_PAGE, QUESTION, long_docx, long_pdf
from tests.support.model_log import INPUT, ModelLog
from tests.support.server import CHAT_MODEL, Server


@pytest.fixture(scope="module")
def sdk(server: Server) -> Iterator[lms.Client]:
    """The SDK, the chat model loaded with a small context (the test documents are then long)."""
    with lms.Client(f"127.0.0.1:{server.port}") as client:
        client.llm.load_new_instance(CHAT_MODEL, config={"contextLength": CONTEXT})
        yield client


def respond(client: lms.Client, path: Path) -> None:
    handle = client.files._prepare_file(path)  # lmstudio 1.5 keeps prepare_file private
    chat = lms.Chat()
    chat.add_user_message(QUESTION, _files=[handle])
    result = client.llm.model(CHAT_MODEL).respond(chat, config={"maxTokens": 4, "temperature": 0})
    assert result.stats.predicted_tokens_count >= 1


def test_sdk_long_pdf_is_retrieved_and_cites_the_planted_page(
    sdk: lms.Client, model_log: ModelLog, tmp_path: Path
) -> None:
    path = tmp_path / "handbook.pdf"
    path.write_bytes(long_pdf())
    mark = model_log.mark()
    respond(sdk, path)
    [given] = model_log.since(mark, INPUT)
    prompt = given["input"]
    assert "The following citations were found" in prompt  # retrieval, not the file in full
    cited = re.findall(r'Citation \d+ \(handbook\.pdf, page (\d+)\): "([^"]*)"', prompt)
    assert {int(page) for page, text in cited if "QUARTZ-4417" in text} == {FACT_PAGE}


def test_sdk_short_text_file_goes_in_full(sdk: lms.Client, model_log: ModelLog, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(f"Shopping list: apples, flour.\n{FACT}\n")
    mark = model_log.mark()
    respond(sdk, path)
    [given] = model_log.since(mark, INPUT)
    assert "** notes.txt full content **" in given["input"] and "QUARTZ-4417" in given["input"]


def test_sdk_corrupt_pdf_is_the_sdks_error_with_the_reason(sdk: lms.Client, tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n" + b"\x00garbage" * 50)
    with pytest.raises(lms.LMStudioServerError) as caught:
        respond(sdk, path)
    message = str(caught.value)
    assert "'broken.pdf' could not be read" in message and "Traceback" not in message


def test_app_docx_prepare_cites_the_planted_paragraph(server: Server, sdk: lms.Client) -> None:
    with server.http() as http:
        chat = http.post("/api/v1/app/conversations", json={"title": "docs"}).json()
        put = http.put(f"/api/v1/app/conversations/{chat['id']}/files/report.docx", content=long_docx())
        assert put.status_code == 200, put.text
        body = {
            "model": CHAT_MODEL,
            "conversation": chat["id"],
            "files": ["report.docx"],
            "messages": [{"role": "user", "content": QUESTION}],
        }
        prepared = http.post("/api/v1/app/documents/prepare", json=body, timeout=120)
        assert prepared.status_code == 200, prepared.text
        out = prepared.json()
        assert out["mode"] == "retrieval" and out["content"].endswith(QUESTION)
        first = out["citations"][0]
        assert first["file"] == "report.docx" and first["page"] is None and "QUARTZ-4417" in first["text"]
        assert 0 < out["budget"]["documents"] < out["budget"]["context"] == CONTEXT
        missing = http.post("/api/v1/app/documents/prepare", json={**body, "files": ["nope.pdf"]})
        assert missing.status_code == 404 and "nope.pdf" in missing.json()["error"]["message"]


def test_app_prepare_refuses_an_unsupported_file(server: Server) -> None:
    with server.http() as http:
        chat = http.post("/api/v1/app/conversations", json={"title": "docs"}).json()
        http.put(f"/api/v1/app/conversations/{chat['id']}/files/table.xlsx", content=b"PK\x03\x04xx")
        body = {
            "model": CHAT_MODEL,
            "conversation": chat["id"],
            "files": ["table.xlsx"],
            "messages": [{"role": "user", "content": QUESTION}],
        }
        refused = http.post("/api/v1/app/documents/prepare", json=body)
        assert refused.status_code == 400, refused.text
        assert ".pdf" in refused.json()["error"]["message"]
