"""`lms` and the REST APIs on the real server: load/unload, identifiers, JIT, TTL, auto-evict, settings."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support.server import (
    BASE_MODEL,
    CHAT_MODEL,
    EMBEDDING_MODEL,
    NEVER_ENDS,
    Server,
    free_port,
    start_server,
)

pytestmark = pytest.mark.e2e


def loaded(server: Server) -> dict[str, dict[str, object]]:
    instances = server.lms_json("ps")
    assert isinstance(instances, list)
    return {i["identifier"]: i for i in instances}


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def test_ls_lists_the_three_defaults(server: Server) -> None:
    text = server.lms("ls").stdout
    assert "LLMs (Large Language Models)" in text and "Embedding Models" in text
    for key in (CHAT_MODEL, BASE_MODEL, EMBEDDING_MODEL):
        assert key in text
    models = server.lms_json("ls")
    assert isinstance(models, list)
    by_key = {m["key"]: m for m in models}
    assert by_key[EMBEDDING_MODEL]["type"] == "embedding"
    assert by_key[CHAT_MODEL]["architecture"] == "llama" and by_key[CHAT_MODEL]["params_string"] == "135M"
    assert by_key[BASE_MODEL]["quantization"]["name"] == "Q4_K_M"
    llm_only = server.lms_json("ls", "--llm")
    llm_keys = {m["key"] for m in llm_only}  # type: ignore[union-attr]
    # the models directory may hold more (openlms-setup-models --extra), but --llm lists no embedding model
    assert llm_keys >= {CHAT_MODEL, BASE_MODEL} and EMBEDDING_MODEL not in llm_keys
    assert {m["type"] for m in llm_only} == {"llm"}  # type: ignore[union-attr]


def test_load_identifiers_and_unload(server: Server) -> None:
    server.unload_all()
    out = server.lms("load", CHAT_MODEL, "--context-length", "2048").stdout
    assert "loaded successfully" in out.lower()
    server.lms("load", CHAT_MODEL)
    server.lms("load", CHAT_MODEL, "--identifier", "my-smol")
    instances = loaded(server)
    assert set(instances) == {CHAT_MODEL, f"{CHAT_MODEL}:2", "my-smol"}
    assert instances[CHAT_MODEL]["contextLength"] == 2048 and instances[CHAT_MODEL]["jit"] is False
    duplicate = server.lms("load", CHAT_MODEL, "--identifier", "my-smol", check=False)
    assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
    with server.http() as http:  # the custom identifier serves requests
        answer = http.post(
            "/v1/chat/completions",
            json={"model": "my-smol", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
        )
        assert answer.status_code == 200
    server.lms("unload", "my-smol")
    assert set(loaded(server)) == {CHAT_MODEL, f"{CHAT_MODEL}:2"}
    server.unload_all()
    assert loaded(server) == {}


def test_cli_errors_are_one_line_with_nonzero_exit(server: Server) -> None:
    unknown = server.lms("load", "no-such-model", check=False)
    assert (
        unknown.returncode == 1
        and unknown.stderr.startswith("Error:")
        and len(unknown.stderr.strip().splitlines()) == 1
    )
    bad_gpu = server.lms("load", CHAT_MODEL, "--gpu", "lots", check=False)
    assert bad_gpu.returncode == 2 and "Traceback" not in bad_gpu.stderr
    no_tty = server.lms("load", check=False)
    assert no_tty.returncode != 0 and "lms ls" in no_tty.stderr
    gone = server.lms("unload", "not-loaded", check=False)
    assert gone.returncode != 0 and "Traceback" not in gone.stderr


def test_jit_load_ttl_and_auto_evict(server: Server) -> None:
    server.unload_all()
    server.lms("load", BASE_MODEL)  # manual: never auto-evicted
    with server.http() as http:
        chat = {
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 3,
            "ttl": 3,
        }
        assert http.post("/v1/chat/completions", json=chat).status_code == 200
        jit = loaded(server)[CHAT_MODEL]
        assert jit["jit"] is True and jit["ttl"] == 3
        embed = http.post("/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "hello", "ttl": 600})
        assert embed.status_code == 200
        # auto-evict: the JIT chat model made room for the JIT embedding model; the manual load stays
        assert set(loaded(server)) == {BASE_MODEL, EMBEDDING_MODEL}
        assert http.post("/v1/chat/completions", json=chat).status_code == 200
        assert set(loaded(server)) == {BASE_MODEL, CHAT_MODEL}
    # idle TTL (3 s) unloads the JIT model; the manual one stays
    assert wait_until(lambda: CHAT_MODEL not in loaded(server), timeout=15)
    assert BASE_MODEL in loaded(server)
    server.unload_all()


def test_lms_load_ttl_expires(server: Server) -> None:
    server.unload_all()
    server.lms("load", EMBEDDING_MODEL, "--ttl", "2")
    assert loaded(server)[EMBEDDING_MODEL]["ttl"] == 2
    assert wait_until(lambda: EMBEDDING_MODEL not in loaded(server), timeout=15)


def test_rest_v0_models_and_stats(server: Server) -> None:
    server.unload_all()
    with server.http() as http:
        models = {m["id"]: m for m in http.get("/api/v0/models").json()["data"]}
        assert models[EMBEDDING_MODEL]["type"] == "embeddings" and models[CHAT_MODEL]["state"] == "not-loaded"
        assert (
            models[CHAT_MODEL]["compatibility_type"] == "gguf"
            and models[CHAT_MODEL]["max_context_length"] == 8192
        )
        one = http.get(f"/api/v0/models/{BASE_MODEL}").json()
        assert one["arch"] == "gemma3" and one["publisher"]
        assert http.get("/api/v0/models/nope").status_code == 404
        body = {
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 8,
            "temperature": 0,
        }
        chat = http.post("/api/v0/chat/completions", json=body).json()
        assert chat["stats"]["stop_reason"] in ("eosFound", "maxPredictedTokensReached")
        assert chat["stats"]["tokens_per_second"] >= 0 and chat["stats"]["time_to_first_token"] > 0
        assert chat["model_info"] == {
            "arch": "llama",
            "quant": "Q4_1",
            "format": "gguf",
            "context_length": 4096,
        }
        assert chat["runtime"]["supported_formats"] == ["gguf"]
        assert http.get(f"/api/v0/models/{CHAT_MODEL}").json()["state"] == "loaded"
        completion = http.post(
            "/api/v0/completions",
            json={"model": BASE_MODEL, "prompt": "the meaning of life is", "max_tokens": 5},
        ).json()
        stop, tokens = completion["stats"]["stop_reason"], completion["usage"]["completion_tokens"]
        assert stop in ("maxPredictedTokensReached", "eosFound") and 0 < tokens <= 5  # the model may end
        assert tokens == 5 or stop == "eosFound"
        emb = http.post(
            "/api/v0/embeddings", json={"model": EMBEDDING_MODEL, "input": "Some text to embed"}
        ).json()
        assert len(emb["data"][0]["embedding"]) == 384


def test_load_endpoint_streams_progress(server: Server) -> None:
    with (
        server.http() as http,
        http.stream("POST", "/api/v1/models/load", json={"model": BASE_MODEL, "stream": True}) as r,
    ):
        events = [line for line in r.iter_lines() if line.startswith(("event:", "data:"))]
    names = [e.split(":", 1)[1].strip() for e in events if e.startswith("event:")]
    assert "progress" in names and names[-1] == "loaded"
    result = json.loads(events[-1].split(":", 1)[1])
    assert result["model_instance_id"].startswith(BASE_MODEL) and result["load_time_seconds"] > 0
    server.unload_all()


def test_server_state_persists_across_stop_and_start(tmp_path: Path, models_dir: Path) -> None:
    port = free_port()
    srv = start_server(tmp_path, models_dir, port, "--cors", "--no-jit")
    try:
        status = json.loads(srv.lms("server", "status", "--json").stdout)
        assert status == {"running": True, "port": port, "api_enabled": True}
        with srv.http() as http:
            cors = http.options(
                "/v1/models", headers={"Origin": "http://example.com", "Access-Control-Request-Method": "GET"}
            )
            assert cors.headers.get("access-control-allow-origin") in ("*", "http://example.com")
            assert http.get("/v1/models").json()["data"] == []  # JIT off: only loaded models
            refused = http.post(
                "/v1/chat/completions",
                json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "x"}]},
            )
            assert refused.status_code == 404 and "lms load" in refused.json()["error"]["message"]
        srv.lms("server", "stop")
        assert json.loads(srv.lms("server", "status", "--json").stdout) == {"running": False}
        srv.lms("server", "start")  # no flags: the last port, CORS and JIT settings come back
        assert json.loads(srv.lms("server", "status", "--json").stdout) == {
            "running": True,
            "port": port,
            "api_enabled": True,
        }
        with srv.http() as http:
            assert http.get("/v1/models").json()["data"] == []
            cors = http.options(
                "/v1/models", headers={"Origin": "http://example.com", "Access-Control-Request-Method": "GET"}
            )
            assert "access-control-allow-origin" in cors.headers
        assert (srv.home / "server-logs").is_dir()
    finally:
        srv.lms("server", "stop", check=False)


def test_default_bind_is_loopback_and_cors_off(server: Server) -> None:
    info = json.loads((server.home / "openlms" / "server.json").read_text())
    assert info["host"] == "127.0.0.1"
    with server.http() as http:
        r = http.options(
            "/v1/models", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in r.headers
        assert http.get("/lmstudio-greeting").json() == {"lmstudio": True}


def test_lms_import_gguf_and_bert_folder(tmp_path: Path) -> None:
    from tests.support.tiny_gguf import make_tiny_bert_folder, write_tiny_llama_gguf

    srv = start_server(tmp_path / "srv", tmp_path / "models", free_port())
    try:
        gguf = write_tiny_llama_gguf(tmp_path / "dl" / "Tiny-Import-Q8_0.gguf")
        out = srv.lms("import", str(gguf), "--publisher", "me", "--yes").stdout
        assert (
            "tiny-import" in out and (tmp_path / "models" / "me" / "Tiny-Import-GGUF" / gguf.name).is_file()
        )
        folder = make_tiny_bert_folder(tmp_path / "dl" / "tiny-sbert")
        srv.lms("import", str(folder), "--yes")
        keys = {m["key"]: m["type"] for m in srv.lms_json("ls")}  # type: ignore[union-attr]
        assert keys["tiny-import"] == "llm" and keys["text-embedding-tiny-sbert"] == "embedding"
        refused = srv.lms("import", str(gguf), "--publisher", "me", "--yes", check=False)
        assert refused.returncode == 1 and "already exists" in refused.stderr
        with srv.http() as http:
            chat = {"model": "tiny-import", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
            assert http.post("/v1/chat/completions", json=chat).status_code == 200
            emb = http.post("/v1/embeddings", json={"model": "text-embedding-tiny-sbert", "input": "hello"})
            assert emb.status_code == 200
    finally:
        srv.lms("server", "stop", check=False)


def test_lms_load_parallel_shows_in_ps_and_the_listings(server: Server) -> None:
    server.unload_all()
    out = server.lms("load", CHAT_MODEL, "--parallel", "2").stdout
    assert "loaded successfully" in out.lower()
    instance = loaded(server)[CHAT_MODEL]
    assert (instance["parallel"], instance["active"], instance["queued"]) == (2, 0, 0)
    assert "  • Parallel: 2\n" in server.lms("ps").stdout
    with server.http() as http:
        models = http.get("/api/v1/models").json()["models"]
        [config] = [i["config"] for m in models if m["key"] == CHAT_MODEL for i in m["loaded_instances"]]
        assert config["parallel"] == 2
        assert http.get(f"/api/v0/models/{CHAT_MODEL}").json()["parallel"] == 2
        refused = http.post("/api/v1/models/load", json={"model": CHAT_MODEL, "config": {"parallel": 65}})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "config.parallel"
    bad = server.lms("load", CHAT_MODEL, "--parallel", "0", check=False)
    assert bad.returncode != 0 and "--parallel" in bad.stderr
    server.unload_all()
    server.lms("load", CHAT_MODEL)  # unset: the engine's default
    assert loaded(server)[CHAT_MODEL]["parallel"] == 4
    server.unload_all()


def test_load_config_flash_attention_and_quantized_kv_cache(server: Server) -> None:
    server.unload_all()
    with server.http() as http:
        body = {
            "model": CHAT_MODEL,
            "identifier": "smol-q8kv",
            "config": {
                "context_length": 2048,
                "flash_attention": True,
                "k_cache_type": "q8_0",
                "v_cache_type": "q8_0",
                "eval_batch_size": 128,
            },
        }
        loaded = http.post("/api/v1/models/load", json=body).json()
        assert loaded["config"]["flash_attention"] is True and loaded["config"]["eval_batch_size"] == 128
        chat = {
            "model": "smol-q8kv",
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 8,
            "temperature": 0,
            "logit_bias": NEVER_ENDS,  # 8 tokens of text, whatever the model would say
        }
        answer = http.post("/v1/chat/completions", json=chat)
        assert answer.status_code == 200, answer.text
        assert (
            answer.json()["usage"]["completion_tokens"] == 8
            and answer.json()["choices"][0]["message"]["content"]
        )
    server.unload_all()


def test_queued_requests_show_in_ps(server: Server) -> None:
    """Three streamed completions that cannot end by themselves (end tokens banned, 4000 tokens) on a
    model loaded with `--parallel 1`: while the first runs, two wait. They are abandoned once seen, so how
    fast the machine writes (and what the model writes) does not matter."""
    server.unload_all()
    server.lms("load", CHAT_MODEL, "--parallel", "1")
    body = {
        "model": CHAT_MODEL,
        "prompt": "Once upon a time",
        "max_tokens": 4000,
        "logit_bias": NEVER_ENDS,
        "stream": True,
    }
    done = threading.Event()

    def complete() -> None:
        with server.http() as http, http.stream("POST", "/v1/completions", json=body) as response:
            for _line in response.iter_lines():
                if done.is_set():
                    break  # abandoned: the server stops generating it

    threads = [threading.Thread(target=complete) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        seen = wait_until(lambda: loaded(server)[CHAT_MODEL]["queued"] == 2, timeout=30)
        instance = loaded(server)[CHAT_MODEL]
    finally:
        done.set()
        for thread in threads:
            thread.join(120)
    assert seen, "two requests should wait behind the running one"
    assert instance["status"] == "generating"
    assert wait_until(lambda: loaded(server)[CHAT_MODEL]["queued"] == 0, timeout=30)
    server.unload_all()


def test_sdk_port_listens_and_a_busy_one_is_a_clear_error(tmp_path: Path, models_dir: Path) -> None:
    import socket

    sdk_port = free_port()
    srv = start_server(tmp_path / "a", models_dir, free_port(), "--sdk-port", str(sdk_port))
    try:
        with httpx.Client(timeout=10) as http:
            assert http.get(f"http://127.0.0.1:{sdk_port}/lmstudio-greeting").json() == {"lmstudio": True}
        assert f"lmstudio SDK port: {sdk_port}" in srv.lms("server", "status", "--verbose").stdout
    finally:
        srv.lms("server", "stop", check=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", sdk_port))
        busy.listen()
        home = tmp_path / "b"
        (home / "home" / "openlms").mkdir(parents=True)
        env_server = Server(home / "home", free_port(), srv.env | {"OPENLMS_HOME": str(home / "home")})
        result = env_server.lms(
            "server", "start", "--port", str(env_server.port), "--sdk-port", str(sdk_port), check=False
        )
    assert result.returncode != 0
    assert f"port {sdk_port} is already in use" in result.stderr and "--sdk-port" in result.stderr
