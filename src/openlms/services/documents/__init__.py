"""Documents in a chat (RAG): a chat's files go into its last user message, in full when they fit the
token budget, otherwise as the passages retrieved for the query, each with its citation.

    service = DocumentService.for_predictor(settings, predictor)
    docs = [extract_text(name, data) for name, data in files]      # DocumentError on a bad file
    context = await service.prepare(docs, query, budget_tokens=n, count_tokens=counter)
    # context.prompt_text replaces the user message's text; context.citations say where passages came from

Retrieval: chunks (`chunking.py`) embedded with the embedding model (JIT-loaded; all-MiniLM-L6-v2 by
default), cached per document content in `<home>/openlms/rag-cache/` (`store/rag_cache.py`), ranked by
`retrieve.py` (hybrid by default: dense + BM25, fused). docs/rag.md tells how it works and the figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

from openlms.core.errors import ContextLengthExceededError
from openlms.services.documents.chunking import ChunkParams, chunk_document
from openlms.services.documents.extract import SUPPORTED, extract_text
from openlms.services.documents.prompt import full_prompt, retrieval_prompt
from openlms.services.documents.retrieve import DEFAULT_METHOD, Method, scores_for, top_k
from openlms.services.documents.types import Chunk, Citation, DocumentContext, ExtractedDocument
from openlms.store.rag_cache import CachedIndex, RagCache

if TYPE_CHECKING:
    from openlms.core.settings import Settings
    from openlms.services.generation import Predictor

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "SUPPORTED",
    "Chunk",
    "ChunkParams",
    "Citation",
    "DocumentContext",
    "DocumentService",
    "Embedder",
    "ExtractedDocument",
    "extract_text",
]

DEFAULT_EMBEDDING_MODEL: Final = "text-embedding-all-minilm-l6-v2"  # store/defaults.py's key
DEFAULT_MAX_PASSAGES: Final = 5
EMBED_BATCH: Final = 32
CACHE_FORMAT: Final = "v1"  # part of the index cache's key: change it when chunking changes its output
MAX_CHARS_PER_TOKEN: Final = 12  # a text longer than this many characters a token cannot fit: not counted

Embedder = Callable[[Sequence[str]], Awaitable[list[list[float]]]]  # texts -> one vector each


class DocumentService:
    """Prepares a chat's documents for its prompt (see the module's docstring)."""

    def __init__(
        self,
        cache: RagCache,
        embed: Embedder,
        *,
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        chunking: ChunkParams | None = None,
        method: Method = DEFAULT_METHOD,
        max_passages: int = DEFAULT_MAX_PASSAGES,
    ) -> None:
        self.cache = cache
        self._embed = embed
        self.embedding_model = embedding_model
        self.chunking = chunking or ChunkParams()
        self.method: Method = method
        self.max_passages = max_passages

    @classmethod
    def for_predictor(
        cls, settings: Settings, predictor: Predictor, *, embedding_model: str = DEFAULT_EMBEDDING_MODEL
    ) -> DocumentService:
        """The service embedding through the same path as `/v1/embeddings` (JIT-loads the model)."""

        async def embed(texts: Sequence[str]) -> list[list[float]]:
            _, result = await predictor.embed(embedding_model, texts)
            return result.vectors

        return cls(RagCache.in_state_dir(settings.state_dir), embed, embedding_model=embedding_model)

    async def prepare(
        self,
        documents: Sequence[ExtractedDocument],
        query: str,
        *,
        budget_tokens: int,
        count_tokens: Callable[[str], int],
    ) -> DocumentContext:
        """The documents in full if that prompt fits `budget_tokens` (by `count_tokens`), otherwise the
        best passages for `query` (as many as fit, at most `max_passages`; at least one)."""
        full = full_prompt(documents, query)
        fits = len(full) <= budget_tokens * MAX_CHARS_PER_TOKEN and (
            await asyncio.to_thread(count_tokens, full) <= budget_tokens
        )
        if fits:
            citations = [Citation(d.name, _first_page(d), 0, len(d.text), d.text, 1.0) for d in documents]
            return DocumentContext("full", full, citations)
        ranked = await self.retrieve(documents, query, k=self.max_passages)
        chosen: list[Citation] = []
        for citation in ranked:
            prompt = retrieval_prompt([*chosen, citation], query)
            if chosen and await asyncio.to_thread(count_tokens, prompt) > budget_tokens:
                break
            chosen.append(citation)
        return DocumentContext("retrieval", retrieval_prompt(chosen, query), chosen)

    async def retrieve(
        self, documents: Sequence[ExtractedDocument], query: str, *, k: int, method: Method | None = None
    ) -> list[Citation]:
        """The `k` best chunks of all the documents for `query`, best first."""
        method = method or self.method
        if method == "bm25":
            chunks = [c for d in documents for c in await asyncio.to_thread(chunk_document, d, self.chunking)]
            vectors = query_vector = None
        else:  # the chunks are the index's own spans, so that each vector stays with its chunk
            indexes = [(d, await self.index(d)) for d in documents]
            chunks = [_chunk_at(d, span) for d, index in indexes for span in index.spans]
            vectors = np.concatenate([index.vectors for _, index in indexes]) if chunks else None
            query_vector = (await self._embed_texts([query]))[0] if chunks else None
        if not chunks:
            return []
        texts = [c.text for c in chunks]
        scores = await asyncio.to_thread(scores_for, method, query, texts, query_vector, vectors)
        return [_citation(chunks[i], score) for i, score in top_k(scores, k)]

    async def index(self, document: ExtractedDocument) -> CachedIndex:
        """The document's chunk spans and embeddings: from the cache, or embedded now and cached."""
        variant = f"{self.embedding_model}|{self.chunking.key}|{CACHE_FORMAT}"
        cached = await asyncio.to_thread(self.cache.get, document.text, variant)
        if cached is not None:
            return cached
        chunks = await asyncio.to_thread(chunk_document, document, self.chunking)
        vectors = await self._embed_texts([c.text for c in chunks])
        index = CachedIndex(
            [(c.start, c.end, c.page) for c in chunks],
            np.asarray(vectors, dtype=np.float32).reshape(len(chunks), -1),
        )
        await asyncio.to_thread(self.cache.put, document.text, variant, index)
        return index

    async def _embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for at in range(0, len(texts), EMBED_BATCH):
            batch = texts[at : at + EMBED_BATCH]
            try:
                vectors.extend(await self._embed(batch))
            except ContextLengthExceededError:  # a chunk of dense text has more tokens than the model takes
                for text in batch:
                    vectors.append(await self._embed_shortened(text))
        return vectors

    async def _embed_shortened(self, text: str) -> list[float]:
        """`text`'s vector, from its first half (quarter, ...) if the whole is too long for the model."""
        while True:
            try:
                return (await self._embed([text]))[0]
            except ContextLengthExceededError:
                if len(text) < 16:
                    raise
                text = text[: len(text) // 2]


def _chunk_at(document: ExtractedDocument, span: tuple[int, int, int | None]) -> Chunk:
    start, end, page = span
    return Chunk(document.name, page, start, end, document.text[start:end])


def _citation(chunk: Chunk, score: float) -> Citation:
    return Citation(chunk.file, chunk.page, chunk.start, chunk.end, chunk.text, score)


def _first_page(document: ExtractedDocument) -> int | None:
    return document.pages[0][0] if document.pages else None
