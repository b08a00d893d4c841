"""Documents the documents (RAG) tests make: a long PDF and a long DOCX with one unique fact planted on one
page (one paragraph), the rest varied filler that shares no word with the question. They are "long" for
the chat model loaded with a context of `CONTEXT` tokens (small documents keep the embedding fast)."""

from __future__ import annotations

import io

FACT = "The Zebulon probe's launch code is QUARTZ-4417."
QUESTION = "What is the launch code of the Zebulon probe?"
FACT_PAGE = 2
PAGES = 4
CONTEXT = 768  # the chat model's context in these tests: a few pages are then "long" (retrieval)
TOPICS = ["harbour", "orchard", "railway", "library", "glacier", "market", "bakery", "canal", "forest"]


def filler(page: int, paragraph: int) -> str:
    """Varied text with no word of the fact, so only the planted page answers the question."""
    topic = TOPICS[(page + paragraph) % len(TOPICS)]
    return (
        f"Section {page}.{paragraph} describes the {topic} of the old town. Visitors walk past the {topic} "
        f"in the morning, count the boats and the carts, and write notes about the weather, the prices "
        f"and the colour of the roofs near the {topic}. Page {page} keeps these notes for the archive."
    )


def long_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for page in range(1, PAGES + 1):
        pdf.add_page()
        for paragraph in range(4):
            text = FACT if page == FACT_PAGE and paragraph == 3 else filler(page, paragraph)
            pdf.multi_cell(0, 6, text)
            pdf.ln(2)
    return bytes(pdf.output())


def long_docx() -> bytes:
    import docx

    document = docx.Document()
    for paragraph in range(12):
        document.add_paragraph(FACT if paragraph == 7 else filler(paragraph // 4 + 1, paragraph))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
