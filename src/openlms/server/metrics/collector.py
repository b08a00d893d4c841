"""Gauges read at scrape time from the loaded instances (nothing is kept between scrapes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from openlms.core.types import LoadedInstance

LoadedInstances = Callable[[], Sequence[LoadedInstance]]


class LoadedCollector:
    """Per loaded model: requests processing and queued, and its context length."""

    def __init__(self, loaded: LoadedInstances) -> None:
        self.loaded = loaded

    def collect(self) -> Iterable[Metric]:
        instances = self.loaded()
        count = GaugeMetricFamily("openlms_models_loaded", "Model instances loaded.", value=len(instances))
        processing = GaugeMetricFamily(
            "openlms_requests_processing", "Predictions running on a loaded model.", labels=("model",)
        )
        queued = GaugeMetricFamily(
            "openlms_requests_queued", "Predictions waiting for a loaded model.", labels=("model",)
        )
        context = GaugeMetricFamily(
            "openlms_context_length_tokens", "The context length a model was loaded with.", labels=("model",)
        )
        for instance in instances:
            waiting = instance.queued
            processing.add_metric((instance.identifier,), max(0, instance.active - waiting))
            queued.add_metric((instance.identifier,), waiting)
            context.add_metric((instance.identifier,), instance.context_length)
        return (count, processing, queued, context)
