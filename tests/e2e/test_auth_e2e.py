"""Require Authentication end to end: a real server started with `lms server start --require-auth`,
tokens made with `lms token` while it runs, and the real clients (openai, httpx, the lmstudio SDK, `lms`)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lmstudio as lms
import openai
import pytest

from tests.support.server import CHAT_MODEL, Server, free_port, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("auth"), models_dir, free_port(), "--require-auth")
    for name in ("LM_API_TOKEN", "LMSTUDIO_API_TOKEN"):
        srv.env.pop(name, None)
    yield srv
    srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    """Created with `lms token create` after the server started: it applies without a restart."""
    created = json.loads(server.lms("token", "create", "--name", "e2e", "--json").stdout)
    assert created["name"] == "e2e" and created["token"].startswith(created["prefix"])
    return str(created["token"])


def chat(client: openai.OpenAI) -> Any:
    return client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=4, temperature=0
    )


def test_openai_client_needs_the_token(server: Server, token: str) -> None:
    reply = chat(openai.OpenAI(base_url=f"{server.url}/v1", api_key=token))
    assert reply.choices[0].finish_reason in ("stop", "length") and reply.usage is not None
    assert reply.usage.completion_tokens > 0
    for key in ("lm-studio", "sk-lm-AAAAAAAA:" + "a" * 20):
        with pytest.raises(openai.AuthenticationError) as caught:
            chat(openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0))
        assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"


@pytest.mark.parametrize("path", ["/api/v0/models", "/api/v1/models", "/v1/models"])
def test_rest_apis_need_the_token(server: Server, token: str, path: str) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        refused = http.get(path)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert http.get(path, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert http.get(path, headers={"x-api-key": token}).status_code == 200
        assert http.get("/lmstudio-greeting").json() == {"lmstudio": True}


def test_lmstudio_sdk_15_with_the_token_in_the_host(server: Server, token: str) -> None:
    host = f"127.0.0.1:{server.port}"
    with lms.Client(host) as anonymous, pytest.raises(lms.LMStudioServerError) as caught:
        anonymous.list_downloaded_models()
    message = str(caught.value)
    assert "Authentication failed" in message and "requires an API token" in message
    with lms.Client(f"{token}@{host}") as client:  # what docs/http-api.md tells SDK 1.5 users
        keys = {model.model_key for model in client.list_downloaded_models()}
        assert CHAT_MODEL in keys
        result = client.llm.model(CHAT_MODEL).respond("Say hi.", config={"maxTokens": 4, "temperature": 0})
        assert result.stats.predicted_tokens_count > 0


def test_lmstudio_sdk_15_default_client_with_the_token_in_the_host(server: Server, token: str) -> None:
    """The convenience API (`lms.llm()`, ...) after `configure_default_client` (docs/auth.md): in a child
    process, since the SDK's default client is global and made once."""
    script = (
        "import lmstudio as lms\n"
        f"lms.configure_default_client({token + '@127.0.0.1:' + str(server.port)!r})\n"
        "print(sorted(m.model_key for m in lms.list_downloaded_models()))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert CHAT_MODEL in done.stdout


class _Sdk16Client(lms.Client):
    """What lmstudio-python 1.6's `Client(api_token=...)` sends: the token's halves in the handshake."""

    token = ""

    def _create_auth_message(self) -> dict[str, Any]:
        token_id, secret = self.token.removeprefix("sk-lm-").split(":")
        return self._format_auth_message(token_id, secret)


def test_lmstudio_sdk_16_handshake_with_the_token(server: Server, token: str) -> None:
    _Sdk16Client.token = token
    with _Sdk16Client(f"127.0.0.1:{server.port}") as client:
        assert CHAT_MODEL in {model.model_key for model in client.list_downloaded_models()}


def test_lms_keeps_working_against_the_server(server: Server, token: str) -> None:
    server.lms("load", CHAT_MODEL, "--identifier", "auth-e2e", "--yes")
    loaded = server.lms_json("ps")
    assert isinstance(loaded, list) and "auth-e2e" in json.dumps(loaded)
    assert CHAT_MODEL in server.lms("ls").stdout
    server.lms("unload", "auth-e2e")
    status = server.lms("server", "status")
    assert status.stdout.startswith("The server is running") and "WARNING" not in status.stderr


def test_token_ls_and_rm_revoke_on_the_running_server(server: Server, token: str) -> None:
    listed = json.loads(server.lms("token", "ls", "--json").stdout)
    assert [entry["name"] for entry in listed] == ["e2e"] and token not in json.dumps(listed)
    table = server.lms("token", "ls").stdout
    assert "e2e" in table and token not in table
    assert "Removed API token 'e2e'" in server.lms("token", "rm", "e2e").stdout
    with httpx.Client(base_url=server.url, timeout=60) as http:
        refused = http.get("/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "not valid" in refused.json()["error"]["message"]
