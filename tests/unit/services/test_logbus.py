"""The in-process log bus behind `lms log stream`, and the server log handler that feeds it."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from openlms.core.types import GenerationStats, StopReason
from openlms.server.logs.handler import LogBusHandler, attach_server_logs
from openlms.services.logbus import (
    INPUT_TYPE,
    OUTPUT_TYPE,
    LogBus,
    Subscription,
    model_input_event,
    model_output_event,
    prediction_stats,
)


class Untouchable(Mapping[str, Any]):
    """An event that fails if anything reads it: proves `publish` does no work without subscribers."""

    def __getitem__(self, key: str) -> Any:
        raise AssertionError("read")

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("read")

    def __len__(self) -> int:
        raise AssertionError("read")


async def take(events: Subscription, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [await anext(events) for _ in range(count)]

    return await asyncio.wait_for(collect(), timeout)


def test_publish_without_subscribers_costs_nothing() -> None:
    bus = LogBus()
    assert not bus.wants("model")
    bus.publish("model", Untouchable())  # not even copied


async def test_subscribers_get_events_in_order_and_leave_cleanly() -> None:
    bus = LogBus()
    async with bus.subscribe("model") as first, bus.subscribe("model") as second:
        assert bus.wants("model") and bus.subscriber_count("model") == 2
        for i in range(3):
            bus.publish("model", {"i": i})
        bus.publish("server", {"other": True})
        assert [e["i"] for e in await take(first, 3)] == [0, 1, 2]
        assert [e["i"] for e in await take(second, 3)] == [0, 1, 2]
        assert first.pending() == 0
    assert bus.subscriber_count("model") == 0
    bus.publish("model", Untouchable())


async def test_a_waiting_subscriber_wakes_up() -> None:
    bus = LogBus()
    async with bus.subscribe("model") as events:
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        bus.publish("model", {"n": 1})
        assert await asyncio.wait_for(waiting, 5) == {"n": 1}


async def test_a_cancelled_reader_unsubscribes() -> None:
    bus = LogBus()

    async def reader() -> None:
        async with bus.subscribe("model") as events:
            async for _ in events:
                pass

    task = asyncio.create_task(reader())
    while bus.subscriber_count("model") == 0:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bus.subscriber_count("model") == 0


async def test_a_slow_subscriber_loses_the_oldest_events_and_counts_them() -> None:
    bus = LogBus(queue_size=3)
    async with bus.subscribe("model") as events:
        for i in range(10_000):  # never blocks, however far behind the reader is
            bus.publish("model", {"i": i})
        assert events.dropped == 9_997
        assert [e["i"] for e in await take(events, 3)] == [9_997, 9_998, 9_999]


async def test_publishing_from_threads() -> None:
    bus = LogBus(queue_size=100_000)
    threads, per_thread = 4, 2_000

    def publish(worker: int) -> None:
        for i in range(per_thread):
            bus.publish("model", {"worker": worker, "i": i})

    async with bus.subscribe("model") as events:
        workers = [threading.Thread(target=publish, args=(w,)) for w in range(threads)]
        for worker in workers:
            worker.start()
        received = await take(events, threads * per_thread, timeout=30)
        for worker in workers:
            worker.join()
    assert events.dropped == 0
    for w in range(threads):
        assert [e["i"] for e in received if e["worker"] == w] == list(range(per_thread))


async def test_server_events_are_replayed_to_new_subscribers_model_events_never() -> None:
    bus = LogBus(server_backlog=2)
    for i in range(3):
        bus.publish("server", {"i": i})
    bus.publish("model", {"secret": "prompt"})
    async with bus.subscribe("server") as events:
        bus.publish("server", {"i": 3})
        assert [e["i"] for e in await take(events, 3)] == [1, 2, 3]
    async with bus.subscribe("model") as model:
        assert model.pending() == 0


async def test_model_event_helpers_as_a_predictor_publishes_them() -> None:
    bus = LogBus()
    stats = GenerationStats(
        stop_reason=StopReason.EOS,
        prompt_tokens=20,
        predicted_tokens=9,
        time_to_first_token_s=0.05,
        generation_time_s=0.16,
        prompt_eval_time_s=0.04,
    )
    async with bus.subscribe("model") as events:
        bus.publish("model", model_input_event("gemma-2-2b-it", "lmstudio-community/g/g.gguf", "<start>hi"))
        bus.publish(
            "model", model_output_event("gemma-2-2b-it", "lmstudio-community/g/g.gguf", "Hello!", None)
        )
        bus.publish("model", model_output_event("gemma-2-2b-it", "p", "Hi", prediction_stats(stats)))
        given, answered, with_stats = await take(events, 3)
    assert given.keys() == {"timestamp", "type", "modelIdentifier", "modelPath", "input"}
    assert given["type"] == INPUT_TYPE and given["input"] == "<start>hi"
    assert given["modelIdentifier"] == "gemma-2-2b-it" and given["modelPath"] == "lmstudio-community/g/g.gguf"
    assert isinstance(given["timestamp"], int) and given["timestamp"] > 1_700_000_000_000
    assert answered["type"] == OUTPUT_TYPE and answered["output"] == "Hello!" and "stats" not in answered
    assert with_stats["stats"] == {
        "tokensPerSecond": 50.0,
        "timeToFirstTokenSec": 0.05,
        "promptTokensCount": 20,
        "predictedTokensCount": 9,
        "totalTokensCount": 29,
        "stopReason": "eosFound",
    }


async def test_server_log_records_reach_the_bus() -> None:
    bus = LogBus()
    before = list(logging.getLogger("openlms").handlers)  # apps of other tests may have attached theirs
    detach = attach_server_logs(bus)
    logger = logging.getLogger("openlms.server.test")
    access = logging.getLogger("uvicorn.access")
    levels = logger.level, access.level
    logger.setLevel(logging.INFO)
    access.setLevel(logging.INFO)
    try:
        async with bus.subscribe("server") as events:
            logger.info("Server started on http://%s:%d", "127.0.0.1", 1234)
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/v1/models", "1.1", 200)
            threading.Thread(target=logger.warning, args=("from a thread",)).start()
            started, request, threaded = await take(events, 3)
    finally:
        detach()
        logger.setLevel(levels[0])
        access.setLevel(levels[1])
    assert started["message"] == "Server started on http://127.0.0.1:1234" and started["level"] == "INFO"
    assert started["logger"] == "openlms.server.test" and isinstance(started["timestamp"], int)
    assert request["message"] == '127.0.0.1:5000 - "GET /v1/models HTTP/1.1" 200'
    assert threaded["level"] == "WARNING"
    after = logging.getLogger("openlms").handlers
    assert [h for h in after if isinstance(h, LogBusHandler)] == [
        h for h in before if isinstance(h, LogBusHandler)
    ]


def test_a_handler_outliving_its_bus_does_nothing() -> None:
    bus = LogBus()
    handler = LogBusHandler(bus)
    del bus
    handler.emit(logging.LogRecord("openlms", logging.INFO, __file__, 1, "gone", None, None))
