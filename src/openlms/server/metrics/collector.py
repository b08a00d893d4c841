"""Gauges and counters read at scrape time from the loaded instances and the manager's crash counts
(nothing is kept between scrapes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from openlms.core.types import LoadedInstance

LoadedInstances = Callable[[], Sequence[LoadedInstance]]
CountsByModel = Callable[[], Mapping[str, int]]  # model key -> count


def _gauge(name: str, text: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=("model",))


class LoadedCollector:
    """Per loaded model: requests processing and queued, its context length, and from the engine's usage
    snapshot its predictions running and queued, parallel slots and KV cache cells."""

    def __init__(self, loaded: LoadedInstances) -> None:
        self.loaded = loaded

    def collect(self) -> Iterable[Metric]:
        instances = self.loaded()
        count = GaugeMetricFamily("openlms_models_loaded", "Model instances loaded.", value=len(instances))
        processing = _gauge("openlms_requests_processing", "Predictions running on a loaded model.")
        queued = _gauge("openlms_requests_queued", "Predictions waiting for a loaded model.")
        context = _gauge("openlms_context_length_tokens", "The context length a model was loaded with.")
        running = _gauge("openlms_predictions_running", "Predictions in the model's parallel slots.")
        waiting = _gauge("openlms_predictions_queued", "Predictions waiting for a free slot of the model.")
        slots = _gauge("openlms_parallel_slots", "Predictions the model serves at once (its `parallel`).")
        kv_used = _gauge("openlms_kv_cache_used_cells", "KV cache cells in use (all sequences).")
        kv_size = _gauge("openlms_kv_cache_size_cells", "KV cache cells the model was loaded with.")
        for instance in instances:
            model = (instance.identifier,)
            usage = instance.usage
            processing.add_metric(model, max(0, instance.active - usage.queued))
            queued.add_metric(model, usage.queued)
            context.add_metric(model, instance.context_length)
            running.add_metric(model, usage.running)
            waiting.add_metric(model, usage.queued)
            slots.add_metric(model, usage.parallel)
            kv_used.add_metric(model, usage.kv_used)
            kv_size.add_metric(model, usage.kv_size)
        return (count, processing, queued, context, running, waiting, slots, kv_used, kv_size)


class WorkerCollector:
    """Model worker processes that died (`crashes`) and models loaded again after a crash (`restarts`),
    by model key, since the server started."""

    def __init__(self, crashes: CountsByModel, restarts: CountsByModel) -> None:
        self.crashes = crashes
        self.restarts = restarts

    def collect(self) -> Iterable[Metric]:
        crashes = CounterMetricFamily(
            "openlms_worker_crashes", "Model worker processes that died (by model key).", labels=("model",)
        )
        restarts = CounterMetricFamily(
            "openlms_worker_restarts",
            "Models loaded again (a new worker) after their worker crashed (by model key).",
            labels=("model",),
        )
        for key, n in sorted(self.crashes().items()):
            crashes.add_metric((key,), n)
        for key, n in sorted(self.restarts().items()):
            restarts.add_metric((key,), n)
        return (crashes, restarts)
