"""The values the documents (RAG) pipeline passes around: an extracted document, its chunks, a citation,
and the context that goes into a chat."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    """A document's plain text. `pages` (PDF only) lists `(page_no, start_offset)`: page `page_no`
    (1-based) starts at character `start_offset` of `text`; None for formats without pages."""

    name: str
    text: str
    pages: list[tuple[int, int]] | None = None

    def page_at(self, offset: int) -> int | None:
        """The page holding character `offset` (None without pages)."""
        if not self.pages:
            return None
        page = self.pages[0][0]
        for page_no, start in self.pages:
            if start > offset:
                break
            page = page_no
        return page


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document: `text == document.text[start:end]`, on page `page` (where it starts)."""

    file: str
    page: int | None
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Citation:
    """A passage given to the model, and where it came from. `score` is the retrieval score (higher is
    better; the fused score for hybrid retrieval); 1.0 for a document given in full."""

    file: str
    page: int | None
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class DocumentContext:
    """What a chat's documents add to its last user message. `prompt_text` REPLACES that message's text:
    it holds the documents (in full, or the retrieved passages each headed with its citation number) and
    then the user's query. `citations[i]` is passage "Citation i+1" of `prompt_text` in retrieval mode
    (one per document in full mode)."""

    mode: Literal["full", "retrieval"]
    prompt_text: str
    citations: list[Citation] = field(default_factory=list)
