from __future__ import annotations

import pytest

from openlms.services.documents.chunking import ChunkParams, chunk_document
from openlms.services.documents.types import ExtractedDocument

WORDS = " ".join(f"word{i}" for i in range(600))  # ~5,000 characters, no sentence boundaries


def test_spans_are_exact_slices_that_overlap_and_cover_the_text() -> None:
    doc = ExtractedDocument("w.txt", WORDS)
    params = ChunkParams(size_chars=500, overlap_chars=100)
    chunks = chunk_document(doc, params)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert chunk.file == "w.txt" and chunk.page is None
        assert len(chunk.text) <= params.size_chars
        assert not chunk.text[0].isspace() and not chunk.text[-1].isspace()
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start < before.end  # overlap
        assert after.start > before.start  # progress
        assert after.text.split()[0].startswith("word")  # a chunk starts at a word
    assert chunks[0].start == 0 and chunks[-1].end == len(WORDS)


def test_chunks_end_at_sentence_or_paragraph_boundaries() -> None:
    text = "\n\n".join(f"Paragraph {i} has a sentence. And another one here." for i in range(60))
    chunks = chunk_document(ExtractedDocument("p.md", text), ChunkParams(size_chars=300, overlap_chars=50))
    assert all(c.text.endswith(".") for c in chunks)


def test_chunks_know_their_page() -> None:
    page_two = 3000
    text = "a " * (page_two // 2) + "b " * 1500
    doc = ExtractedDocument("p.pdf", text, pages=[(1, 0), (2, page_two)])
    chunks = chunk_document(doc)
    assert chunks[0].page == 1 and chunks[-1].page == 2
    assert all((c.page == 2) == (c.start >= page_two) for c in chunks)


def test_empty_and_short_documents() -> None:
    assert chunk_document(ExtractedDocument("e.txt", "  \n ")) == []
    (only,) = chunk_document(ExtractedDocument("s.txt", "  short text \n"))
    assert (only.start, only.end, only.text) == (2, 12, "short text")


def test_unbroken_text_is_cut_at_the_size() -> None:
    chunks = chunk_document(
        ExtractedDocument("x.txt", "x" * 2000), ChunkParams(size_chars=500, overlap_chars=100)
    )
    assert [c.end - c.start for c in chunks[:-1]] == [500] * (len(chunks) - 1)
    assert chunks[1].start == 400


@pytest.mark.parametrize(("size", "overlap"), [(10, 0), (100, 50), (100, -1)])
def test_bad_parameters(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        ChunkParams(size_chars=size, overlap_chars=overlap)
