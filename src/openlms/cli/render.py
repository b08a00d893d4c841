"""Pure text formatting for `lms` output: sizes, durations, the `ls` tables, the `ps` listing.

Sizes use decimal units (1 GB = 10^9 bytes) with two decimals, as LM Studio prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from openlms.cli.getmodel import DownloadChoice, SearchResult
from openlms.cli.schema import CrashInfo, LoadedInstance, ModelInfo
from openlms.core.display import architecture_display

LLM_SECTION = "LLMs (Large Language Models)"
EMBEDDING_SECTION = "Embedding Models"
NO_MODELS_LOADED = "No models are currently loaded."
RECENT_CRASH_S = 3600  # lms ps shows worker crashes of the last hour

_GAP = " " * 6
_SIZE_UNITS = (("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12))


def format_size(num_bytes: int) -> str:
    """`98362432` -> `98.36 MB`; decimal units, two decimals."""
    if num_bytes < 1000:
        return f"{max(num_bytes, 0)} B"
    for unit, scale in _SIZE_UNITS:
        value = num_bytes / scale
        if round(value, 2) < 1000 or unit == _SIZE_UNITS[-1][0]:
            return f"{value:.2f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_duration(seconds: float) -> str:
    """`45` -> `45s`, `150` -> `2m 30s`, `3600` -> `60m`, `5400` -> `1h 30m`."""
    total = max(int(seconds), 0)
    if total < 60:
        return f"{total}s"
    if total <= 3600:
        minutes, secs = divmod(total, 60)
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    return f"{hours}h {minutes}m" if minutes else f"{hours}h"


def pretty_architecture(architecture: str | None) -> str:
    return architecture_display(architecture) or ""


def type_label(model_type: str) -> str:
    return "Embedding" if model_type == "embedding" else "LLM"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# ---------------------------------------------------------------------------------------------------
# lms ls


def filter_models(models: Sequence[ModelInfo], *, llm: bool, embedding: bool) -> list[ModelInfo]:
    """`--llm` keeps LLMs, `--embedding` embedding models, both or neither keep everything."""
    if llm == embedding:
        return list(models)
    return [m for m in models if m.is_embedding == embedding]


def render_ls(
    models: Sequence[ModelInfo], *, detailed: bool = False, filtered: bool = False, variants: bool = False
) -> str:
    """The whole `lms ls` output for the (already filtered) models; `variants`: a model's several files
    (quantizations, a model.yaml model's bases) listed under one row."""
    if not models:
        return "No models match the filter." if filtered else "You have not downloaded any models yet."
    total = sum(m.size_bytes for m in models if not m.virtual)  # a virtual model's file is listed too
    every = list(models)
    if variants:
        models = fold_variants(models)
    sections = [
        (title, [m for m in models if m.is_embedding == is_emb])
        for title, is_emb in ((LLM_SECTION, False), (EMBEDDING_SECTION, True))
    ]
    sections = [(title, rows) for title, rows in sections if rows]
    widths = _column_widths(sections)
    lines = [f"You have {plural(len(models), 'model')}, taking up {format_size(total)} of disk space."]
    for title, rows in sections:
        lines += ["", _table_line(widths, title, "PARAMS", "ARCHITECTURE", "SIZE")]
        for model in rows:
            lines.append(_model_row(widths, model))
            if variants:
                lines += variant_lines(model, every)
            if detailed:
                lines += [f"    {detail}" for detail in model_details(model)]
    return "\n".join(lines)


def fold_variants(models: Sequence[ModelInfo]) -> list[ModelInfo]:
    """One row per model: the files of a model with several quantizations fold into its first row, which
    takes the variants' common key (`qwen3-8b` for `qwen3-8b@q4_k_m` and `qwen3-8b@q8_0`)."""
    out: list[ModelInfo] = []
    seen: set[tuple[str, ...]] = set()
    for model in models:
        if not model.variants or model.virtual:
            out.append(model)
        elif model.variants not in seen:
            seen.add(model.variants)
            bases = {v.split("@", 1)[0] for v in model.variants}
            out.append(replace(model, key=bases.pop()) if len(bases) == 1 else model)
    return out


def variant_lines(model: ModelInfo, models: Sequence[ModelInfo]) -> list[str]:
    """`lms ls --variants`' lines under a model with several files: each variant (with its size and
    quantization when it is listed itself), the selected one of a model.yaml model marked."""
    by_key = {m.key: m for m in models}
    lines = []
    for variant in model.variants:
        listed = by_key.get(variant)
        facts = [f for f in (listed and listed.quantization, listed and format_size(listed.size_bytes)) if f]
        mark = "*" if model.virtual and variant == model.selected_variant else "-"
        lines.append(f"    {mark} {variant}" + (f"  ({', '.join(facts)})" if facts else ""))
    return lines


def _column_widths(sections: Sequence[tuple[str, Sequence[ModelInfo]]]) -> tuple[int, int, int, int]:
    models = [m for _, rows in sections for m in rows]
    return (
        max([len(title) for title, _ in sections] + [len(m.key) for m in models]),
        max([6] + [len(m.params_string or "") for m in models]),
        max([12] + [len(pretty_architecture(m.architecture)) for m in models]),
        max([9] + [len(format_size(m.size_bytes)) for m in models]),
    )


def _table_line(widths: tuple[int, int, int, int], name: str, params: str, arch: str, size: str) -> str:
    name_w, params_w, arch_w, size_w = widths
    pad = arch_w - len(arch)
    arch_cell = " " * (pad // 2) + arch + " " * (pad - pad // 2)
    return f"{name.ljust(name_w)}{_GAP}{params.rjust(params_w)}{_GAP}{arch_cell}{_GAP}{size.rjust(size_w)}"


def _model_row(widths: tuple[int, int, int, int], model: ModelInfo) -> str:
    line = _table_line(
        widths,
        model.key,
        model.params_string or "",
        pretty_architecture(model.architecture),
        format_size(model.size_bytes),
    )
    if model.error:
        line += f"   ⚠ cannot be loaded: {model.error}"
    elif model.instances:
        count = len(model.instances)
        line += "   ✓ LOADED" + (f" ({count})" if count > 1 else "")
    return line.rstrip()


def model_details(model: ModelInfo) -> list[str]:
    """The extra lines `lms ls --detailed` prints under a model's row."""
    details = []
    if model.display_name:
        details.append(f"Display name: {model.display_name}")
    if model.publisher:
        details.append(f"Publisher: {model.publisher}")
    details.append(f"Path: {model.path}")
    if model.virtual:
        details.append("model.yaml model: loads the file above with the model.yaml's settings")
    if model.quantization:
        bits = f" ({model.bits_per_weight:g} bits per weight)" if model.bits_per_weight else ""
        details.append(f"Quantization: {model.quantization}{bits}")
    if model.max_context_length:
        details.append(f"Max context length: {model.max_context_length} tokens")
    flags = (("vision", model.vision), ("tool use", model.tool_use), ("reasoning", model.reasoning))
    capabilities = [name for name, on in flags if on]
    if capabilities:
        details.append(f"Capabilities: {', '.join(capabilities)}")
    details += [f"Loaded as: {i.identifier}" for i in model.instances]
    return details


# ---------------------------------------------------------------------------------------------------
# lms ps and lms status


def render_ps(instances: Sequence[LoadedInstance]) -> str:
    if not instances:
        return NO_MODELS_LOADED
    lines = ["   LOADED MODELS"]
    for instance in instances:
        lines += ["", *instance_lines(instance)]
    return "\n".join(lines)


def crash_lines(crashes: Sequence[CrashInfo], now: float, loaded: frozenset[str] = frozenset()) -> list[str]:
    """`lms ps`'s lines for model workers that crashed in the last hour (the server keeps the last 10);
    an instance in `loaded` (its identifier) was loaded again since."""
    recent = [c for c in crashes if c.at is None or now - c.at < RECENT_CRASH_S]
    if not recent:
        return []
    lines = ["", "   CRASHED (worker process died; load the model again to use it)", ""]
    for crash in recent:
        ago = "" if crash.at is None else f", {format_duration(now - crash.at)} ago"
        again = "; loaded again since" if crash.instance_id in loaded else ""
        lines.append(f"{crash.instance_id} ({crash.model}): {crash.exit}{ago}{again}")
    return lines


def instance_lines(instance: LoadedInstance) -> list[str]:
    lines = [
        f"Identifier: {instance.identifier}",
        f"  • Type:  {type_label(instance.type)}",
        f"  • Path: {instance.path}",
        f"  • Size: {format_size(instance.size_bytes)}",
    ]
    if instance.architecture:
        lines.append(f"  • Architecture: {pretty_architecture(instance.architecture)}")
    if instance.context_length:
        lines.append(f"  • Context length: {instance.context_length}")
    if instance.gpu not in (None, "off", 0.0) and instance.gpu_layers != 0:  # LM Studio's CPU-only shape
        lines.append(f"  • GPU offload: {gpu_offload_label(instance.gpu, instance.gpu_layers)}")
    if instance.parallel is not None:
        lines.append(f"  • Parallel: {instance.parallel}")
    status = instance.status
    if instance.active_requests:
        status += f" ({plural(instance.active_requests, 'active request')})"
    lines += [f"  • Status: {status}", f"  • Queued requests: {instance.queued_requests}"]
    if instance.ttl_seconds:
        idle = (
            f" (idle {format_duration(instance.idle_seconds)})" if instance.idle_seconds is not None else ""
        )
        lines.append(f"  • TTL: {format_duration(instance.ttl_seconds)}{idle}")
    return lines


def gpu_offload_label(gpu: str | float, layers: int | None) -> str:
    """`off (CPU only)`, `max (31 layers)`, `0.5 (16 layers)`."""
    if gpu == "off" or layers == 0:
        return "off (CPU only)"
    setting = gpu if isinstance(gpu, str) else f"{gpu:g}"
    return setting if layers is None else f"{setting} ({plural(layers, 'layer')})"


def render_status(port: int | None, instances: Sequence[LoadedInstance] | None) -> str:
    """`lms status`: the server state, then the loaded models (`None`: could not be listed)."""
    if port is None:
        return "Server:  OFF\n\nStart it with `lms server start`."
    lines = [f"Server:  ON  (port: {port})", ""]
    if instances is None:
        lines.append("Loaded models: unknown (the server did not answer)")
    elif not instances:
        lines.append("Loaded models: none")
    else:
        lines.append(f"Loaded models ({len(instances)})")
        lines += [f"  · {i.identifier} - {format_size(i.size_bytes)}" for i in instances]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# lms get


def search_result_labels(results: Sequence[SearchResult]) -> list[str]:
    """One aligned line per search result: name, downloads, likes, where it comes from."""
    width = max(len(r.name) for r in results)
    lines = []
    for result in results:
        counts = ""
        if result.downloads is not None or result.likes is not None:
            counts = f"  {_count(result.downloads):>7} downloads  {_count(result.likes):>6} likes"
        pick = "  ★ staff pick" if result.staff_pick else ""
        lines.append(f"{result.name.ljust(width)}{counts}  ({result.source}){pick}")
    return lines


def download_choice_labels(choices: Sequence[DownloadChoice]) -> list[str]:
    """One aligned line per quantization: name, size, fits / may not fit, recommended."""
    quant_w = max(len(c.quantization or "-") for c in choices)
    name_w = max(len(c.name) for c in choices)
    size_w = max(len(format_size(c.size_bytes)) for c in choices)
    fit_w = max(len(c.fit_mark) for c in choices)
    lines = []
    for choice in choices:
        line = (
            f"{(choice.quantization or '-').ljust(quant_w)}  {choice.name.ljust(name_w)}  "
            f"{format_size(choice.size_bytes).rjust(size_w)}  {choice.fit_mark.ljust(fit_w)}"
        )
        lines.append((line + ("  (recommended)" if choice.recommended else "")).rstrip())
    return lines


def _count(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return str(value)
