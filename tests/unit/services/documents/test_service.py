"""The DocumentService with a fake embedder: a bag-of-words vector over a small vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from openlms.core.errors import ContextLengthExceededError
from openlms.services.documents import ChunkParams, DocumentService, ExtractedDocument
from openlms.services.documents.retrieve import combine, scaled, scores_for, top_k
from openlms.store.rag_cache import RagCache

VOCAB = ("volcano", "lava", "penguin", "ice", "violin", "music")
TOPICS = {
    "volcano": "The volcano erupted and lava flowed down the mountain into the valley. ",
    "penguin": "The penguin slid on the ice and dived into the cold sea for fish. ",
    "violin": "The violin played music in the concert hall while the crowd listened. ",
}


class FakeEmbedder:
    def __init__(self, limit_chars: int | None = None) -> None:
        self.calls: list[int] = []
        self.limit_chars = limit_chars

    async def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        if self.limit_chars is not None and any(len(t) > self.limit_chars for t in texts):
            raise ContextLengthExceededError(999, 512)
        return [[float(t.lower().count(w)) + 0.01 for w in VOCAB] for t in texts]


def _long_document(name: str = "world.txt") -> ExtractedDocument:
    return ExtractedDocument(name, "".join(text * 12 for text in TOPICS.values()))


def _service(tmp_path: Path, embedder: FakeEmbedder) -> DocumentService:
    return DocumentService(RagCache(tmp_path), embedder, chunking=ChunkParams(400, 80))


def _words(text: str) -> int:
    return len(text.split())


async def test_documents_that_fit_go_in_full(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    docs = [ExtractedDocument("a.txt", "Alpha text."), ExtractedDocument("b.pdf", "Beta.\n", [(1, 0)])]
    context = await _service(tmp_path, embedder).prepare(
        docs, "what is alpha?", budget_tokens=1000, count_tokens=_words
    )
    assert context.mode == "full"
    assert "Alpha text." in context.prompt_text and "Beta." in context.prompt_text
    assert context.prompt_text.endswith("what is alpha?")
    assert [(c.file, c.page) for c in context.citations] == [("a.txt", None), ("b.pdf", 1)]
    assert embedder.calls == []  # nothing embedded for the full-text path


async def test_long_documents_are_retrieved_with_citations(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    doc = _long_document()
    context = await _service(tmp_path, embedder).prepare(
        [doc], "Tell me about the penguin on the ice", budget_tokens=300, count_tokens=_words
    )
    assert context.mode == "retrieval"
    assert 1 <= len(context.citations) <= 5
    assert _words(context.prompt_text) <= 300
    best = context.citations[0]
    assert "penguin" in best.text and best.text == doc.text[best.start : best.end]
    assert best.file == "world.txt"
    assert f'Citation 1 (world.txt): "{best.text}"' in context.prompt_text
    assert context.prompt_text.endswith("Tell me about the penguin on the ice")
    scores = [c.score for c in context.citations]
    assert scores == sorted(scores, reverse=True)


async def test_a_second_question_does_not_embed_the_document_again(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    doc = _long_document()
    await _service(tmp_path, embedder).prepare([doc], "volcano", budget_tokens=200, count_tokens=_words)
    first = sum(embedder.calls)
    assert first > 1  # the chunks and the query
    again = FakeEmbedder()  # a new service (as after a restart) on the same cache folder
    context = await _service(tmp_path, again).prepare(
        [doc], "violin music", budget_tokens=200, count_tokens=_words
    )
    assert again.calls == [1]  # only the query
    assert "violin" in context.citations[0].text


async def test_passages_come_from_the_right_file(tmp_path: Path) -> None:
    docs = [
        ExtractedDocument("volcano.txt", TOPICS["volcano"] * 20),
        ExtractedDocument("music.txt", TOPICS["violin"] * 20),
    ]
    service = _service(tmp_path, FakeEmbedder())
    for method in ("dense", "bm25", "hybrid"):
        (best,) = await service.retrieve(docs, "violin music in the concert hall", k=1, method=method)
        assert best.file == "music.txt", method


async def test_at_least_one_passage_even_when_the_budget_is_tiny(tmp_path: Path) -> None:
    context = await _service(tmp_path, FakeEmbedder()).prepare(
        [_long_document()], "lava", budget_tokens=5, count_tokens=_words
    )
    assert context.mode == "retrieval" and len(context.citations) == 1


async def test_a_chunk_too_long_for_the_embedding_model_is_shortened(tmp_path: Path) -> None:
    embedder = FakeEmbedder(limit_chars=150)
    index = await _service(tmp_path, embedder).index(_long_document())
    assert index.vectors.shape[0] == len(index.spans) > 1


def test_hybrid_scores_and_ranking() -> None:
    assert scaled(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert scaled(np.array([0.0, 0.0])).tolist() == [0.0, 0.0]  # BM25 with no shared term
    dense = np.array([0.9, 0.1, 0.8])
    bm25 = np.array([0.0, 3.0, 2.0])
    hybrid = combine(dense, bm25)
    assert top_k(hybrid, 1)[0][0] == 2  # good in both beats best in one
    assert top_k(combine(dense, np.zeros(3)), 1)[0][0] == 0  # no BM25 signal: dense decides
    assert top_k(np.array([1.0, 1.0]), 5) == [(0, 1.0), (1, 1.0)]
    with pytest.raises(ValueError):
        scores_for("dense", "q", ["a"], None, None)
    assert scores_for("bm25", "the a of", ["x y"], None, None).tolist() == [0.0]  # stopwords only


async def test_for_predictor_embeds_through_the_predictor(tmp_path: Path) -> None:
    from types import SimpleNamespace
    from typing import Any, cast

    calls: list[tuple[str, list[str]]] = []

    class FakePredictor:
        async def embed(self, model: str, texts: Sequence[str]) -> tuple[None, Any]:
            calls.append((model, list(texts)))
            return None, SimpleNamespace(vectors=[[1.0, 0.0] for _ in texts])

    settings = SimpleNamespace(state_dir=tmp_path / "openlms")
    service = DocumentService.for_predictor(cast(Any, settings), cast(Any, FakePredictor()))
    await service.index(ExtractedDocument("a.txt", "some text to embed"))
    assert calls == [("text-embedding-all-minilm-l6-v2", ["some text to embed"])]
    assert service.cache.root == tmp_path / "openlms" / "rag-cache"
    assert list(service.cache.root.glob("*.npz"))


async def test_a_document_far_over_the_budget_is_not_tokenized_in_full(tmp_path: Path) -> None:
    counted: list[int] = []

    def count(text: str) -> int:
        counted.append(len(text))
        return _words(text)

    doc = _long_document()
    context = await _service(tmp_path, FakeEmbedder()).prepare(
        [doc], "penguin", budget_tokens=50, count_tokens=count
    )
    assert context.mode == "retrieval"
    assert counted and max(counted) < len(doc.text)  # only the passages' prompts were counted


async def test_retrieval_uses_the_cached_spans_with_their_vectors(tmp_path: Path) -> None:
    from openlms.services.documents import CACHE_FORMAT
    from openlms.store.rag_cache import CachedIndex

    doc = ExtractedDocument("t.txt", "volcano lava here. penguin ice there.")
    service = _service(tmp_path, FakeEmbedder())
    variant = f"{service.embedding_model}|{service.chunking.key}|{CACHE_FORMAT}"
    spans: list[tuple[int, int, int | None]] = [(0, 18, None), (19, 37, None)]  # not the chunker's
    vectors = np.array([[9, 9, 0.01, 0.01, 0, 0], [0, 0, 9, 9, 0, 0]], dtype=np.float32)
    service.cache.put(doc.text, variant, CachedIndex(spans, vectors))
    (best,) = await service.retrieve([doc], "penguin on ice", k=1, method="dense")
    assert (best.start, best.end, best.text) == (19, 37, "penguin ice there.")
