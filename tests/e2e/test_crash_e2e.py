"""A model worker killed with SIGKILL mid-stream (issue 11 §3) on the real server: the chat model and the
base model loaded (each in its worker process, `isolate_models` on by default), streams on both, then
the chat model's worker killed. Its requests end at once with a clean error (an SSE error event the
`openai` client raises as `APIError`, an OpenAI error object, an SDK error), the base model's stream
finishes, `lms ps` and the listings show the crash, /metrics counts it, and the next request loads the
chat model again (JIT) in a new worker."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import lmstudio as lms
import openai
import pytest

from tests.support.parallel import (
    Outcome,
    chat,
    load,
    openai_client,
    openai_stream,
    scrape,
    sdk_stream,
    total,
    wait_for,
)
from tests.support.server import BASE_MODEL, CHAT_MODEL, Server
from tests.support.workers import worker, workers

pytestmark = [pytest.mark.e2e]

LONG = 4000  # predictions that cannot end before the kill
GEMMA_ENDS = {str(token): -100.0 for token in (0, 1, 2, 3, 106)}  # pad, eos, bos, unk, end_of_turn
BASE_TOKENS = 64


def base_stream(server: Server, started: Callable[[], None]) -> Outcome:
    """A streamed completion on the base model that writes its BASE_TOKENS (its end tokens banned)."""
    text, finish = "", None
    with openai_client(server) as client:
        stream = client.completions.create(
            model=BASE_MODEL,
            prompt="The history of the lighthouse",
            temperature=0,
            max_tokens=BASE_TOKENS,
            logit_bias=GEMMA_ENDS,  # type: ignore[arg-type]
            stream=True,
        )
        for chunk in stream:
            if chunk.choices:
                if chunk.choices[0].text and not text:
                    started()
                text += chunk.choices[0].text
                finish = chunk.choices[0].finish_reason or finish
    return Outcome(text, finish)


def plain_chat(server: Server) -> httpx.Response:
    body = {"model": CHAT_MODEL, "messages": chat("Tell me about the sea."), "max_tokens": LONG}
    body["logit_bias"] = {str(token): -100 for token in range(17)}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=120)


def active(server: Server, identifier: str) -> int:
    reply = httpx.get(f"{server.url}/api/v1/models", timeout=30)
    assert reply.status_code == 200, reply.text
    return sum(
        int(i["active_requests"])
        for m in reply.json()["models"]
        for i in m["loaded_instances"]
        if i["id"] == identifier
    )


def test_sigkill_of_one_worker_mid_stream(server: Server) -> None:
    chat_id = load(server, CHAT_MODEL)
    load(server, BASE_MODEL)
    killed = worker(server, CHAT_MODEL)
    assert worker(server, BASE_MODEL).pid != killed.pid
    started = threading.Barrier(4)  # three streams at their first fragment, and this test

    def first(count: int) -> bool:
        if count == 1:
            started.wait(timeout=120)
        return True

    with ThreadPoolExecutor(max_workers=4) as pool:
        on_chat_openai = pool.submit(openai_stream, server, "Tell me a story.", LONG, on_chunk=first)
        on_chat_sdk = pool.submit(sdk_stream, server, "Tell me a story.", LONG, on_chunk=first)
        on_base = pool.submit(base_stream, server, lambda: started.wait(timeout=120))
        started.wait(timeout=120)
        on_chat_plain = pool.submit(plain_chat, server)
        assert wait_for(lambda: active(server, chat_id) == 3, 30)  # the plain chat runs too
        killed.send_signal(signal.SIGKILL)
        check_failed(on_chat_openai, on_chat_sdk, on_chat_plain)
        other = on_base.result(timeout=120)
    assert other.finish == "length" and other.text, other
    killed.wait(timeout=30)  # the server reaped it
    check_listed_as_crashed(server, chat_id)
    check_reload(server, killed.pid)


def check_failed(openai_stream: Future[Outcome], sdk: Future[Outcome], plain: Future[httpx.Response]) -> None:
    """Every request of the killed model ends, each with its API's error that names the crash."""
    with pytest.raises(openai.APIError) as streamed:
        openai_stream.result(timeout=60)
    assert not isinstance(streamed.value, openai.APIConnectionError), streamed.value  # an error event
    body: Any = streamed.value.body
    assert isinstance(body, dict) and body.get("code") == "model_crashed", body
    assert "crashed" in streamed.value.message
    with pytest.raises(lms.LMStudioServerError) as error:
        sdk.result(timeout=60)
    assert "crashed" in str(error.value)
    reply = plain.result(timeout=60)
    assert reply.status_code >= 500, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json()["error"]["code"] == "model_crashed", reply.text


def check_listed_as_crashed(server: Server, identifier: str) -> None:
    """The chat model is no longer loaded, the crash is listed (`lms ps`, /api/v1/models) and counted."""
    assert identifier not in {i["identifier"] for i in server.lms_json("ps")}  # type: ignore[union-attr]
    assert CHAT_MODEL in server.lms("ps").stdout.split("CRASHED", 1)[1]
    with server.http() as http:
        models = http.get("/api/v1/models").json()
        crashes = models["recent_crashes"]
        assert [c for c in crashes if identifier in str(c.values())], crashes
        v0 = http.get(f"/api/v0/models/{CHAT_MODEL}").json()
        assert v0["state"] == "not-loaded", v0
        assert http.get(f"/api/v0/models/{BASE_MODEL}").json()["state"] == "loaded"
    samples = scrape(server)
    assert total(samples, "openlms_worker_crashes_total", model=CHAT_MODEL) == 1
    assert total(samples, "openlms_worker_crashes_total", model=BASE_MODEL) == 0


def check_reload(server: Server, old_pid: int) -> None:
    """The next request loads the chat model again just in time, in a new worker; so does `lms load`."""
    with openai_client(server) as client:
        reply = client.chat.completions.create(
            model=CHAT_MODEL,
            messages=chat("Say hi."),
            max_tokens=8,
            temperature=0,  # type: ignore[arg-type]
        )
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert worker(server, CHAT_MODEL).pid != old_pid
    assert total(scrape(server), "openlms_worker_restarts_total", model=CHAT_MODEL) == 1
    server.lms("unload", "--all")
    assert wait_for(lambda: not workers(server, CHAT_MODEL) and not workers(server, BASE_MODEL), 30)
    server.lms("load", CHAT_MODEL, "-y")
    again = server.lms_json("ps")
    assert [i["modelKey"] for i in again] == [CHAT_MODEL], again  # type: ignore[union-attr,index]
    worker(server, CHAT_MODEL)
