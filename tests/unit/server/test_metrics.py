"""GET /metrics on the real app over the fake engine, read with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from openlms.core.settings import Settings
from openlms.core.tokens import TokenStore
from openlms.core.types import GenerationStats, StopReason
from openlms.engine.fake import FakeBackend
from openlms.server.metrics.middleware import api_of
from openlms.server.metrics.registry import Metrics
from tests.unit.server.conftest import make_app
from tests.unit.server.test_sdk_protocol import connect, layers, messages, predict

CHAT = "acme/tiny-chat"
LOADED = "tiny-chat"  # the identifier it is loaded as (the metrics' model label)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


@pytest.fixture
def client(home: Path, fake: FakeBackend) -> Iterator[TestClient]:
    with TestClient(make_app(home, fake)) as test_client:
        yield test_client


def openai_client(client: TestClient, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0)


def test_chats_move_the_counters_by_their_usage(client: TestClient) -> None:
    oa = openai_client(client)
    ask: list[Any] = [{"role": "user", "content": "Capital of France?"}]
    first = oa.chat.completions.create(model=CHAT, messages=ask, temperature=0)
    stream = oa.chat.completions.create(
        model=CHAT, messages=ask, stream=True, stream_options={"include_usage": True}
    )
    usages = [first.usage] + [chunk.usage for chunk in stream if chunk.usage is not None]
    assert len(usages) == 2 and all(u is not None for u in usages)
    samples = scrape(client)

    assert value(samples, "openlms_http_requests_total", api="openai", status="200") == 2
    model = {"model": LOADED}
    prompt = sum(u.prompt_tokens for u in usages if u)
    predicted = sum(u.completion_tokens for u in usages if u)
    assert prompt > 0 and predicted > 1
    assert value(samples, "openlms_prompt_tokens_total", **model) == prompt
    assert value(samples, "openlms_predicted_tokens_total", **model) == predicted
    assert value(samples, "openlms_predictions_total", model=LOADED, stop_reason="eosFound") == 2
    assert value(samples, "openlms_time_to_first_token_seconds_count", **model) == 2
    assert value(samples, "openlms_time_per_output_token_seconds_count", **model) == 2
    assert value(samples, "openlms_models_loaded") == 1
    assert value(samples, "openlms_requests_processing", **model) == 0
    assert value(samples, "openlms_requests_queued", **model) == 0
    assert value(samples, "openlms_context_length_tokens", **model) > 0


def test_requests_are_labelled_by_api_and_status(client: TestClient) -> None:
    assert client.get("/v1/models").status_code == 200
    assert client.post("/v1/chat/completions", json={"model": "nope", "messages": []}).status_code >= 400
    assert client.get("/api/v0/models").status_code == 200
    assert client.get("/api/v1/models").status_code == 200
    assert client.get("/api/v0/models/no-such-model").status_code == 404
    samples = scrape(client)
    assert value(samples, "openlms_http_requests_total", api="openai", status="200") == 1
    errors = sum(
        v
        for (name, labels), v in samples.items()
        if name == "openlms_http_requests_total"
        and ("api", "openai") in labels
        and ("status", "200") not in labels
    )
    assert errors == 1
    assert value(samples, "openlms_http_requests_total", api="rest_v0", status="200") == 1
    assert value(samples, "openlms_http_requests_total", api="rest_v0", status="404") == 1
    assert value(samples, "openlms_http_requests_total", api="rest_v1", status="200") == 1
    # the scrape itself is counted after it is answered: the next scrape sees it
    assert value(scrape(client), "openlms_http_requests_total", api="other", status="200") == 1


def test_sdk_calls_and_predictions_are_counted(client: TestClient) -> None:
    for sock in connect(client, "llm"):
        sent = messages(predict(sock, "Hello", config=layers(temperature=0)))
        stats: dict[str, Any] = sent[-1]["stats"]
        sock.call("listLoaded")
    samples = scrape(client)
    assert value(samples, "openlms_sdk_calls_total", kind="channel") == 2  # getOrLoad, predict
    assert value(samples, "openlms_sdk_calls_total", kind="rpc") == 1
    assert value(samples, "openlms_prompt_tokens_total", model=LOADED) == stats["promptTokensCount"]
    assert value(samples, "openlms_predicted_tokens_total", model=LOADED) == stats["predictedTokensCount"]
    assert value(samples, "openlms_predictions_total", model=LOADED, stop_reason=stats["stopReason"]) == 1


def test_two_apps_keep_their_own_counts(home: Path, fake: FakeBackend, client: TestClient) -> None:
    assert client.get("/v1/models").status_code == 200
    with TestClient(make_app(home, fake)) as other:
        assert value(scrape(other), "openlms_http_requests_total", api="openai", status="200") == 0
    assert value(scrape(client), "openlms_http_requests_total", api="openai", status="200") == 1


def test_metrics_off_is_a_404(home: Path, fake: FakeBackend) -> None:
    with TestClient(make_app(home, fake, metrics=False)) as client:
        response = client.get("/metrics")
        assert response.status_code == 404
        assert "error" in response.json()


def test_metrics_need_a_token_when_auth_is_on(home: Path, fake: FakeBackend) -> None:
    token = TokenStore(Settings(home=home).tokens_file).create("tests")
    with TestClient(make_app(home, fake, require_auth=True)) as client:
        assert client.get("/metrics").status_code == 401
        samples = scrape(client, Authorization=f"Bearer {token.token}")
        assert value(samples, "openlms_http_requests_total", api="other", status="401") == 1


def test_a_prediction_with_cache_and_draft_stats() -> None:
    metrics = Metrics(CollectorRegistry())
    stats = GenerationStats(
        StopReason.MAX_TOKENS,
        prompt_tokens=100,
        predicted_tokens=11,
        time_to_first_token_s=0.2,
        generation_time_s=0.5,
        prompt_eval_time_s=0.2,
        cached_prompt_tokens=60,
        draft_tokens=12,
        accepted_draft_tokens=7,
        rejected_draft_tokens=5,
    )
    metrics.observe("m", stats)
    metrics.observe("m", GenerationStats(StopReason.EOS, 5, 0, 0.0, 0.0, 0.0))
    registry = metrics.registry
    assert registry.get_sample_value("openlms_prompt_cached_tokens_total", {"model": "m"}) == 60
    assert registry.get_sample_value("openlms_prompt_cache_hits_total", {"model": "m"}) == 1
    assert registry.get_sample_value("openlms_draft_tokens_total", {"model": "m"}) == 12
    assert registry.get_sample_value("openlms_draft_tokens_accepted_total", {"model": "m"}) == 7
    assert registry.get_sample_value("openlms_prompt_tokens_total", {"model": "m"}) == 105
    # no token predicted: no time to first token, no time per token
    assert registry.get_sample_value("openlms_time_to_first_token_seconds_count", {"model": "m"}) == 1
    assert registry.get_sample_value("openlms_time_per_output_token_seconds_sum", {"model": "m"}) == 0.05
    stopped = {"model": "m", "stop_reason": "maxPredictedTokensReached"}
    assert registry.get_sample_value("openlms_predictions_total", stopped) == 1


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1/chat/completions", "openai"),
        ("/api/v0/models", "rest_v0"),
        ("/api/v1/logs/stream", "rest_v1"),
        ("/metrics", "other"),
        ("/v1", "other"),
    ],
)
def test_api_of_a_path(path: str, api: str) -> None:
    assert api_of(path) == api
