"""Why llama.cpp failed, in words a caller can act on, and C integers that are refused, never wrapped.

llama.cpp reports a failed load as a NULL pointer and says why only in its log; `LogTail` keeps its last
error lines so that a load of a corrupt or unsupported file is an `InvalidModelFileError` (4xx, with
llama.cpp's reason) and only an out-of-memory stays a `ModelLoadError` (5xx).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path

from openlms.core.errors import InvalidModelFileError, InvalidRequestError, ModelLoadError

GGML_LOG_LEVEL_ERROR = 4
# llama.cpp's words for a failure to get memory (anything else that stops a load is the file's fault)
_MEMORY_WORDS = ("alloc", "out of memory", "mlock", "mmap", "memory")


class LogTail:
    """The last error lines llama.cpp logged (from any thread), to say why a load failed."""

    def __init__(self, size: int = 64) -> None:
        self._lines: deque[str] = deque(maxlen=size)
        self.count = 0

    def add(self, line: str) -> None:
        self._lines.append(line)
        self.count += 1

    def since(self, mark: int) -> list[str]:
        n = min(self.count - mark, len(self._lines))
        return list(self._lines)[-n:] if n > 0 else []


def load_failure(path: Path, errors: Sequence[str]) -> ModelLoadError:
    """Why llama.cpp refused a file: the file's fault (InvalidModelFileError, 4xx) unless llama.cpp ran
    out of memory or said nothing (ModelLoadError, 5xx)."""
    lines = [_strip_prefix(line) for line in errors]
    reason = "; ".join(dict.fromkeys(line for line in lines if line != "failed to load model") or lines)
    if not reason:
        return ModelLoadError(
            f"llama.cpp could not load {path}: the file is corrupt, truncated, of an unsupported "
            "architecture, or there is not enough memory."
        )
    if any(word in reason.lower() for word in _MEMORY_WORDS):
        return ModelLoadError(f"llama.cpp ran out of memory loading {path.name}: {reason}")
    return InvalidModelFileError(
        f"llama.cpp could not load {path.name}: {reason}. The file is corrupt, incomplete or not supported "
        "by this version of llama.cpp; download it again or remove it.",
        param="model",
    )


def _strip_prefix(line: str) -> str:
    """`llama_model_load: error loading model: X` -> `X`."""
    return line.rsplit("error loading model: ", 1)[-1].removeprefix("llama_model_load_from_file_impl: ")


def c_int(name: str, value: int, low: int, high: int) -> int:
    """`value` for a C integer field, refused (never wrapped) outside [low, high]."""
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be between {low} and {high}, not {value}.", param=name)
    return value


U32_MAX = (1 << 32) - 1
I32_MAX = (1 << 31) - 1
