"""Ranking a documents' chunks for a query: dense (cosine over the embeddings), BM25 (`bm25s`), and
hybrid (reciprocal rank fusion of the two). `bench/rag_recall.py` measured them (docs/rag.md): hybrid is
the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Method = Literal["dense", "bm25", "hybrid"]
METHODS: Final[tuple[Method, ...]] = ("dense", "bm25", "hybrid")
DEFAULT_METHOD: Final[Method] = "hybrid"
RRF_K: Final = 60  # reciprocal rank fusion's constant (Cormack et al. 2009)

Scores = npt.NDArray[np.float64]


def dense_scores(query_vector: Sequence[float], vectors: npt.NDArray[np.float32]) -> Scores:
    """Cosine similarity of each row of `vectors` with the query (rows normalised here)."""
    if len(vectors) == 0:
        return np.zeros(0)
    matrix = np.asarray(vectors, dtype=np.float64)
    query = np.asarray(query_vector, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
    return np.asarray(matrix @ query / np.where(norms == 0, 1.0, norms), dtype=np.float64)


def bm25_scores(query: str, texts: Sequence[str]) -> Scores:
    """Okapi BM25 score of each text for the query (English stopwords removed; 0 for no shared term)."""
    import bm25s

    if not texts:
        return np.zeros(0)
    corpus = bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)
    query_tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)[0]
    if not query_tokens or not any(corpus):
        return np.zeros(len(texts))
    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    return np.asarray(retriever.get_scores(query_tokens), dtype=np.float64)


def fuse(*rankings: Scores) -> Scores:
    """Reciprocal rank fusion: each item scores sum(1 / (RRF_K + rank)) over the rankings (rank from 1;
    an item a ranking scores 0 or less, e.g. BM25 with no shared term, gets nothing from it)."""
    total = np.zeros(len(rankings[0]) if rankings else 0)
    for scores in rankings:
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty(len(scores))
        ranks[order] = np.arange(1, len(scores) + 1)
        total += np.where(scores > 0, 1.0 / (RRF_K + ranks), 0.0)
    return total


def scores_for(
    method: Method,
    query: str,
    texts: Sequence[str],
    query_vector: Sequence[float] | None,
    vectors: npt.NDArray[np.float32] | None,
) -> Scores:
    """Every chunk's score by `method` (dense and hybrid need the vectors)."""
    if method == "bm25":
        return bm25_scores(query, texts)
    if query_vector is None or vectors is None:
        raise ValueError(f"{method} retrieval needs the query's and the chunks' embeddings")
    dense = dense_scores(query_vector, vectors)
    if method == "dense":
        return dense
    # a dense score is never "no match": shift it above 0 so that fuse() counts every chunk
    return fuse(dense - dense.min() + 1.0 if len(dense) else dense, bm25_scores(query, texts))


def top_k(scores: Scores, k: int) -> list[tuple[int, float]]:
    """The `k` best (index, score), best first (ties keep document order)."""
    order = np.argsort(-scores, kind="stable")[: max(k, 0)]
    return [(int(i), float(scores[i])) for i in order]
