"""The metrics of one app, in its own `CollectorRegistry` (never the library's global one), and what feeds
them when a prediction ends. Names and labels are documented in docs/metrics.md."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from openlms.core.types import GenerationStats

TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TPOT_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
APIS = ("openai", "rest_v0", "rest_v1", "sdk", "other")


class Metrics:
    """Counters and histograms fed by the request middleware and by finished predictions."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "openlms_http_requests",
            "HTTP requests answered, by API and status code (counted when the response starts).",
            ("api", "status"),
            registry=registry,
        )
        self.sdk_calls = Counter(
            "openlms_sdk_calls",
            "SDK websocket calls received: kind 'rpc' (rpcCall) or 'channel' (channelCreate).",
            ("kind",),
            registry=registry,
        )
        self.predictions = Counter(
            "openlms_predictions",
            "Finished predictions, by model and stop reason.",
            ("model", "stop_reason"),
            registry=registry,
        )
        self.prompt_tokens = Counter(
            "openlms_prompt_tokens", "Prompt tokens of finished predictions.", ("model",), registry=registry
        )
        self.predicted_tokens = Counter(
            "openlms_predicted_tokens", "Tokens predicted.", ("model",), registry=registry
        )
        self.cached_tokens = Counter(
            "openlms_prompt_cached_tokens",
            "Prompt tokens reused from the KV cache (not evaluated again).",
            ("model",),
            registry=registry,
        )
        self.cache_hits = Counter(
            "openlms_prompt_cache_hits",
            "Predictions that reused at least one cached prompt token.",
            ("model",),
            registry=registry,
        )
        self.draft_tokens = Counter(
            "openlms_draft_tokens", "Tokens proposed by a draft model.", ("model",), registry=registry
        )
        self.draft_accepted = Counter(
            "openlms_draft_tokens_accepted",
            "Draft tokens verified by the model and output.",
            ("model",),
            registry=registry,
        )
        self.ttft = Histogram(
            "openlms_time_to_first_token_seconds",
            "Time from submission to the first predicted token.",
            ("model",),
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.tpot = Histogram(
            "openlms_time_per_output_token_seconds",
            "Mean time per output token after the first, one observation per prediction.",
            ("model",),
            buckets=TPOT_BUCKETS,
            registry=registry,
        )

    def observe(self, model: str, stats: GenerationStats) -> None:
        """One finished prediction (the Predictor's observer hook): a few increments, once per prediction."""
        self.predictions.labels(model, stats.stop_reason.value).inc()
        self.prompt_tokens.labels(model).inc(stats.prompt_tokens)
        self.predicted_tokens.labels(model).inc(stats.predicted_tokens)
        self.cached_tokens.labels(model).inc(stats.cached_prompt_tokens)
        if stats.cached_prompt_tokens > 0:
            self.cache_hits.labels(model).inc()
        if stats.draft_tokens:
            self.draft_tokens.labels(model).inc(stats.draft_tokens)
            self.draft_accepted.labels(model).inc(stats.accepted_draft_tokens)
        if stats.predicted_tokens > 0:
            self.ttft.labels(model).observe(stats.time_to_first_token_s)
        if stats.predicted_tokens > 1 and stats.generation_time_s > 0:
            self.tpot.labels(model).observe(stats.generation_time_s / (stats.predicted_tokens - 1))
