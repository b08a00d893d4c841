"""Concurrent clients for the parallel-prediction end-to-end tests: `openai` streams and `lmstudio` SDK
streams that record what they got, started together in threads; loads with a load config; `/metrics`
scraped with prometheus_client's parser; and the comparison of parallel answers with serial ones."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx
import lmstudio as lms
import openai
from prometheus_client.parser import text_string_to_metric_families

from tests.support.sdk import ENDLESS_GRAMMAR, greedy, host_of
from tests.support.server import CHAT_MODEL, NEVER_ENDS, Server

T = TypeVar("T")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
STREAM_TIMEOUT = 180.0  # seconds a client waits for the server before failing (never a hang)


@dataclass(frozen=True)
class Outcome:
    """What one stream got: its text and how it ended (an OpenAI `finish_reason` or an SDK stop reason;
    None when it never said)."""

    text: str
    finish: str | None
    chunks: int = 0


def load(server: Server, key: str, **config: object) -> str:
    """Load `key` through `POST /api/v1/models/load` with `config` (`parallel=4`, ...); its identifier."""
    body = {"model": key, "config": config}
    reply = httpx.post(f"{server.url}/api/v1/models/load", json=body, timeout=300)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["model_instance_id"])


def loaded_config(server: Server, identifier: str) -> dict[str, Any]:
    """`loaded_instances[].config` of `identifier` in `GET /api/v1/models`."""
    reply = httpx.get(f"{server.url}/api/v1/models", timeout=30)
    assert reply.status_code == 200, reply.text
    for model in reply.json()["models"]:
        for instance in model["loaded_instances"]:
            if instance["id"] == identifier:
                return cast(dict[str, Any], instance["config"])
    raise AssertionError(f"{identifier} is not loaded: {reply.text}")


def openai_client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0, timeout=STREAM_TIMEOUT
    )


def chat(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def openai_stream(
    server: Server,
    question: str,
    max_tokens: int,
    *,
    model: str = CHAT_MODEL,
    logit_bias: dict[str, float] | None = None,
    on_chunk: Callable[[int], bool] | None = None,
) -> Outcome:
    """A streamed chat at temperature 0; `logit_bias` defaults to NEVER_ENDS (the chat model writes
    until `max_tokens`). `on_chunk(count)` is called after each content chunk; when it returns False
    the client closes the stream there (it went away)."""
    bias = NEVER_ENDS if logit_bias is None else logit_bias
    text, finish, count = "", None, 0
    with openai_client(server) as client:
        stream = client.chat.completions.create(
            model=model,
            messages=chat(question),  # type: ignore[arg-type]
            temperature=0,
            max_tokens=max_tokens,
            logit_bias=bias,  # type: ignore[arg-type]
            stream=True,
        )
        with stream:
            for chunk in stream:
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
                if choice.delta.content:
                    count += 1
                    if on_chunk is not None and not on_chunk(count):
                        break
    return Outcome(text, finish, count)


def sdk_stream(
    server: Server,
    question: str,
    max_tokens: int,
    *,
    model: str = CHAT_MODEL,
    endless: bool = True,
    on_chunk: Callable[[int], bool] | None = None,
) -> Outcome:
    """A streamed `respond` through the `lmstudio` SDK (a client of its own) at temperature 0; `endless`:
    held by a grammar that never completes (it writes until `max_tokens`). `on_chunk(count)` is called
    after each fragment; when it returns False the client cancels the prediction (`stream.cancel()`)."""
    grammar = {"structured": {"type": "gbnf", "gbnfGrammar": ENDLESS_GRAMMAR}} if endless else {}
    config = greedy(max_tokens, **grammar)
    with lms.Client(host_of(server)) as client:
        llm = client.llm.model(model)
        stream = llm.respond_stream(question, config=config)
        count, cancelled = 0, False
        for count, _fragment in enumerate(stream, start=1):
            if not cancelled and on_chunk is not None and not on_chunk(count):
                stream.cancel()
                cancelled = True
        result = stream.result()
    return Outcome(result.content, result.stats.stop_reason, count)


def together(jobs: Sequence[Callable[[], T]], timeout: float = 2 * STREAM_TIMEOUT) -> list[T]:
    """Run `jobs` at once, each in a thread of its own, released together by a barrier; their results in
    order (a job's exception is raised here)."""
    barrier = threading.Barrier(len(jobs))

    def released(job: Callable[[], T]) -> T:
        barrier.wait(timeout=60)
        return job()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(released, job) for job in jobs]
        return [future.result(timeout=timeout) for future in futures]


def common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class Comparison:
    """Parallel answers against the serial ones: how many match exactly, and where the others part."""

    total: int
    same: int
    parted_at: list[tuple[int, int, int]]  # (stream, chars in common, serial length) per mismatch
    ended_apart: list[int]  # streams (one entry per mismatch) where one text is a prefix of the other

    @staticmethod
    def of(serial: Sequence[Outcome], rounds: Sequence[Sequence[Outcome]]) -> Comparison:
        parted = [
            (i, common_prefix(ref.text, got.text), len(ref.text))
            for run in rounds
            for i, (ref, got) in enumerate(zip(serial, run, strict=True))
            if got.text != ref.text
        ]
        ended_apart = [
            i
            for run in rounds
            for i, (ref, got) in enumerate(zip(serial, run, strict=True))
            if got.text != ref.text and (got.text.startswith(ref.text) or ref.text.startswith(got.text))
        ]
        total = sum(len(run) for run in rounds)
        return Comparison(total, total - len(parted), parted, ended_apart)

    def __str__(self) -> str:
        return (
            f"{self.same}/{self.total} streams equal to the serial run; "
            f"mismatches (stream, chars in common, length): {self.parted_at}; "
            f"only the end differs: {self.ended_apart}"
        )


def scrape(server: Server) -> Samples:
    """`/metrics` parsed by prometheus_client: value per (sample name, labels)."""
    reply = httpx.get(f"{server.url}/metrics", timeout=30)
    assert reply.status_code == 200, reply.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def wait_for(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()
