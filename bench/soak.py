"""Soak: many concurrent streaming clients on the real server for a while (issue 10 §3).

    .venv/bin/python bench/soak.py [--clients 64] [--duration 600] [--json out.json]

`--clients` workers, spread in turn over `/v1/chat/completions` (the `openai` client), `/api/v0/chat/
completions` (httpx, SSE) and the `lmstudio` SDK (`respond_stream` and `complete_stream`), each streaming
short predictions back to back until `--duration` seconds have passed. One worker in `--drop-every`
(default 8) disconnects mid-stream on purpose, every time: it closes the connection after the first
fragment of a prediction that would run on. The criteria (the exit status is 1 when one fails):

* the workers that stay get no error at all;
* the server's RSS at the end is less than `--rss-growth` (5 %) above its RSS after the warm-up (every
  worker has finished one prediction);
* afterwards `lms ps` shows every instance idle (no request active or queued), and a plain chat answers.

`tests/e2e/test_soak_e2e.py` runs the same code for 60 seconds with fewer clients.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import lmstudio as lms
import openai

try:  # run as a script: bench/ is on sys.path
    from harness import Server, default_models_dir, free_port, start_server
except ModuleNotFoundError:  # imported by the tests as bench.soak
    from bench.harness import Server, default_models_dir, free_port, start_server

MODEL = "smollm2-135m-instruct"
KINDS = ("openai", "rest_v0", "sdk_chat", "sdk_complete")
# Bans SmolLM2's control tokens (ids 0-16, its end-of-generation tokens among them): a prediction then
# runs to max_tokens, so that a dropping client always leaves in the middle of a stream.
NEVER_ENDS: dict[str, float] = {str(token): -100 for token in range(17)}
STAY_TOKENS = 8  # small predictions for the clients that stay
DROP_TOKENS = 64  # long enough that the first fragment comes well before the end
MESSAGES = [{"role": "user", "content": "Tell me about the sea."}]


@dataclass
class Tally:
    """What the workers did, shared under a lock."""

    done: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # workers that stay: must stay empty
    drop_errors: list[str] = field(default_factory=list)  # dropping workers: reported, not a failure
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, drop: bool, error: str | None) -> None:
        with self.lock:
            if error is not None:
                (self.drop_errors if drop else self.errors).append(f"{kind}: {error}")
            elif drop:
                self.dropped[kind] += 1
            else:
                self.done[kind] += 1

    def finished(self) -> int:
        with self.lock:
            return sum(self.done.values()) + sum(self.dropped.values())


@dataclass
class Report:
    clients: int
    duration_s: float
    done: dict[str, int]
    dropped: dict[str, int]
    errors: list[str]
    drop_errors: list[str]
    rss_warm_mb: float
    rss_end_mb: float
    ps_after: list[dict[str, Any]]
    chat_after: bool
    max_rss_growth: float

    @property
    def rss_growth(self) -> float:
        return self.rss_end_mb / self.rss_warm_mb - 1.0 if self.rss_warm_mb else float("nan")

    @property
    def stuck(self) -> list[dict[str, Any]]:
        return [i for i in self.ps_after if i.get("queued") or i.get("active") or i.get("status") != "idle"]

    def failures(self, *, check_rss: bool = True) -> list[str]:
        out = []
        if self.errors:
            out.append(f"{len(self.errors)} error(s) for clients that stay, e.g. {self.errors[:3]}")
        if not sum(self.done.values()):
            out.append("no prediction finished")
        if self.stuck:
            out.append(f"instances still busy after the soak: {self.stuck}")
        if not self.chat_after:
            out.append("a plain chat after the soak failed")
        if check_rss and not self.rss_growth < self.max_rss_growth:
            out.append(f"RSS grew {self.rss_growth:.1%} after warm-up (limit {self.max_rss_growth:.0%})")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "duration_s": round(self.duration_s, 1),
            "done": self.done,
            "dropped": self.dropped,
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
            "drop_errors": len(self.drop_errors),
            "drop_error_samples": self.drop_errors[:5],
            "rss_warm_mb": round(self.rss_warm_mb, 1),
            "rss_end_mb": round(self.rss_end_mb, 1),
            "rss_growth": round(self.rss_growth, 4),
            "ps_after": self.ps_after,
            "chat_after": self.chat_after,
        }


# -- one prediction per kind ---------------------------------------------------------------------------


def _openai(server: Server, drop: bool) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="soak", max_retries=0, timeout=600)
    with client:
        stream = client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            **_tokens_kwargs(drop, "max_tokens"),
        )
        seen = 0
        for chunk in stream:
            seen += 1
            if drop and chunk.choices and chunk.choices[0].delta.content:
                stream.close()  # hang up mid-stream
                return
        if seen == 0:
            raise RuntimeError("an empty stream")


def _rest_v0(server: Server, drop: bool) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "stream": True, **_tokens_kwargs(drop, "max_tokens")}
    with (
        httpx.Client(base_url=server.url, timeout=600) as http,
        http.stream("POST", "/api/v0/chat/completions", json=body) as response,
    ):
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:300]!r}")
        done = False
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                break
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(f"error event: {chunk['error']}")
            if drop and any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                return  # leaving the `with` closes the connection mid-stream
        if not done:
            raise RuntimeError("the stream ended without [DONE]")


def _sdk(server: Server, drop: bool, chat: bool) -> None:
    config: dict[str, Any] = {"temperature": 0.7, "maxTokens": DROP_TOKENS if drop else STAY_TOKENS}
    if drop:  # a grammar that never completes: the prediction runs to maxTokens
        config["structured"] = {"type": "gbnf", "gbnfGrammar": "root ::= [a-z ] root"}
    with lms.Client(f"127.0.0.1:{server.port}") as client:
        llm = client.llm.model(MODEL)
        stream: Any = (
            llm.respond_stream(MESSAGES[0]["content"], config=config)  # type: ignore[arg-type]
            if chat
            else llm.complete_stream("The sea is", config=config)  # type: ignore[arg-type]
        )
        for fragment in stream:
            if drop and fragment.content:
                return  # leaving the `with` closes the websockets mid-stream
        result = stream.result()
        if not result.stats.predicted_tokens_count:
            raise RuntimeError(f"no tokens predicted: {result.stats}")


def _tokens_kwargs(drop: bool, name: str) -> dict[str, Any]:
    if drop:
        return {name: DROP_TOKENS, "logit_bias": NEVER_ENDS}
    return {name: STAY_TOKENS}


PREDICT: dict[str, Callable[[Server, bool], None]] = {
    "openai": _openai,
    "rest_v0": _rest_v0,
    "sdk_chat": lambda server, drop: _sdk(server, drop, chat=True),
    "sdk_complete": lambda server, drop: _sdk(server, drop, chat=False),
}


# -- the soak ------------------------------------------------------------------------------------------


def server_rss_mb(server: Server) -> float:
    pid = json.loads((server.home / "openlms" / "server.json").read_text())["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _worker(server: Server, kind: str, drop: bool, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        try:
            PREDICT[kind](server, drop)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            detail = "".join(traceback.format_exception_only(exc)).strip()
            tally.record(kind, drop, detail[:500])
            time.sleep(0.5)  # a failing client must not spin
        else:
            tally.record(kind, drop, None)


def _idle_instances(server: Server, timeout: float = 120) -> list[dict[str, Any]]:
    """`lms ps --json` once every instance is idle, or the last answer after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        ps = server.lms_json("ps")
        assert isinstance(ps, list)
        busy = [i for i in ps if i.get("queued") or i.get("active") or i.get("status") != "idle"]
        if not busy or time.monotonic() > deadline:
            return ps
        time.sleep(1)


def _chat_works(server: Server) -> bool:
    with server.http() as http:
        response = http.post(
            "/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES, "max_tokens": 4}
        )
    return response.status_code == 200 and bool(response.json()["choices"])


def plan(clients: int, drop_every: int) -> list[tuple[str, bool]]:
    """Each worker's kind and whether it drops: one in `drop_every` drops; the kinds take turns among
    the workers that stay and among those that drop."""
    out: list[tuple[str, bool]] = []
    turns = Counter[bool]()
    for index in range(clients):
        drop = drop_every > 0 and index % drop_every == drop_every - 1
        out.append((KINDS[turns[drop] % len(KINDS)], drop))
        turns[drop] += 1
    return out


def soak(
    server: Server, *, clients: int, duration: float, drop_every: int = 8, max_rss_growth: float = 0.05
) -> Report:
    """Run the soak on a running server (its model is loaded first) and report what happened."""
    with server.http() as http:
        http.post("/api/v1/models/load", json={"model": MODEL}).raise_for_status()
    tally = Tally()
    started = time.monotonic()
    deadline = started + duration
    threads = []
    for index, (kind, drop) in enumerate(plan(clients, drop_every)):
        thread = threading.Thread(
            target=_worker, args=(server, kind, drop, deadline, tally), name=f"soak-{index}", daemon=True
        )
        thread.start()
        threads.append(thread)
    while tally.finished() < clients and time.monotonic() < deadline:
        time.sleep(0.5)  # warm-up: about one prediction per client
    rss_warm = server_rss_mb(server)
    for thread in threads:
        thread.join()
    rss_end = server_rss_mb(server)
    ps_after = _idle_instances(server)
    return Report(
        clients=clients,
        duration_s=time.monotonic() - started,
        done=dict(tally.done),
        dropped=dict(tally.dropped),
        errors=tally.errors,
        drop_errors=tally.drop_errors,
        rss_warm_mb=rss_warm,
        rss_end_mb=rss_end,
        ps_after=ps_after,
        chat_after=_chat_works(server),
        max_rss_growth=max_rss_growth,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--duration", type=float, default=600, help="seconds")
    p.add_argument("--drop-every", type=int, default=8, help="one client in N disconnects mid-stream")
    p.add_argument("--rss-growth", type=float, default=0.05, help="largest RSS growth after warm-up")
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), default_models_dir(), free_port())
        try:
            report = soak(
                server,
                clients=a.clients,
                duration=a.duration,
                drop_every=a.drop_every,
                max_rss_growth=a.rss_growth,
            )
        finally:
            server.lms("server", "stop", check=False)
    summary = report.to_json()
    print(json.dumps(summary, indent=2))
    if a.json:
        a.json.write_text(json.dumps(summary, indent=2))
    failures = report.failures()
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
