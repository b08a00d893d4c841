"""Plain text out of a chat's documents: `.pdf` (pypdf), `.docx` (python-docx), `.txt` and `.md`.

Every failure is a `DocumentError` whose message names the file and says what to do: an unsupported type
(the supported ones are listed), a PDF with no text layer (scanned: openlms does not OCR), a
password-protected PDF, a corrupt file.
"""

from __future__ import annotations

import io
import logging
from pathlib import PurePath
from typing import TYPE_CHECKING, Final

from openlms.core.errors import DocumentError, UnsupportedDocumentError
from openlms.services.documents.types import ExtractedDocument

if TYPE_CHECKING:
    from pypdf import PdfReader

PDF: Final = (".pdf",)
DOCX: Final = (".docx",)
TEXT: Final = (".txt", ".md", ".markdown", ".text")
SUPPORTED: Final = (".pdf", ".docx", ".txt", ".md")
MIN_PDF_CHARS_PER_PAGE: Final = 1  # fewer visible characters than this on every page: no text layer

for _name in ("pypdf", "pypdf._reader", "pypdf.generic"):  # pypdf warns about every odd object
    logging.getLogger(_name).setLevel(logging.ERROR)


def extract_text(name: str, data: bytes) -> ExtractedDocument:
    """The document's text, by its file name's extension."""
    suffix = PurePath(name).suffix.lower()
    if suffix in PDF:
        return _pdf(name, data)
    if suffix in DOCX:
        return _docx(name, data)
    if suffix in TEXT:
        return ExtractedDocument(name, decode_text(data))
    raise UnsupportedDocumentError(
        f"'{name}' is not a document type openlms reads. Supported types: {', '.join(SUPPORTED)}. "
        "Save it as one of these (e.g. export to PDF or plain text) and attach it again.",
        param="file",
    )


def decode_text(data: bytes) -> str:
    """UTF-8 (a BOM dropped), else UTF-16 with a BOM, else cp1252, else Latin-1 (never fails)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8", "cp1252"):
        try:
            return _clean(data.decode(encoding))
        except UnicodeDecodeError:
            continue
    return _clean(data.decode("latin-1"))


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _pdf(name: str, data: bytes) -> ExtractedDocument:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _try_empty_password(reader):
            raise _password_protected(name)
        texts = [_clean(page.extract_text() or "") for page in reader.pages]
    except FileNotDecryptedError as exc:
        raise _password_protected(name) from exc
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise _corrupt(name, "PDF") from exc
    return _join_pages(name, texts)


def _try_empty_password(reader: PdfReader) -> bool:
    """Many PDFs are encrypted with an empty user password (only their permissions are restricted)."""
    try:
        return bool(reader.decrypt(""))
    except Exception:  # noqa: BLE001 - an unsupported cipher is the same as a password for the user
        return False


def _join_pages(name: str, texts: list[str]) -> ExtractedDocument:
    if not texts:
        raise _corrupt(name, "PDF")
    if all(len(t.strip()) < MIN_PDF_CHARS_PER_PAGE for t in texts):
        raise DocumentError(
            f"'{name}' has no text layer: it looks scanned (its pages are images). openlms does not OCR; "
            "run it through an OCR tool (e.g. `ocrmypdf`) or export the text, then attach it again.",
            param="file",
        )
    pages: list[tuple[int, int]] = []
    parts: list[str] = []
    offset = 0
    for number, text in enumerate(texts, start=1):
        pages.append((number, offset))
        piece = text.rstrip() + "\n\n"
        parts.append(piece)
        offset += len(piece)
    return ExtractedDocument(name, "".join(parts).rstrip("\n") + "\n", pages)


def _docx(name: str, data: bytes) -> ExtractedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, ValueError, KeyError, OSError) as exc:
        raise _corrupt(name, "Word (.docx)") from exc
    except Exception as exc:  # noqa: BLE001 - zipfile/lxml raise many kinds on a damaged file
        raise _corrupt(name, "Word (.docx)") from exc
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    text = _clean("\n".join(lines)).strip()
    if not text:
        raise DocumentError(
            f"'{name}' has no text (only images or empty pages?). openlms does not OCR; copy the text "
            "into the document or a .txt file, then attach it again.",
            param="file",
        )
    return ExtractedDocument(name, text + "\n")


def _password_protected(name: str) -> DocumentError:
    return DocumentError(
        f"'{name}' is password-protected. Remove the password (open it and save or print it to a new "
        "PDF), then attach it again.",
        param="file",
    )


def _corrupt(name: str, kind: str) -> DocumentError:
    return DocumentError(
        f"'{name}' could not be read: it is not a valid {kind} file (corrupt or truncated). "
        "Open it in its own application to check it, save a fresh copy, and attach that.",
        param="file",
    )
