"""Documents (RAG) retrieval with the real default embedding model (all-MiniLM-L6-v2, JIT-loaded by the
real server's `/v1/embeddings`, the path `DocumentService.for_predictor` takes in process): the right
passage of a long PDF is found with its page, and a second question embeds only the question."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from openlms.services.documents import DocumentService, extract_text
from openlms.store.rag_cache import RagCache
from tests.support.rag_files import pdf_bytes
from tests.support.server import EMBEDDING_MODEL, Server

pytestmark = [pytest.mark.e2e]

FACTS = [
    "The lighthouse on Karsk Point was built in 1871 and its lamp burned whale oil for the first decade.",
    "Copper wiring in the old mill was replaced with aluminium after the flood of 1952 ruined the basement.",
    "The village choir rehearses every Thursday evening in the chapel, led by a retired schoolteacher.",
    "Blueberry harvests on the northern slope peak in late August, when the pickers arrive from the coast.",
    "The ferry to Osk Island stops running in January because pack ice blocks the narrow channel.",
    "A meteorite fragment found in a potato field in 1923 is kept in a glass case at the town museum.",
]
FILLER = "Nothing of note happened in the registry office that week; the clerks filed their forms. "


class CountingEmbedder:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.texts = 0

    async def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts += len(texts)
        response = await self.client.post(
            "/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": list(texts)}
        )
        response.raise_for_status()
        return [row["embedding"] for row in response.json()["data"]]


def _pages() -> list[str]:
    """One fact per page, buried in filler (a 6-page PDF, far more than the budget below)."""
    return [FILLER * 6 + fact + " " + FILLER * 6 for fact in FACTS]


async def test_retrieval_finds_the_page_and_caches_the_index(server: Server, tmp_path: Path) -> None:
    doc = extract_text("town-notes.pdf", pdf_bytes(_pages()))
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        embedder = CountingEmbedder(client)
        service = DocumentService(RagCache(tmp_path / "rag-cache"), embedder)
        context = await service.prepare(
            [doc],
            "When does the ferry to Osk Island stop running?",
            budget_tokens=400,
            count_tokens=lambda text: len(text) // 4,
        )
        assert context.mode == "retrieval"
        best = context.citations[0]
        assert "ferry to Osk Island" in best.text.replace("\n", " ")
        assert best.page == 5 and best.file == "town-notes.pdf"
        assert "Citation 1 (town-notes.pdf, page 5)" in context.prompt_text
        first = embedder.texts
        assert first > len(FACTS)  # every chunk, and the question

        again = CountingEmbedder(client)
        service = DocumentService(RagCache(tmp_path / "rag-cache"), again)
        (dense_best,) = await service.retrieve(
            [doc], "Which space rock is displayed at the museum?", k=1, method="dense"
        )
        assert again.texts == 1  # only the question: the chunks' vectors came from the cache
        assert "meteorite" in dense_best.text and dense_best.page == 6
