"""Issue 10's defences together, on one real server with Require Authentication on (`lms server start
--require-auth`, a token from `lms token create`), attacked as the issue describes. Each feature has its
own tests (test_guard_e2e, test_auth_e2e, test_model_limits_e2e, test_request_limits_e2e, the template
limits' unit tests); this module checks that they hold at once, and the path traversal cases that need
the real HTTP server (raw request targets no client would normalise).

* every route of the OpenAPI document, and the SDK's websockets, refuse a request without a token (401
  in OpenAI's shape; the SDK's handshake fails), `/lmstudio-greeting` stays open;
* a web page is refused even if it had a token: cross-origin websockets and requests, DNS-rebinding Host
  headers, CSRF with `text/plain` bodies;
* path traversal in raw request targets (`..`, `%2e%2e%2f`, double-encoded, absolute), model settings,
  `lms import` destinations and SDK upload names: 4xx or kept inside their folder;
* a chat template that tries to escape the Jinja sandbox, or to loop for ever, is a 400 (the render time
  limit is set to 2 s here) and the server answers the next chat;
* a context length of 10^9 and a deeply nested body are refused at once.

Conversation files and model downloads do not exist yet in openlms: nothing to traverse there.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import lmstudio as lms
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.support.server import CHAT_MODEL, Server, free_port

pytestmark = [pytest.mark.e2e]

EVIL = "http://evil.example"
MESSAGES = [{"role": "user", "content": "Say hi."}]
SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ joiner.__init__.__globals__.os.system('touch /tmp/openlms-pwned') }}",
    "{{ namespace.__init__.__globals__ }}",
]
ENDLESS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}x"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("security")
    home = tmp / "home"
    (home / "openlms").mkdir(parents=True)
    settings = {"models_dir": str(models_dir), "sdk_port": 0, "template_timeout_s": 2.0}
    (home / "openlms" / "settings.json").write_text(json.dumps(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLMS_")} | {"OPENLMS_HOME": str(home)}
    for name in ("LM_API_TOKEN", "LMSTUDIO_API_TOKEN"):
        env.pop(name, None)
    srv = Server(home, free_port(), env)
    srv.lms("server", "start", "--port", str(srv.port), "--require-auth", timeout=90)
    yield srv
    srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    created = json.loads(server.lms("token", "create", "--name", "security", "--json").stdout)
    return str(created["token"])


@pytest.fixture(scope="module")
def http(server: Server, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)


def raw_request(server: Server, target: str, token: str) -> tuple[int, bytes]:
    """GET `target` exactly as written (no client normalises its dots or its escapes)."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def handshake_refused(server: Server, namespace: str) -> bool:
    """Whether the SDK websocket `namespace` refuses a made-up passkey (at the upgrade or in the
    handshake's answer)."""
    try:
        with connect(f"ws://127.0.0.1:{server.port}/{namespace}", open_timeout=30) as ws:
            ws.send(json.dumps({"authVersion": 1, "clientIdentifier": "evil", "clientPasskey": "evil"}))
            answer = json.loads(ws.recv(timeout=30))
    except (InvalidStatus, ConnectionClosed):
        return True
    return answer.get("success") is not True


# -- tokens on every route --------------------------------------------------------------------------------


def test_every_route_and_websocket_needs_a_token(server: Server, http: httpx.Client) -> None:
    document = http.get("/openapi.json")
    assert document.status_code == 200
    paths: dict[str, dict[str, Any]] = document.json()["paths"]
    checked = 0
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        for path, methods in paths.items():
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            for method in methods:
                if method not in ("get", "post", "put", "delete", "patch"):
                    continue
                response = anonymous.request(method.upper(), concrete, params={"model": "x"}, json={})
                if path == "/lmstudio-greeting":
                    assert response.status_code == 200
                    continue
                if path.startswith("/v1/messages"):  # Anthropic's error shape, as its clients expect
                    assert response.status_code == 401, (path, response.text)
                    assert response.json()["error"]["type"] == "authentication_error"
                else:
                    openai_error(response, 401, "invalid_api_key")
                assert "Bearer" in response.headers.get("www-authenticate", "")
                checked += 1
        assert anonymous.get("/lmstudio-greeting").status_code == 200
        assert (
            anonymous.get(
                "/v1/models", headers={"Authorization": "Bearer sk-lm-forged00:" + "a" * 20}
            ).status_code
            == 401
        )
    assert checked >= 15, checked
    for namespace in ("llm", "system", "files", "embedding", "diagnostics"):
        assert handshake_refused(server, namespace)
    with (
        pytest.raises(lms.LMStudioServerError, match="Authentication failed"),
        lms.Client(f"127.0.0.1:{server.port}") as client,
    ):
        client.list_downloaded_models()


# -- a web page ---------------------------------------------------------------------------------------------


def test_a_web_page_cannot_drive_the_server_even_with_a_token(
    server: Server, token: str, http: httpx.Client
) -> None:
    body = {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 2}
    cross = http.post("/v1/chat/completions", json=body, headers={"Origin": EVIL})
    openai_error(cross, 403)
    # DNS rebinding: with auth on any Host is answered (docs/security.md), but the page has no token
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        rebound = anonymous.get("/v1/models", headers={"Host": f"evil.example:{server.port}"})
    assert rebound.status_code in (401, 403), rebound.text
    assert "data" not in rebound.json()
    # and the loopback-only routes check the name even with a token
    imported = http.post(
        "/api/v1/models/import", json={"path": "/etc/passwd"}, headers={"Host": "evil.example"}
    )
    openai_error(imported, 403)
    for headers in ({"Origin": EVIL}, {}):  # a form's or fetch's "simple" request: no preflight
        csrf = http.post(
            "/v1/chat/completions",
            content=json.dumps(body),
            headers={"Content-Type": "text/plain", **headers},
        )
        assert 400 <= csrf.status_code < 500, csrf.text
        assert "choices" not in csrf.text
    url = f"ws://127.0.0.1:{server.port}/llm"
    with (
        pytest.raises(InvalidStatus) as refused,
        connect(url, origin=Origin(EVIL), additional_headers={"Authorization": f"Bearer {token}"}),
    ):
        pass
    assert refused.value.response.status_code == 403
    ok = http.post("/v1/chat/completions", json=body)
    assert ok.status_code == 200 and ok.json()["choices"]


# -- path traversal -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/api/v0/models/../../../../etc/passwd",
        "/api/v0/models/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/api/v0/models/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/v0/models/%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "/api/v0/models//etc/passwd",
        "/api/v0/models/%2fetc%2fpasswd",
        "/api/v1/models/config?model=../../../../etc/passwd",
        "/api/v1/models/config?model=%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/api/v1/models/config?model=/etc/passwd",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ],
)
def test_raw_traversal_targets_are_4xx(server: Server, token: str, target: str) -> None:
    status, data = raw_request(server, target, token)
    assert 400 <= status < 500, data[:500]
    assert b"root:" not in data


def test_model_settings_and_imports_stay_in_their_folders(
    server: Server, http: httpx.Client, models_dir: Path, tmp_path: Path
) -> None:
    before = sorted(p.name for p in models_dir.iterdir())
    for model in ("../../../../etc/passwd", "/etc/passwd", "..%2F..%2Fsecret"):
        put = http.put("/api/v1/models/config", params={"model": model}, json={"load": {}})
        assert 400 <= put.status_code < 500, put.text
    source = tmp_path / "escape-Q4_0.gguf"
    source.write_bytes(b"not a model")
    for publisher in ("..", "../..", "/tmp"):
        response = http.post("/api/v1/models/import", json={"path": str(source), "publisher": publisher})
        openai_error(response, 400)
        cli = server.lms("import", str(source), "--publisher", publisher, "--yes", check=False)
        assert cli.returncode != 0 and "Traceback" not in cli.stderr, cli.stderr
        assert cli.stderr.strip().startswith("Error"), cli.stderr
    assert sorted(p.name for p in models_dir.iterdir()) == before
    assert not (models_dir.parent / "escape-Q4_0.gguf").exists()


def test_sdk_upload_names_never_become_paths(server: Server, token: str, tmp_path: Path) -> None:
    target = tmp_path / "planted.txt"
    name = f"../../../../../../../..{target}"
    with lms.Client(f"{token}@127.0.0.1:{server.port}") as client:
        # lmstudio 1.5 has prepare_image only; it uploads any bytes with uploadFileBase64
        handle = client.files.prepare_image(b"hello from the upload", name=name)
        assert "/" not in handle.identifier and ".." not in handle.identifier
        assert handle.name == name  # the name is kept as metadata, never used as a path
    assert not target.exists()
    uploads = server.home / "openlms" / "uploads"
    stored = [p for p in uploads.rglob("*") if p.is_file() and not p.name.endswith(".json")]
    assert [p.read_bytes() for p in stored] == [b"hello from the upload"]
    assert all(uploads.resolve() in p.resolve().parents for p in stored)


# -- templates ----------------------------------------------------------------------------------------------


def chat_with_template(http: httpx.Client, template: str) -> httpx.Response:
    spec = {"type": "jinja", "jinjaPromptTemplate": {"template": template}}
    put = http.put(
        "/api/v1/models/config", params={"model": CHAT_MODEL}, json={"prediction": {"promptTemplate": spec}}
    )
    if put.status_code != 200:
        return put  # refused when saved
    return http.post(
        "/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 2}
    )


@pytest.mark.parametrize("template", [*SANDBOX_ESCAPES, ENDLESS])
def test_a_hostile_chat_template_is_refused_and_the_server_answers_after(
    http: httpx.Client, template: str
) -> None:
    try:
        response = chat_with_template(http, template)
        error = openai_error(response, 400)
        assert (
            "__" not in error["message"]
            or "unsafe" in error["message"].lower()
            or "template" in error["message"].lower()
        )
        assert "uid=" not in response.text
    finally:
        http.delete("/api/v1/models/config", params={"model": CHAT_MODEL})
    assert not Path("/tmp/openlms-pwned").exists()
    ok = http.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 2})
    assert ok.status_code == 200, ok.text


# -- limits -------------------------------------------------------------------------------------------------


def test_a_huge_context_and_a_deep_body_are_refused_at_once(http: httpx.Client) -> None:
    load = http.post("/api/v1/models/load", json={"model": CHAT_MODEL, "config": {"context_length": 10**9}})
    openai_error(load, 400)
    deep: Any = "x"
    for _ in range(200):
        deep = [deep]
    nested = http.post("/v1/chat/completions", json={"model": CHAT_MODEL, "messages": MESSAGES, "stop": deep})
    openai_error(nested, 400)
    stops = http.post(
        "/v1/chat/completions",
        json={"model": CHAT_MODEL, "messages": MESSAGES, "stop": [str(i) for i in range(10_000)]},
    )
    openai_error(stops, 400)
