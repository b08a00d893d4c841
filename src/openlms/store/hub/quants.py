"""A repo's GGUF files -> download options: one per quantization, split parts grouped, mmproj attached."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from openlms.store.hub.types import DownloadOption, HubFile
from openlms.store.naming import is_mmproj, parse_split_name, quantization_from_name

RECOMMENDED_QUANT: Final = "Q4_K_M"
_MMPROJ_PREFERENCE: Final = ("F16", "BF16", "F32", "Q8_0")


def build_options(repo_id: str, revision: str, files: Iterable[HubFile]) -> tuple[DownloadOption, ...]:
    """GGUF options sorted by size ascending; an incomplete split set is left out."""
    ggufs = [f for f in files if f.path.lower().endswith(".gguf")]
    projector = pick_mmproj([f for f in ggufs if is_mmproj(_base(f.path))])
    groups: dict[str, list[HubFile]] = {}
    for f in ggufs:
        if is_mmproj(_base(f.path)):
            continue
        groups.setdefault(_group_key(f.path), []).append(f)
    options = []
    for members in groups.values():
        parts = _ordered_parts(members)
        if parts is None:
            continue
        main = _base(parts[0].path)
        extra = (projector,) if projector is not None else ()
        options.append(DownloadOption(repo_id, revision, main, quantization_from_name(main), parts + extra))
    return tuple(sorted(options, key=lambda o: (o.size_bytes, o.name)))


def pick_mmproj(candidates: Sequence[HubFile]) -> HubFile | None:
    """The vision projector to ship with every option: an F16 one when there are several."""
    if not candidates:
        return None
    for quant in _MMPROJ_PREFERENCE:
        for f in sorted(candidates, key=lambda c: c.path):
            if quantization_from_name(_base(f.path)) == quant:
                return f
    return sorted(candidates, key=lambda c: (-c.size, c.path))[0]


def find_option(options: Sequence[DownloadOption], quantization: str) -> DownloadOption | None:
    """The option with this quantization (any case), else one whose file name is `quantization`."""
    wanted = quantization.strip().upper()
    for option in options:
        if option.quantization is not None and option.quantization.upper() == wanted:
            return option
    for option in options:
        if option.name.upper() == wanted:
            return option
    return None


def recommend(options: Sequence[DownloadOption], budget_bytes: int) -> DownloadOption | None:
    """Q4_K_M when it fits the budget, else the largest that fits, else the smallest."""
    if not options:
        return None
    preferred = find_option(options, RECOMMENDED_QUANT)
    if preferred is not None and preferred.size_bytes <= budget_bytes:
        return preferred
    fitting = [o for o in options if o.size_bytes <= budget_bytes]
    if fitting:
        return max(fitting, key=lambda o: o.size_bytes)
    return min(options, key=lambda o: o.size_bytes)


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _group_key(path: str) -> str:
    folder, _, name = path.rpartition("/")
    split = parse_split_name(name)
    return f"{folder}/{split.base}#split{split.total}" if split else path


def _ordered_parts(members: list[HubFile]) -> tuple[HubFile, ...] | None:
    """The members in split order; None when a split set misses a part."""
    if len(members) == 1 and parse_split_name(_base(members[0].path)) is None:
        return (members[0],)
    indexed = {}
    total = 0
    for f in members:
        split = parse_split_name(_base(f.path))
        if split is None:
            return None
        indexed[split.index] = f
        total = split.total
    if sorted(indexed) != list(range(1, total + 1)):
        return None
    return tuple(indexed[i] for i in range(1, total + 1))
