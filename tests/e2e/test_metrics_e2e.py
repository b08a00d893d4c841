"""GET /metrics on the real server: a chat through the `openai` client and one through the `lmstudio`
SDK on the default model, then the scrape parsed with prometheus_client's own parser."""

from __future__ import annotations

import httpx
import lmstudio as lms
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.parallel import Samples, total
from tests.support.sdk import greedy, host_of
from tests.support.server import CHAT_MODEL, Server

pytestmark = [pytest.mark.e2e]


def scrape(server: Server) -> Samples:
    reply = httpx.get(f"{server.url}/metrics", timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def test_openai_and_sdk_chats_show_in_metrics(server: Server) -> None:
    with lms.Client(host_of(server)) as client:
        llm = client.llm.model(CHAT_MODEL)
        result = llm.respond("What is the capital of France?", config=greedy(8))
        model = llm.identifier
    sdk = result.stats
    assert sdk.prompt_tokens_count is not None and sdk.predicted_tokens_count is not None
    usages = []
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0) as oai:
        for _ in range(2):  # the same request twice: the second may reuse the first's prompt from the cache
            chat = oai.chat.completions.create(
                model=CHAT_MODEL,
                messages=[{"role": "user", "content": "Name a colour."}],
                temperature=0,
                max_tokens=8,
            )
            assert chat.usage is not None
            usages.append(chat.usage)

    samples = scrape(server)
    assert total(samples, "openlms_predictions_total", model=model) == 3
    prompt = sdk.prompt_tokens_count + sum(u.prompt_tokens for u in usages)
    predicted = sdk.predicted_tokens_count + sum(u.completion_tokens for u in usages)
    cached = [u.prompt_tokens_details.cached_tokens or 0 for u in usages if u.prompt_tokens_details]
    # the SDK's stats have no cached-token field: its share is only known to be >= 0
    assert total(samples, "openlms_prompt_cached_tokens_total", model=model) >= sum(cached)
    assert total(samples, "openlms_prompt_cache_hits_total", model=model) >= sum(1 for c in cached if c)
    assert total(samples, "openlms_prompt_tokens_total", model=model) == prompt
    assert total(samples, "openlms_predicted_tokens_total", model=model) == predicted
    assert total(samples, "openlms_time_to_first_token_seconds_count", model=model) == 3
    assert total(samples, "openlms_time_to_first_token_seconds_sum", model=model) > 0
    assert total(samples, "openlms_http_requests_total", api="openai", status="200") == 2
    assert total(samples, "openlms_sdk_calls_total", kind="channel") >= 2  # the load and the prediction
    assert total(samples, "openlms_requests_processing", model=model) == 0
    assert total(samples, "openlms_requests_queued", model=model) == 0
    assert total(samples, "openlms_context_length_tokens", model=model) > 0
    assert total(samples, "openlms_models_loaded") >= 1
