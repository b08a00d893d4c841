"""Request CPU work on the real server, as ratios against a baseline measured in the same run.

  .venv/bin/python bench/request_cpu.py [--model smollm2-135m-instruct] [--json out.json]

truncateMiddle   a chat of 2001 short messages that must be cut, vs one of 21 (max_tokens 1): the cut
                 renders the conversation O(log n) times, so the ratio stays near the size ratio
event loop       /v1/models latency while another client's chat template loops until its time limit,
                 vs idle: rendering runs in a worker thread, so other clients keep being served
endless template the looping request's answer (a 400) and how long it ran (template_timeout_s)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from harness import default_models_dir, find_model, free_port, start_server

from openlms.core.types import ContextOverflowPolicy
from openlms.services.overflow import fit, reserve_for_reply

ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def _messages(n_turns: int) -> list[dict[str, str]]:
    out = [{"role": "system", "content": "You are terse."}]
    for i in range(n_turns):
        out += [{"role": "user", "content": f"Note {i}."}, {"role": "assistant", "content": "Noted."}]
    return [*out, {"role": "user", "content": "Say OK."}]


def _timed_chat(http: httpx.Client, model: str, messages: list[dict[str, str]]) -> float:
    start = time.perf_counter()
    body = {"model": model, "messages": messages, "max_tokens": 1, "temperature": 0}
    response = http.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    return time.perf_counter() - start


def _latencies(http: httpx.Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        http.get("/v1/models").raise_for_status()
        out.append(time.perf_counter() - start)
        time.sleep(0.05)
    return out


def _set_prediction(http: httpx.Client, model: str, prediction: dict[str, Any]) -> None:
    http.put(
        "/api/v1/models/config", params={"model": model}, json={"prediction": prediction}
    ).raise_for_status()


def overflow_cut(model_key: str) -> dict[str, Any]:
    import llama_cpp

    from openlms.parsers.sandbox import RenderLimits
    from openlms.parsers.templates import ChatTemplate

    path = find_model(default_models_dir(), model_key).path
    vocab = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    template = ChatTemplate(str(vocab.metadata["tokenizer.chat_template"]))

    def tokenize(messages: Any, add_generation_prompt: bool) -> list[int]:
        text = template.render(messages, add_generation_prompt=add_generation_prompt, limits=RenderLimits())
        return vocab.tokenize(text.encode(), add_bos=False, special=True)

    def old(messages: list[dict[str, str]], n_ctx: int) -> None:
        kept, budget = list(messages), n_ctx - reserve_for_reply(n_ctx, None)
        while len(tokenize(kept, True)) > budget and len(kept) - 1 > 2:
            del kept[2]

    out: dict[str, Any] = {}
    for n_turns in (100, 200, 400, 1000):
        messages = _messages(n_turns)
        start = time.perf_counter()
        fit(messages, tokenize, n_ctx=1024, policy=ContextOverflowPolicy.TRUNCATE_MIDDLE, max_tokens=None)
        new_s = time.perf_counter() - start
        row = {"new_s": new_s}
        if n_turns <= 400:
            start = time.perf_counter()
            old(messages, 1024)
            old_s = time.perf_counter() - start
            row.update(old_s=old_s, speedup=old_s / new_s)
        out[f"{len(messages)}_messages"] = row
    return out


def truncate_middle(http: httpx.Client, model: str) -> dict[str, float]:
    _set_prediction(http, model, {"contextOverflowPolicy": "truncateMiddle"})
    _timed_chat(http, model, _messages(2))  # load and warm up
    small = min(_timed_chat(http, model, _messages(10)) for _ in range(5))
    large = min(_timed_chat(http, model, _messages(1000)) for _ in range(5))
    return {"chat_21_s": small, "chat_2001_s": large, "ratio": large / small}


def event_loop(http: httpx.Client, url: str, model: str) -> dict[str, Any]:
    idle = statistics.median(_latencies(http, 10))
    _set_prediction(
        http, model, {"promptTemplate": {"type": "jinja", "jinjaPromptTemplate": {"template": ENDLESS}}}
    )
    result: dict[str, Any] = {}

    def endless() -> None:
        start = time.perf_counter()
        with httpx.Client(base_url=url, timeout=600) as other:
            response = other.post("/v1/chat/completions", json={"model": model, "messages": _messages(1)})
        result.update(status=response.status_code, seconds=time.perf_counter() - start)

    worker = threading.Thread(target=endless)
    worker.start()
    time.sleep(0.5)
    busy = statistics.median(_latencies(http, 10))
    worker.join()
    _set_prediction(http, model, {"promptTemplate": None})
    return {"idle_ms": idle * 1000, "busy_ms": busy * 1000, "ratio": busy / idle, "endless": result}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cut = overflow_cut(args.model)
    print(json.dumps({"overflow_cut": cut}, indent=2))
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), default_models_dir(), free_port())
        try:
            with httpx.Client(base_url=server.url, timeout=600) as http:
                report = {
                    "overflow_cut": cut,
                    "truncate_middle": truncate_middle(http, args.model),
                    "event_loop": event_loop(http, server.url, args.model),
                }
        finally:
            server.lms("server", "stop", check=False)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
