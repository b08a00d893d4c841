"""Request CPU work on the real server: a chat template that never ends (sent over the SDK's websocket)
is stopped with an error while other clients are served; 2001 short messages with truncateMiddle are
answered; lone UTF-16 surrogates are 400s naming the field."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lmstudio as lms
import pytest

from tests.support.sdk import host_of
from tests.support.server import CHAT_MODEL, EMBEDDING_MODEL, Server, free_port

ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
TIMEOUT_S = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    """A server whose templates may render for TIMEOUT_S seconds (the default is 10)."""
    home = tmp_path_factory.mktemp("limits") / "home"
    (home / "openlms").mkdir(parents=True)
    settings = {"models_dir": str(models_dir), "sdk_port": 0, "template_timeout_s": TIMEOUT_S}
    (home / "openlms" / "settings.json").write_text(json.dumps(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLMS_")}
    env["OPENLMS_HOME"] = str(home)
    srv = Server(home, free_port(), env)
    srv.lms("server", "start", "--port", str(srv.port), timeout=60)
    try:
        yield srv
    finally:
        srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[lms.Client]:
    with lms.Client(host_of(server)) as sdk_client:
        yield sdk_client


def _chat(http: httpx.Client, messages: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    body = {"model": CHAT_MODEL, "messages": messages, "max_tokens": 4, "temperature": 0, **extra}
    return http.post("/v1/chat/completions", json=body)


def test_an_endless_template_is_stopped_while_other_clients_are_served(
    server: Server, client: lms.Client
) -> None:
    model = client.llm.model(CHAT_MODEL)
    with server.http() as http:
        assert _chat(http, [{"role": "user", "content": "Hi"}]).status_code == 200  # loaded and warm
        finished: list[str] = []
        failure: list[BaseException] = []
        started = threading.Event()

        def endless() -> None:
            config: Any = {
                "promptTemplate": {
                    "type": "jinja",
                    "jinjaPromptTemplate": {"template": ENDLESS},
                    "stopStrings": [],
                },
                "maxTokens": 4,
            }
            started.set()
            try:
                model.respond("Hi", config=config)
            except Exception as exc:  # the SDK raises the server's error
                failure.append(exc)
            finished.append("endless")

        worker = threading.Thread(target=endless)
        worker.start()
        started.wait()
        models = http.get("/v1/models")
        finished.append("models")
        chat = _chat(http, [{"role": "user", "content": "Say hello."}])
        finished.append("chat")
        worker.join(timeout=TIMEOUT_S * 12)
    assert models.status_code == 200 and chat.status_code == 200, (models.text, chat.text)
    assert chat.json()["choices"][0]["finish_reason"] in ("stop", "length")
    assert finished == ["models", "chat", "endless"]  # served while the template was still rendering
    assert failure and "template_timeout_s" in str(failure[0])


def test_2001_short_messages_with_truncate_middle_are_answered(client: lms.Client) -> None:
    model = client.llm.model(CHAT_MODEL)
    chat = lms.Chat("You are terse.")
    for i in range(1000):
        chat.add_user_message(f"Note {i}.")
        chat.add_assistant_response("Noted.")
    chat.add_user_message("Say OK.")
    result = model.respond(chat, config={"contextOverflowPolicy": "truncateMiddle", "maxTokens": 4})
    context, prompt_tokens = model.get_context_length(), result.stats.prompt_tokens_count
    assert prompt_tokens is not None and 0 < prompt_tokens < context
    assert (result.stats.predicted_tokens_count or 0) >= 1


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/chat/completions",
            f'{{"model": "{CHAT_MODEL}", "messages": [{{"role": "user", "content": "a\\ud800b"}}]}}',
            "messages[0].content",
        ),
        ("/v1/completions", f'{{"model": "{CHAT_MODEL}", "prompt": "a\\ud800"}}', "prompt"),
        ("/v1/embeddings", f'{{"model": "{EMBEDDING_MODEL}", "input": "a\\udfff"}}', "input[0]"),
        (
            "/api/v0/chat/completions",
            f'{{"model": "{CHAT_MODEL}", "messages": [{{"role": "user", "content": "\\ud800"}}]}}',
            "messages[0].content",
        ),
    ],
)
def test_lone_surrogates_are_400s(server: Server, path: str, body: str, param: str) -> None:
    with server.http() as http:
        response = http.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param
        assert _chat(http, [{"role": "user", "content": "Hi"}]).status_code == 200  # still serving


def test_lone_surrogates_over_the_sdk_are_errors(client: lms.Client) -> None:
    model = client.llm.model(CHAT_MODEL)
    with pytest.raises(Exception, match="surrogate"):
        model.respond("a\ud800b", config={"maxTokens": 4})
    assert (model.respond("Hi", config={"maxTokens": 2}).stats.predicted_tokens_count or 0) >= 1
