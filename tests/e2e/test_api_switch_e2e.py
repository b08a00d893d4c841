"""The API switch end to end: a real server (`lms server start`), switched off through the settings API as
the app's Developer page does; the real clients (openai, anthropic, the lmstudio SDK, httpx) get the
refusal with its message, `lms` keeps working and shows it (`lms server status`), `lms server start`
switches it on (a running server, and one started again with the switch saved off)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import lmstudio as lms
import openai
import pytest

from tests.support.server import CHAT_MODEL, Server, free_port, start_server

SETTINGS = "/api/v1/app/server/settings"
SWITCHED_OFF = "The openlms server is switched off"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("switch"), models_dir, free_port())
    yield srv
    srv.lms("server", "stop", check=False)


def switch(server: Server, on: bool) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        response = http.patch(SETTINGS, json={"api_enabled": on})
        assert response.status_code == 200, response.text
        assert response.json()["settings"]["api_enabled"] is on


def models_status(server: Server) -> int:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        return http.get("/v1/models").status_code


def test_switched_off_the_clients_are_refused_with_the_message(server: Server) -> None:
    switch(server, False)
    try:
        oai = openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0)
        with pytest.raises(openai.APIStatusError) as refused:
            oai.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "hi"}])
        assert refused.value.status_code == 503 and SWITCHED_OFF in str(refused.value)
        ant = anthropic.Anthropic(base_url=server.url, api_key="lm-studio", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as declined:
            ant.messages.create(model=CHAT_MODEL, max_tokens=4, messages=[{"role": "user", "content": "hi"}])
        assert declined.value.status_code == 503 and SWITCHED_OFF in str(declined.value)
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for path in ("/api/v0/models", "/api/v1/models"):
                assert http.get(path).status_code == 503, path
            assert http.get("/lmstudio-greeting").json() == {"lmstudio": True}
        with lms.Client(f"127.0.0.1:{server.port}") as sdk, pytest.raises(lms.LMStudioServerError) as failed:
            sdk.list_downloaded_models()
        assert SWITCHED_OFF in str(failed.value)
    finally:
        switch(server, True)
    assert models_status(server) == 200


def test_lms_keeps_working_shows_the_switch_and_start_switches_it_on(server: Server) -> None:
    switch(server, False)
    try:
        assert CHAT_MODEL in server.lms("ls").stdout  # lms is let through
        status = server.lms("server", "status").stdout
        assert "switched off" in status and "lms server start" in status
        state = json.loads(server.lms("server", "status", "--json").stdout)
        assert state == {"running": True, "port": server.port, "api_enabled": False}
        started = server.lms("server", "start").stdout
        assert "already running" in started and "switched it on" in started
        assert models_status(server) == 200
        assert json.loads(server.lms("server", "status", "--json").stdout)["api_enabled"] is True
    finally:
        switch(server, True)


def test_a_server_started_again_with_the_switch_saved_off_is_switched_on(
    tmp_path: Path, models_dir: Path
) -> None:
    srv = start_server(tmp_path, models_dir, free_port())
    try:
        switch(srv, False)
        saved = json.loads((srv.home / "openlms" / "settings.json").read_text())
        assert saved["api_enabled"] is False
        srv.lms("server", "stop")
        started = srv.lms("server", "start", "--port", str(srv.port)).stdout
        assert "Success!" in started and "switched it on" in started
        assert models_status(srv) == 200
    finally:
        srv.lms("server", "stop", check=False)
