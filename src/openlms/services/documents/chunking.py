"""Documents cut into overlapping chunks for retrieval.

Sizes are in characters, an approximation of tokens (about 4 characters a token in English): the
embedding model's tokenizer is not needed, and a chunk's span stays exact. The default, 800 characters
with 200 of overlap, keeps a chunk (about 200 tokens) inside all-MiniLM-L6-v2's 256-token training
length. A chunk ends at a paragraph, sentence or word boundary when one lies in its second half.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from openlms.services.documents.types import Chunk, ExtractedDocument

_BOUNDARIES: Final = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


@dataclass(frozen=True, slots=True)
class ChunkParams:
    size_chars: int = 800
    overlap_chars: int = 200

    def __post_init__(self) -> None:
        if self.size_chars < 20 or not 0 <= self.overlap_chars < self.size_chars // 2:
            raise ValueError("chunk size must be >= 20 characters and overlap in [0, size/2)")

    @property
    def key(self) -> str:
        """Part of the index cache's key: a change of parameters is a new index."""
        return f"chars{self.size_chars}-overlap{self.overlap_chars}"


def chunk_document(document: ExtractedDocument, params: ChunkParams | None = None) -> list[Chunk]:
    """The document's chunks, in order; `chunk.text == document.text[chunk.start:chunk.end]`."""
    params = params or ChunkParams()
    text = document.text
    chunks: list[Chunk] = []
    start = _skip_space(text, 0)
    while start < len(text):
        end = _chunk_end(text, start, params.size_chars)
        span_end = _trim_end(text, start, end)
        if span_end > start:
            chunks.append(
                Chunk(document.name, document.page_at(start), start, span_end, text[start:span_end])
            )
        if end >= len(text):
            break
        start = _skip_space(text, _next_start(text, start, end, params.overlap_chars))
    return chunks


def _chunk_end(text: str, start: int, size: int) -> int:
    hard = start + size
    if hard >= len(text):
        return len(text)
    floor = start + size // 2
    for boundary in _BOUNDARIES:
        at = text.rfind(boundary, floor, hard)
        if at != -1:
            return at + len(boundary)
    return hard


def _next_start(text: str, start: int, end: int, overlap: int) -> int:
    """`overlap` characters before `end`, moved forward to the start of a word, and always past `start`."""
    candidate = max(end - overlap, start + 1)
    if candidate >= end:
        return end
    space = text.find(" ", candidate, end)
    newline = text.find("\n", candidate, end)
    hits = [h for h in (space, newline) if h != -1]
    return min(hits) + 1 if hits else candidate


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _trim_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end
