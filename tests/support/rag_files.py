"""PDFs (fpdf2) and DOCX (python-docx) made in the documents (RAG) core tests."""

from __future__ import annotations

import io

import docx
from fpdf import FPDF


def pdf_bytes(pages: list[str]) -> bytes:
    """A PDF with one page per string (Helvetica, wrapped); an empty string is a page with only a box."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
        else:
            pdf.rect(20, 20, 100, 60, style="F")  # a "scanned" page: drawing, no text
    return bytes(pdf.output())


def docx_bytes(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
