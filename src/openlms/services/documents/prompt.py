"""The text a chat's documents put in its last user message, in LM Studio's style (its `rag-v1`
plugin): the files in full, or the retrieved citations, then the user's query."""

from __future__ import annotations

from collections.abc import Sequence

from openlms.services.documents.types import Citation, ExtractedDocument


def full_prompt(documents: Sequence[ExtractedDocument], query: str) -> str:
    parts = [
        "This is an Enriched Context Generation scenario.\n\n"
        "The following content was found in the files provided by the user.\n"
    ]
    for document in documents:
        parts.append(
            f"\n** {document.name} full content **\n\n{document.text.strip()}\n\n"
            f"** end of {document.name} **\n"
        )
    parts.append(
        f"\nBased on the content above, please provide a response to the user query.\n\nUser query: {query}"
    )
    return "".join(parts)


def retrieval_prompt(citations: Sequence[Citation], query: str) -> str:
    parts = ["The following citations were found in the files provided by the user:\n"]
    for number, citation in enumerate(citations, start=1):
        parts.append(f'\nCitation {number} ({source(citation)}): "{citation.text.strip()}"\n')
    parts.append(
        "\nUse the citations above to respond to the user query, only if they are relevant. Otherwise, "
        f"respond to the best of your ability without them.\n\nUser Query:\n\n{query}"
    )
    return "".join(parts)


def source(citation: Citation) -> str:
    """`report.pdf, page 3` or `notes.md`: where a passage came from, as a user reads it."""
    return citation.file if citation.page is None else f"{citation.file}, page {citation.page}"
