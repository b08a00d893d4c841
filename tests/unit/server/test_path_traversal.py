"""Path traversal through the HTTP APIs (issue 10 §3): model keys (`/api/v0/models/{model}`, per-model
settings GET/PUT/DELETE), load identifiers and imports, with `..`, absolute paths, URL-encoded and
double-encoded separators and symbolic links out of the folder. Each is refused with a 4xx in the API's
error format (or, for an identifier, kept as a name that never becomes a path) and nothing is read or
written outside the server's folders. The real app over the fake engine; `tests/e2e/test_security_e2e.py`
repeats the raw-path cases through the real server.

Not covered because the features do not exist yet: conversation files and model downloads.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.support.tiny_gguf import write_tiny_llama_gguf

CONFIG_URL = "/api/v1/models/config"
SECRET = "top secret, outside every openlms folder"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the home (not inside it), with a secret file and a loadable GGUF."""
    folder = tmp_path.parent / f"{tmp_path.name}-outside"
    folder.mkdir()
    (folder / "secret.txt").write_text(SECRET)
    write_tiny_llama_gguf(folder / "evil-F32.gguf", name="Evil")
    return folder


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under `roots` (not following links) with its size and mtime."""
    out: dict[str, tuple[int, int]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*filenames, *dirnames]:
                path = Path(dirpath) / name
                st = path.lstat()
                out[str(path)] = (st.st_size, st.st_mtime_ns)
    return out


def model_keys(outside: Path) -> list[str]:
    """Hostile model keys, as they arrive in a query string (httpx encodes them)."""
    return [
        "../../../../etc/passwd",
        "../outside/evil-F32.gguf",
        f"acme/tiny-chat-GGUF/../../../{outside.name}/evil-F32.gguf",
        "acme/../../secret.txt",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%252e%252e%252fetc%252fpasswd",
        "..\\..\\etc\\passwd",
        "/etc/passwd",
        str(outside / "evil-F32.gguf"),
        str(outside / "secret.txt"),
        "acme/tiny-chat-GGUF/tiny-chat-F32.gguf/../../../../etc/passwd",
    ]


def is_openai_error(response: httpx.Response, *statuses: int) -> bool:
    if response.status_code not in statuses:
        return False
    error = response.json().get("error")
    return isinstance(error, dict) and isinstance(error.get("message"), str)


async def test_model_keys_out_of_the_folder_are_not_found(
    client: httpx.AsyncClient, home: Path, outside: Path
) -> None:
    before = snapshot(home, outside)
    for key in model_keys(outside):
        for method in ("GET", "PUT", "DELETE"):
            response = await client.request(method, CONFIG_URL, params={"model": key}, json={"load": {}})
            assert is_openai_error(response, 400, 404), (method, key, response.text)
            assert SECRET not in response.text
        load = await client.post("/api/v1/models/load", json={"model": key})
        assert is_openai_error(load, 400, 404), (key, load.text)
    assert snapshot(home, outside) == before


@pytest.mark.parametrize(
    "raw_path",
    [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "%2Fetc%2Fpasswd",
        "acme%2Ftiny-chat-GGUF%2F..%2F..%2F..%2Fsecret.txt",
        "..%5C..%5Cetc%5Cpasswd",
    ],
)
async def test_v0_model_paths_out_of_the_folder_are_404(
    client: httpx.AsyncClient, outside: Path, raw_path: str
) -> None:
    response = await client.get(f"/api/v0/models/{raw_path}")
    assert is_openai_error(response, 404), response.text
    assert SECRET not in response.text and "root:" not in response.text


async def test_an_absolute_path_outside_the_models_folder_is_not_a_model(
    client: httpx.AsyncClient, outside: Path
) -> None:
    """A GGUF outside the models folder is never listed, loaded or configured by its path."""
    evil = str(outside / "evil-F32.gguf")
    assert is_openai_error(await client.get(f"/api/v0/models/{evil}"), 404)
    listed = (await client.get("/api/v1/models")).json()["models"]
    assert all("evil" not in m["key"].lower() for m in listed)
    chat = await client.post(
        "/v1/chat/completions", json={"model": evil, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert is_openai_error(chat, 400, 404), chat.text


async def test_model_settings_never_follow_a_link_out_of_their_folder(
    client: httpx.AsyncClient, home: Path, outside: Path
) -> None:
    """A link inside `model-config` pointing out of it (planted by another program) is refused: the PUT
    writes nothing through it and the GET reads nothing through it."""
    config_root = home / "openlms" / "model-config"
    config_root.mkdir(parents=True)
    (config_root / "acme").symlink_to(outside, target_is_directory=True)
    (outside / "tiny-chat-GGUF").mkdir()
    planted = outside / "tiny-chat-GGUF" / "tiny-chat-F32.gguf.json"
    planted.write_text('{"load": {"contextLength": 999}}')
    before = snapshot(outside)
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(
            method, CONFIG_URL, params={"model": "tiny-chat"}, json={"load": {"contextLength": 2048}}
        )
        assert is_openai_error(response, 400), (method, response.text)
    assert snapshot(outside) == before


@pytest.mark.parametrize(
    ("publisher", "repo"),
    [
        ("..", None),
        ("../..", None),
        ("acme", ".."),
        ("acme", "../../escaped"),
        ("acme/../..", "x"),
        ("%2e%2e", "%2e%2e%2fescaped"),
        ("/tmp", "x"),
        ("acme", "/tmp/escaped"),
        ("..\\..", "x"),
        (".hidden", "x"),
    ],
)
async def test_import_destinations_out_of_the_models_folder_are_refused(
    client: httpx.AsyncClient, home: Path, outside: Path, publisher: str, repo: str | None
) -> None:
    before = snapshot(home, outside)
    body: dict[str, object] = {"path": str(outside / "evil-F32.gguf"), "publisher": publisher}
    if repo is not None:
        body["repo"] = repo
    response = await client.post("/api/v1/models/import", json=body)
    if response.status_code == 200:  # an encoded name is a plain (odd) folder name inside the models
        path = (home / "models" / response.json()["path"]).resolve()
        assert (home / "models").resolve() in path.parents
    else:
        assert is_openai_error(response, 400), response.text
        assert snapshot(home, outside) == before
    assert not (home.parent / "escaped").exists() and not Path("/tmp/escaped").exists()


async def test_importing_a_link_to_a_non_model_file_is_refused(
    client: httpx.AsyncClient, home: Path, outside: Path
) -> None:
    """A `.gguf` name that links to any other file (here a secret) is refused before anything is copied."""
    link = outside / "innocent-Q4_0.gguf"
    link.symlink_to(outside / "secret.txt")
    before = snapshot(home)
    response = await client.post("/api/v1/models/import", json={"path": str(link)})
    assert is_openai_error(response, 400) and "not a GGUF file" in response.json()["error"]["message"]
    assert snapshot(home) == before


@pytest.mark.parametrize(
    "identifier", ["../../evil-identifier", "/tmp/evil-identifier", "..%2Fevil-identifier", "a/../../b"]
)
async def test_a_load_identifier_is_a_name_never_a_path(
    client: httpx.AsyncClient, home: Path, outside: Path, identifier: str
) -> None:
    before = snapshot(outside)
    response = await client.post("/api/v1/models/load", json={"model": "tiny-chat", "identifier": identifier})
    if response.status_code == 200:
        assert response.json()["model_instance_id"] == identifier
        chat = await client.post(
            "/v1/chat/completions",
            json={"model": identifier, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        )
        assert chat.status_code == 200, chat.text
    else:
        assert is_openai_error(response, 400), response.text
    assert snapshot(outside) == before
    for root in (home, home.parent):
        assert not any("evil-identifier" in p.name for p in root.rglob("*")), root
    assert not Path("/tmp/evil-identifier").exists()
