"""Documents in a chat (LM Studio's "Chat with Documents"): the chat's files go into its last user message,
in full when they fit the model's context with room for the answer, else as retrieved passages.

The documents service (`services/documents/`) extracts, chunks, embeds and retrieves; this module decides
the budget from the loaded model and puts the result into the conversation. Both the SDK's file parts
(`prepare_file()` + a file in a chat message) and the app's attached files (`/api/v1/app/documents/prepare`)
come through here.

The budget: the model's context, less the chat's own tokens (every message's text, the last user message's
query included), less room for the answer (as the overflow policy reserves it: `max_tokens`, or 512, at
most a quarter of the context), less a margin for the chat template and the passages' headings.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from openlms.core.errors import InvalidRequestError, ModelNotFoundError
from openlms.core.types import LoadConfig, ModelKind
from openlms.engine.manager import Instance
from openlms.services.documents import DEFAULT_EMBEDDING_MODEL, DocumentService
from openlms.services.documents.extract import extract_text
from openlms.services.documents.types import DocumentContext, ExtractedDocument
from openlms.services.generation import Predictor
from openlms.services.models import ModelRef, ModelService
from openlms.services.overflow import reserve_for_reply
from openlms.store.rag_cache import RagCache

MESSAGE_MARGIN: Final = 16  # tokens a chat template adds around each message (role, markers), a bound
TEMPLATE_MARGIN: Final = 64  # and around the whole chat (BOS, the answer's opening, the passages' headings)
EXTRACT_CACHE: Final = 32  # extracted documents kept in memory (by content hash)

log = logging.getLogger("openlms.server")


class Documents(Protocol):
    """The documents service's facade (`services/documents.DocumentService`)."""

    async def prepare(
        self,
        documents: Sequence[ExtractedDocument],
        query: str,
        *,
        budget_tokens: int,
        count_tokens: Callable[[str], int],
    ) -> DocumentContext: ...


@dataclass(frozen=True, slots=True)
class Budget:
    """How the model's context was shared: `documents` tokens for the documents, after the chat's own
    (`chat`) and the room kept for the answer (`answer`)."""

    context: int
    chat: int
    answer: int
    documents: int


@dataclass(frozen=True, slots=True)
class PreparedDocuments:
    messages: list[dict[str, Any]]  # the chat with the documents in its last user message
    context: DocumentContext
    budget: Budget


class ChatDocuments:
    def __init__(self, models: ModelService, documents: Documents) -> None:
        self.models = models
        self.documents = documents
        self._extracted: OrderedDict[str, ExtractedDocument] = OrderedDict()

    @classmethod
    def for_predictor(cls, predictor: Predictor) -> ChatDocuments:
        """Documents embedded with the default embedding model, loaded beside the chat's model."""
        models = predictor.models
        key = DEFAULT_EMBEDDING_MODEL
        loading = asyncio.Lock()

        async def embed(texts: Sequence[str]) -> list[list[float]]:
            async with loading:
                if models.find_loaded(key, ModelKind.EMBEDDING) is None:
                    await _load_beside(models, key)
            _, result = await predictor.embed(key, texts)
            return result.vectors

        cache = RagCache.in_state_dir(models.settings.state_dir)
        return cls(models, DocumentService(cache, embed, embedding_model=key))

    async def extract(self, name: str, data: bytes) -> ExtractedDocument:
        """The document's text (in a worker thread; the same bytes under the same name are read once)."""
        key = hashlib.sha256(name.encode() + b"\0" + data).hexdigest()
        cached = self._extracted.get(key)
        if cached is not None:
            self._extracted.move_to_end(key)
            return cached
        document = await asyncio.to_thread(extract_text, name, data)
        self._extracted[key] = document
        while len(self._extracted) > EXTRACT_CACHE:
            self._extracted.popitem(last=False)
        return document

    async def prepare(
        self,
        model: ModelRef,
        messages: Sequence[Mapping[str, Any]],
        documents: Sequence[ExtractedDocument],
        *,
        max_tokens: int | None = None,
        ttl_seconds: float | None = None,
    ) -> PreparedDocuments:
        """`messages` with `documents` put into the last user message (its text is the query)."""
        at = last_user_index(messages)
        instance = await self.models.for_inference(model, ModelKind.LLM, ttl_seconds=ttl_seconds)
        count = _counter(instance)
        query = str(messages[at].get("content") or "")
        budget = await asyncio.to_thread(_budget, instance, messages, count, max_tokens)
        if budget.documents <= 0:
            raise InvalidRequestError(
                f"The chat leaves no room for its documents in {instance.identifier}'s context of "
                f"{budget.context} tokens. Load the model with a longer context or start a new chat."
            )
        context = await self.documents.prepare(
            documents, query, budget_tokens=budget.documents, count_tokens=count
        )
        _log(instance.identifier, context, budget)
        out = [dict(m) for m in messages]
        out[at]["content"] = context.prompt_text
        return PreparedDocuments(out, context, budget)


async def _load_beside(models: ModelService, key: str) -> None:
    """The embedding model loaded without evicting the JIT-loaded chat model (a JIT load would: auto-evict
    keeps one JIT model), unloaded after the JIT idle TTL as a JIT model would be."""
    ttl = models.settings.jit_ttl_seconds or None
    try:
        await models.load(key, LoadConfig(), ttl_seconds=ttl)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(
            key,
            reason=f"Documents too long for the model's context are searched with the embedding model "
            f"'{key}', which is not downloaded. Get it with `lms get {key}` (or openlms-setup-models), "
            "or use a model with a longer context.",
        ) from exc


def last_user_index(messages: Sequence[Mapping[str, Any]]) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return index
    raise InvalidRequestError("Documents need a user message to answer: add the question as a user message.")


def _counter(instance: Instance) -> Callable[[str], int]:
    runtime = instance.runtime

    def count(text: str) -> int:
        return len(runtime.tokenize(text, add_special=False, parse_special=False))

    return count


def _budget(
    instance: Instance,
    messages: Sequence[Mapping[str, Any]],
    count: Callable[[str], int],
    max_tokens: int | None,
) -> Budget:
    context = int(instance.runtime.context_length)
    chat = sum(count(str(m.get("content") or "")) + MESSAGE_MARGIN for m in messages)
    answer = reserve_for_reply(context, max_tokens)
    return Budget(context, chat, answer, context - chat - answer - TEMPLATE_MARGIN)


def _log(identifier: str, context: DocumentContext, budget: Budget) -> None:
    """The citations go to the server log (`lms log stream --source server`): the SDK's prediction
    channel has no message that carries them."""
    log.info(
        "documents for %s: %s (%d tokens of %d for documents, %d kept for the answer)",
        identifier,
        context.mode,
        budget.documents,
        budget.context,
        budget.answer,
    )
    for number, citation in enumerate(context.citations, 1):
        page = "" if citation.page is None else f", page {citation.page}"
        log.info("citation %d: %s%s: %.80r", number, citation.file, page, citation.text)
