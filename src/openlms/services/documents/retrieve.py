"""Ranking a documents' chunks for a query: dense (cosine over the embeddings), BM25 (`bm25s`), and
hybrid (the mean of the two, each min-max scaled to [0, 1] over the chunks). `bench/rag_recall.py`
measured them (docs/rag.md): hybrid found the answer's chunk most often, so it is the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Method = Literal["dense", "bm25", "hybrid"]
METHODS: Final[tuple[Method, ...]] = ("dense", "bm25", "hybrid")
DEFAULT_METHOD: Final[Method] = "hybrid"
DENSE_WEIGHT: Final = 0.5  # hybrid = w * dense + (1 - w) * BM25, both scaled to [0, 1]

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


def scaled(scores: Scores) -> Scores:
    """`scores` min-max scaled to [0, 1] (all 0 when they are all equal)."""
    if len(scores) == 0:
        return scores
    low, span = scores.min(), scores.max() - scores.min()
    return (scores - low) / span if span > 0 else np.zeros(len(scores))


def combine(dense: Scores, bm25: Scores, dense_weight: float = DENSE_WEIGHT) -> Scores:
    """Hybrid scores: the weighted sum of the scaled dense and BM25 scores."""
    return dense_weight * scaled(dense) + (1.0 - dense_weight) * scaled(bm25)


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
    return combine(dense, bm25_scores(query, texts))


def top_k(scores: Scores, k: int) -> list[tuple[int, float]]:
    """The `k` best (index, score), best first (ties keep document order)."""
    order = np.argsort(-scores, kind="stable")[: max(k, 0)]
    return [(int(i), float(scores[i])) for i in order]
