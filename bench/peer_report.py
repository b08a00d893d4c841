"""The numbers of bench/peers.py's rounds summed up: medians, paired ratios, the targets of issue 11, and
the one table it prints."""

from __future__ import annotations

import math
import statistics
from typing import Any

MEMORY_MARGIN_MB = 150.0


def med(values: list[float]) -> float:
    clean = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(clean) if clean else float("nan")


def paired(num: list[float], den: list[float]) -> float:
    """Median of the per-round ratios (each round ran both back to back, so drift cancels out)."""
    return med([n / d for n, d in zip(num, den, strict=False) if d])


def _streams(rounds: dict[str, list[dict[str, Any]]], n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, runs in rounds.items():
        out[side] = {
            "aggregate_tps": med([r["aggregate_tps"] for r in runs]),
            "completed_min": min(r["completed"] for r in runs),
            "full_length_min": min(r["full_length"] for r in runs),
            "ttft_p50_s": med([r["ttft_p50_s"] for r in runs]),
            "ttft_p95_s": med([r["ttft_p95_s"] for r in runs]),
            "errors": [e for r in runs for e in r["errors"]][:3],
            "rounds": runs,
        }
    ours, theirs = rounds["openlms"], rounds["llama-server"]
    out["ratio"] = paired([r["aggregate_tps"] for r in ours], [r["aggregate_tps"] for r in theirs])
    out["streams"] = n
    return out


def _conversations(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, runs in rounds.items():
        out[side] = {
            "cold_ttft_s": med([r["cold_ttft_s"] for r in runs]),
            "follow_up_ttft_s": med([r["follow_up_ttft_s"] for r in runs]),
            "follow_up_vs_cold": med([r["follow_up_vs_cold"] for r in runs]),
            "requests_failed": sum(r["requests_failed"] for r in runs),
            "rounds": runs,
        }
    return out


def summarize(
    setup: dict[str, Any],
    streams: dict[str, Any],
    convs: dict[str, list[dict[str, Any]]],
    mem: dict[str, Any],
    counts: list[int],
) -> dict[str, Any]:
    single = streams["single"]
    res: dict[str, Any] = {"setup": setup, "memory": mem}
    res["single"] = {
        "openlms_tps": med(single["openlms"]),
        "llama_server_tps": med(single["llama-server"]),
        "raw_tps": med(single["raw"]),
        "vs_llama_server": paired(single["openlms"], single["llama-server"]),
        "vs_raw": paired(single["openlms"], single["raw"]),
        "rounds": single,
    }
    for n in counts:
        res[f"streams_{n}"] = _streams(streams[f"streams_{n}"], n)
    if 1 in counts:
        for n in counts:
            for side in ("openlms", "llama-server"):
                multi = [r["aggregate_tps"] for r in streams[f"streams_{n}"][side]]
                one = [r["aggregate_tps"] for r in streams["streams_1"][side]]
                res[f"streams_{n}"][side]["vs_single"] = paired(multi, one)
    res["conversations"] = _conversations(convs)
    return res


def all_served(res: dict[str, Any]) -> bool:
    """Every stream of every round complete on both servers (the run's exit status)."""
    return all(
        res[k][side]["completed_min"] == res[k]["streams"]
        for k in res
        if k.startswith("streams_")
        for side in ("openlms", "llama-server")
    )


def _mark(value: float, target: float, higher: bool) -> str:
    if math.isnan(value):
        return "n/a"
    return "ok" if (value >= target if higher else value <= target) else "MISSED"


def table(res: dict[str, Any]) -> str:
    s, setup = res["single"], res["setup"]
    rows: list[tuple[str, str, str, str, str]] = [
        (
            "single stream decode tok/s",
            f"{s['openlms_tps']:.1f}",
            f"{s['llama_server_tps']:.1f}",
            f"{s['vs_llama_server']:.2f}",
            f">= 1.0 {_mark(s['vs_llama_server'], 1.0, True)}",
        ),
        (
            "  vs the raw llama.cpp loop",
            f"{s['openlms_tps']:.1f}",
            f"raw {s['raw_tps']:.1f}",
            f"{s['vs_raw']:.2f}",
            f">= 0.95 {_mark(s['vs_raw'], 0.95, True)}",
        ),
    ]
    for key in sorted((k for k in res if k.startswith("streams_")), key=lambda k: res[k]["streams"]):
        rows += _stream_rows(res[key])
    rows += _conversation_rows(res["conversations"], setup)
    rows += _memory_rows(res["memory"], setup)
    head = ("", "openlms", "llama-server", "ratio", "target")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(5)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    intro = (
        f"model {setup['model']}, context {setup['ctx']}"
        f" ({'unified' if setup['llama_server_kv_unified'] else 'per slot'}), parallel {setup['parallel']}, "
        f"threads {setup['threads']}; llama-server {' '.join(setup['llama_server_args'][2:])}"
    )
    return intro + "\n" + "\n".join(lines) + "\nratio: openlms / llama-server unless the row says otherwise"


def _stream_rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    n, ours, theirs = r["streams"], r["openlms"], r["llama-server"]
    target = {4: f">= 1.0 {_mark(r['ratio'], 1.0, True)}"}.get(n, "")
    rows = [
        (
            f"{n} streams aggregate tok/s",
            f"{ours['aggregate_tps']:.1f}",
            f"{theirs['aggregate_tps']:.1f}",
            f"{r['ratio']:.2f}",
            target,
        ),
        (
            "  streams complete (min over rounds)",
            f"{ours['completed_min']}/{n}",
            f"{theirs['completed_min']}/{n}",
            "",
            "all served " + ("ok" if ours["completed_min"] == n else "MISSED"),
        ),
        (
            "  TTFT p50 / p95 s",
            f"{ours['ttft_p50_s']:.2f} / {ours['ttft_p95_s']:.2f}",
            f"{theirs['ttft_p50_s']:.2f} / {theirs['ttft_p95_s']:.2f}",
            "",
            "",
        ),
    ]
    if n != 1 and "vs_single" in ours:
        goal = f">= 1.7 {_mark(ours['vs_single'], 1.7, True)}" if n == 4 else ""
        rows.append(
            ("  aggregate vs 1 stream", f"{ours['vs_single']:.2f}x", f"{theirs['vs_single']:.2f}x", "", goal)
        )
    return rows


def _conversation_rows(c: dict[str, Any], setup: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    ours, theirs = c["openlms"], c["llama-server"]
    a = setup["args"]
    title = f"{a['conversations']} conversations, {a['system']} ~{a['system_tokens']}-token system prompt"
    return [
        (title, "", "", "", ""),
        (
            "  cold / follow-up TTFT s",
            f"{ours['cold_ttft_s']:.2f} / {ours['follow_up_ttft_s']:.2f}",
            f"{theirs['cold_ttft_s']:.2f} / {theirs['follow_up_ttft_s']:.2f}",
            "",
            "",
        ),
        (
            "  follow-up / cold",
            f"{ours['follow_up_vs_cold']:.3f}x",
            f"{theirs['follow_up_vs_cold']:.3f}x",
            "",
            f"<= 0.06 {_mark(ours['follow_up_vs_cold'], 0.06, False)}",
        ),
        ("  requests failed", str(ours["requests_failed"]), str(theirs["requests_failed"]), "", "0"),
    ]


def _memory_rows(m: dict[str, Any], setup: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    tree, llama = m["openlms_tree"], m["llama_server"]
    after = m.get("openlms_tree_after_conversations", {})
    after_peer, nan = m.get("llama_server_after_conversations", {}), float("nan")
    streams, streams_peer = m.get("openlms_tree_after_streams", {}), m.get("llama_server_after_streams", {})
    n = int(tree["processes"])
    return [
        (
            f"RSS MB, model loaded, warm ({n} process{'es' if n > 1 else ''})",
            f"{tree['rss_mb']:.0f}",
            f"{llama['rss_mb']:.0f}",
            "",
            "",
        ),
        (
            "  vs raw loop peak RSS",
            f"+{m['overhead_mb']:.0f}",
            f"raw {m['raw_peak_rss_mb']:.0f}",
            "",
            f"<= +{MEMORY_MARGIN_MB:.0f} {_mark(m['overhead_mb'], MEMORY_MARGIN_MB, False)}",
        ),
        (
            "  RSS MB after the streams (prompt cache)",
            f"{streams.get('rss_mb', nan):.0f}",
            f"{streams_peer.get('rss_mb', nan):.0f}",
            "",
            "",
        ),
        (
            "  RSS MB after the conversations (prompt cache)",
            f"{after.get('rss_mb', nan):.0f}",
            f"{after_peer.get('rss_mb', nan):.0f}",
            "",
            "",
        ),
        (f"  KV cache MB ({setup['ctx']} cells, f16; raw: same)", f"{m['kv_cache_mb']:.0f}", "", "", ""),
    ]
