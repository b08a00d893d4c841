"""What a user typed -> `ModelRef`: `user/repo`, `user/repo@q4_k_m`, Hugging Face URLs, bare terms."""

from __future__ import annotations

import os
import re
from typing import Final
from urllib.parse import unquote, urlsplit

from openlms.core.errors import InvalidRequestError
from openlms.store.hub.types import ModelRef
from openlms.store.naming import quantization_from_name

_HF_HOSTS: Final = frozenset({"huggingface.co", "www.huggingface.co", "hf.co"})
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_QUANT_RE: Final = re.compile(r"^[A-Za-z0-9_]{1,24}$")
_TERM_RE: Final = re.compile(r"^[\w .:/+-]{1,200}$")
_FILE_MARKERS: Final = ("blob", "resolve")


def parse_model_ref(text: str, *, endpoint: str | None = None) -> ModelRef:
    """Parse `text`; raises InvalidRequestError for something that is neither a repo nor a search term.

    URLs on huggingface.co / hf.co are understood, and on the host of `endpoint` or HF_ENDPOINT (a mirror)."""
    raw = text.strip()
    if not raw:
        raise InvalidRequestError(
            "Give a model: a search term, `user/repo` or a Hugging Face URL.", param="model"
        )
    body, quant = _split_quant(raw)
    host_path = _strip_host(body, _hf_hosts(endpoint))
    if host_path is not None:
        return _from_path(raw, host_path, quant)
    if body.count("/") == 1 and all(_NAME_RE.match(p) for p in body.split("/")):
        return ModelRef(text=raw, repo_id=body, term=None, quantization=quant, file=None)
    if not _TERM_RE.match(body) or body.count("/") > 1:
        raise _invalid(raw)
    return ModelRef(text=raw, repo_id=None, term=body, quantization=quant, file=None)


def _split_quant(raw: str) -> tuple[str, str | None]:
    """`x@q4_k_m` / `hf.co/u/r:Q4_K_M` -> (`x`, `Q4_K_M`)."""
    for sep in ("@", ":"):
        head, found, tail = raw.rpartition(sep)
        if not found or "/" in tail or not head:
            continue
        if sep == ":" and (tail.startswith("//") or head.lower() in ("http", "https")):
            continue
        if not _QUANT_RE.match(tail):
            raise InvalidRequestError(
                f"'{tail}' after '{sep}' in '{raw}' is not a quantization; write e.g. `user/repo@q4_k_m`.",
                param="model",
            )
        return head, tail.upper()
    return raw, None


def _hf_hosts(endpoint: str | None) -> frozenset[str]:
    extra = {urlsplit(e).hostname for e in (endpoint, os.environ.get("HF_ENDPOINT")) if e}
    return _HF_HOSTS | {h.lower() for h in extra if h}


def _strip_host(body: str, hosts: frozenset[str]) -> str | None:
    """The path after a Hugging Face host (with or without a scheme), or None when there is no host."""
    candidate = body if "://" in body else f"https://{body}"
    parts = urlsplit(candidate)
    if "://" in body and parts.scheme not in ("http", "https"):
        raise _invalid(body)
    host = (parts.hostname or "").lower()
    if host in hosts:
        return unquote(parts.path).strip("/")
    if "://" in body:
        raise InvalidRequestError(
            f"'{body}' is not a Hugging Face address; give `user/repo` or a https://huggingface.co/... URL.",
            param="model",
        )
    return None


def _from_path(raw: str, path: str, quant: str | None) -> ModelRef:
    segments = [s for s in path.split("/") if s]
    if segments and segments[0] == "models":
        segments = segments[1:]
    if len(segments) < 2 or not all(_NAME_RE.match(s) for s in segments[:2]):
        raise _invalid(raw)
    repo_id = f"{segments[0]}/{segments[1]}"
    rest = segments[2:]
    file: str | None = None
    if len(rest) >= 3 and rest[0] in _FILE_MARKERS:
        file = "/".join(rest[2:])
        quant = quant or quantization_from_name(file.rsplit("/", 1)[-1])
    elif rest and rest[0] not in ("tree", "blob", "resolve"):
        raise _invalid(raw)
    return ModelRef(text=raw, repo_id=repo_id, term=None, quantization=quant, file=file)


def _invalid(raw: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"'{raw}' is not a model reference: give a search term (`llama-3.1-8b`), `user/repo`, "
        "`user/repo@q4_k_m` or a https://huggingface.co/user/repo URL.",
        param="model",
    )
