from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from openlms.core.errors import DocumentError, UnsupportedDocumentError
from openlms.services.documents import extract_text
from tests.support.rag_files import docx_bytes, pdf_bytes


def test_text_and_markdown_are_utf8() -> None:
    doc = extract_text("notes.md", "# Título\r\nçà ✓\r\n".encode())
    assert doc.text == "# Título\nçà ✓\n"
    assert doc.pages is None
    assert extract_text("a.TXT", b"\xef\xbb\xbfhello").text == "hello"  # BOM dropped, case-insensitive


def test_text_in_another_encoding_falls_back() -> None:
    assert extract_text("old.txt", "café".encode("cp1252")).text == "café"
    assert extract_text("wide.txt", "naïve".encode("utf-16")).text == "naïve"


def test_unsupported_type_names_the_supported_ones() -> None:
    with pytest.raises(UnsupportedDocumentError) as caught:
        extract_text("sheet.xlsx", b"PK\x03\x04")
    assert "sheet.xlsx" in caught.value.message
    for suffix in (".pdf", ".docx", ".txt", ".md"):
        assert suffix in caught.value.message


def test_pdf_pages_and_offsets() -> None:
    data = pdf_bytes(["Alpha page talks about apples.", "Beta page talks about bananas."])
    doc = extract_text("fruit.pdf", data)
    assert doc.pages is not None and [p for p, _ in doc.pages] == [1, 2]
    second = doc.pages[1][1]
    assert "apples" in doc.text[:second] and "bananas" in doc.text[second:]
    assert doc.page_at(doc.text.index("bananas")) == 2
    assert doc.page_at(doc.text.index("apples")) == 1


def test_scanned_pdf_has_no_text_layer() -> None:
    with pytest.raises(DocumentError) as caught:
        extract_text("scan.pdf", pdf_bytes(["", ""]))
    assert "no text layer" in caught.value.message and "OCR" in caught.value.message


def test_password_protected_pdf() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(["secret text"]))))
    writer.encrypt(user_password="hunter2", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(DocumentError) as caught:
        extract_text("locked.pdf", buffer.getvalue())
    assert "password-protected" in caught.value.message


def test_pdf_with_an_empty_user_password_is_read() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(["open to all readers"]))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    assert "open to all readers" in extract_text("restricted.pdf", buffer.getvalue()).text


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7\n garbage", b"not a pdf at all", pdf_bytes(["x"])[:200]])
def test_corrupt_pdf(data: bytes) -> None:
    with pytest.raises(DocumentError) as caught:
        extract_text("broken.pdf", data)
    assert "broken.pdf" in caught.value.message


def test_docx_paragraphs_and_tables() -> None:
    data = docx_bytes(["First paragraph.", "Second paragraph."], table=[["name", "age"], ["Ada", "36"]])
    doc = extract_text("report.docx", data)
    assert doc.text.startswith("First paragraph.\nSecond paragraph.\n")
    assert "Ada | 36" in doc.text
    assert doc.pages is None


def test_docx_without_text() -> None:
    with pytest.raises(DocumentError) as caught:
        extract_text("blank.docx", docx_bytes(["", "  "]))
    assert "has no text" in caught.value.message


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 truncated zip", b"plain text"])
def test_corrupt_docx(data: bytes) -> None:
    with pytest.raises(DocumentError) as caught:
        extract_text("broken.docx", data)
    assert "not a valid Word (.docx) file" in caught.value.message


def test_document_errors_map_to_client_errors() -> None:
    from openlms.server.errors import domain_error_body

    with pytest.raises(DocumentError) as scanned:
        extract_text("scan.pdf", pdf_bytes([""]))
    status, body = domain_error_body(scanned.value)
    assert status == 422 and body["error"]["code"] == "document_unreadable"
    with pytest.raises(DocumentError) as unsupported:
        extract_text("a.exe", b"MZ")
    status, body = domain_error_body(unsupported.value)
    assert status == 400 and body["error"]["code"] == "unsupported_document_type"
    assert body["error"]["param"] == "file"
