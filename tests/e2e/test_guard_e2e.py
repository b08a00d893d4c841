"""The guard on the real server: a web page's cross-origin websocket and a DNS-rebinding page are
refused, while the real `lmstudio` SDK and `openai` client (which send no Origin) keep working; an
oversized body is refused with a 413 and the server answers a normal chat after it."""

from __future__ import annotations

import httpx
import lmstudio as lms
import openai
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.support.sdk import host_of
from tests.support.server import CHAT_MODEL, Server

pytestmark = [pytest.mark.e2e]

EVIL = "http://evil.example"


def test_a_cross_origin_websocket_is_refused_and_the_sdk_still_works(server: Server) -> None:
    url = f"ws://127.0.0.1:{server.port}/system"
    with pytest.raises(InvalidStatus) as refused, connect(url, origin=Origin(EVIL), open_timeout=30):
        pass
    assert refused.value.response.status_code == 403
    assert b"origin_not_allowed" in refused.value.response.body
    with lms.Client(host_of(server)) as client:
        keys = [model.model_key for model in client.list_downloaded_models()]
    assert CHAT_MODEL in keys


@pytest.mark.parametrize("path", ["/v1/models", "/api/v1/logs/stream?source=server"])
def test_a_dns_rebinding_host_is_refused(server: Server, path: str) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        rebound = http.get(path, headers={"Host": "evil.example:1234"})
    assert rebound.status_code == 403
    assert rebound.json()["error"]["code"] == "host_not_allowed"


def test_a_70_mb_body_is_413_and_the_server_answers_after(server: Server) -> None:
    body = b'{"model": "x", "messages": [{"role": "user", "content": "' + b"a" * (70 << 20) + b'"}]}'
    with httpx.Client(base_url=server.url, timeout=120) as http:
        response = http.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", timeout=120)
    answer = client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Say hi."}], max_tokens=4
    )
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage is not None and answer.usage.completion_tokens >= 1
