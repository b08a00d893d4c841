"""Documents (RAG) retrieval quality: recall@1/3/5 of the chunk that holds the answer, for dense, BM25
and hybrid retrieval, with the default embedding model on the real server.

    .venv/bin/python bench/rag_recall.py [--cache ~/.cache/openlms-bench] [--json out.json]

The question-answer set is `rag_dataset.py`'s (samples of SQuAD 1.1, QuAC, Quoref, DROP and TriviaQA
shipped in the `allennlp` 0.9.0 wheel on PyPI): every passage and evidence document becomes one document,
chunked as a chat's documents are (`services/documents/chunking.py`), so each question is asked against
all the chunks of all the documents. A question counts as found at k when one of its k best chunks holds
its answer. Embeddings go through `/v1/embeddings` (all-MiniLM-L6-v2) and are cached as the service
caches them, so a second run only embeds the questions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from harness import default_models_dir, free_port, start_server
from rag_dataset import Question, fetch_wheel, load

from openlms.services.documents import DEFAULT_EMBEDDING_MODEL, DocumentService
from openlms.services.documents.chunking import chunk_document
from openlms.services.documents.retrieve import METHODS
from openlms.services.documents.types import Citation
from openlms.store.rag_cache import RagCache

KS = (1, 3, 5)


def holds_answer(citation: Citation, question: Question) -> bool:
    return any(
        citation.file == name and citation.start <= start and end <= citation.end
        for name, start, end in question.gold
    )


async def evaluate(service: DocumentService, docs: Sequence, questions: Sequence[Question]) -> dict:
    results: dict[str, dict[str, float]] = {}
    for method in METHODS:
        found = dict.fromkeys(KS, 0)
        for question in questions:
            best = await service.retrieve(docs, question.text, k=max(KS), method=method)
            for k in KS:
                found[k] += any(holds_answer(c, question) for c in best[:k])
        results[method] = {f"recall@{k}": round(found[k] / len(questions), 3) for k in KS}
    return results


def http_embedder(client: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    async def embed(texts: Sequence[str]) -> list[list[float]]:
        response = await client.post(
            "/v1/embeddings", json={"model": DEFAULT_EMBEDDING_MODEL, "input": list(texts)}
        )
        response.raise_for_status()
        return [row["embedding"] for row in response.json()["data"]]

    return embed


async def measure(url: str, cache: Path, docs: Sequence, questions: Sequence[Question]) -> dict:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        service = DocumentService(RagCache(cache / "rag-cache"), http_embedder(client))
        started = time.perf_counter()
        for doc in docs:
            await service.index(doc)
        index_s = time.perf_counter() - started
        return {"index_seconds": round(index_s, 1), **await evaluate(service, docs, questions)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "openlms-bench")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    docs, questions = load(fetch_wheel(args.cache))
    chunks = sum(len(chunk_document(d)) for d in docs)
    print(f"{len(questions)} questions, {len(docs)} documents, {chunks} chunks")
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), default_models_dir(), free_port())
        try:
            report = asyncio.run(measure(server.url, args.cache, docs, questions))
        finally:
            server.lms("server", "stop", check=False)
    report = {"questions": len(questions), "documents": len(docs), "chunks": chunks, **report}
    for method in METHODS:
        print(f"{method:>7}: " + "  ".join(f"{k} {v:.3f}" for k, v in report[method].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
