"""Hub failures -> openlms' domain errors, with messages that say what to do; what is worth a retry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final, TypeVar

import httpx2
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from openlms.core.errors import (
    HubAuthRequiredError,
    HubError,
    InvalidRequestError,
    ModelNotFoundError,
    OpenLMSError,
)

T = TypeVar("T")

MAX_BACKOFF_S: Final = 30.0
MAX_RETRY_AFTER_S: Final = 120.0
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
_TOKEN_HINT: Final = "set HF_TOKEN to a token of that account (or run `hf auth login`)"


def status_of(exc: BaseException) -> int | None:
    if isinstance(exc, HfHubHTTPError):
        return exc.response.status_code
    if isinstance(exc, httpx2.HTTPStatusError):
        return exc.response.status_code
    return None


def is_transient(exc: BaseException) -> bool:
    """A cut or refused connection, a timeout, a 429 or a 5xx: worth another try."""
    if isinstance(exc, OfflineModeIsEnabled):
        return False
    if isinstance(exc, httpx2.TransportError | ConnectionError | TimeoutError):
        return True
    status = status_of(exc)
    return status is not None and status in _TRANSIENT_STATUS


def retry_after_s(exc: BaseException) -> float | None:
    """The server's Retry-After (seconds) on a 429/503, capped."""
    if not isinstance(exc, HfHubHTTPError | httpx2.HTTPStatusError):
        return None
    value = exc.response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None


def backoff_delay(attempt: int, base_s: float, exc: BaseException) -> float:
    """Exponential backoff (base * 2^attempt, capped), or the server's Retry-After when it gave one."""
    told = retry_after_s(exc)
    return told if told is not None else min(base_s * (2**attempt), MAX_BACKOFF_S)


def with_retries(
    fn: Callable[[], T],
    *,
    retries: int,
    base_s: float,
    on_error: Callable[[BaseException], OpenLMSError],
    cancel: threading.Event | None = None,
) -> T:
    """`fn()`, retried on transient failures; the last failure (and any other) mapped by `on_error`."""
    attempt = 0
    while True:
        try:
            return fn()
        except OpenLMSError:
            raise
        except Exception as exc:
            if not is_transient(exc) or attempt >= retries:
                raise on_error(exc) from exc
            delay = backoff_delay(attempt, base_s, exc)
            attempt += 1
            if cancel is not None:
                if cancel.wait(delay):
                    raise on_error(exc) from exc
            else:
                time.sleep(delay)


def hub_error(exc: BaseException, *, endpoint: str, repo_id: str | None = None) -> OpenLMSError:
    """The domain error for a failed Hub call."""
    status = status_of(exc)
    web = f"{endpoint}/{repo_id}" if repo_id else endpoint
    if isinstance(exc, OfflineModeIsEnabled):
        return HubError(
            "Hugging Face offline mode is on (HF_HUB_OFFLINE is set in the server's environment): unset it "
            "to search and download models."
        )
    if status == 401 and _server_says(exc, "Invalid credentials"):
        return HubAuthRequiredError(
            f"{endpoint} refused the token sent (HF_TOKEN or the one saved by `hf auth login`): it is "
            "invalid or expired. Create a new one at https://huggingface.co/settings/tokens, or unset "
            "HF_TOKEN for public models."
        )
    if isinstance(exc, GatedRepoError) or (status in (401, 403) and repo_id is not None):
        return gated_error(repo_id or "?", web, status)
    if isinstance(exc, RevisionNotFoundError) and repo_id is not None:
        return ModelNotFoundError(repo_id, reason=f"'{repo_id}' has no such revision on {endpoint}.")
    if isinstance(exc, RepositoryNotFoundError) and repo_id is not None:
        return ModelNotFoundError(
            repo_id,
            reason=f"No model repository '{repo_id}' on {endpoint}. Check the name (user/repo, as in the "
            f"model page's URL); if it is private, {_TOKEN_HINT}.",
        )
    if status == 429:
        return HubError(
            f"{endpoint} keeps refusing requests (429 Too Many Requests). Wait a few minutes and try "
            "again, or set HF_TOKEN: signed-in users get higher limits."
        )
    if status is not None:
        return HubError(
            f"{endpoint} answered HTTP {status} for {web}. Try again later, or point HF_ENDPOINT "
            "(the `hub_endpoint` setting) at a working mirror."
        )
    if isinstance(exc, HFValidationError):
        return InvalidRequestError(f"'{repo_id}' is not a valid Hugging Face repo id: {exc}", param="model")
    if not is_transient(exc):
        return HubError(
            f"{endpoint} gave an answer openlms cannot use ({type(exc).__name__}: {exc}). If HF_ENDPOINT "
            "(the `hub_endpoint` setting) points at a mirror, check that it speaks the Hugging Face Hub API."
        )
    return HubError(
        f"Could not reach the model hub at {endpoint} ({type(exc).__name__}: {exc}). Check the network and "
        "any proxy (HTTPS_PROXY), or set HF_ENDPOINT (the `hub_endpoint` setting) to a reachable mirror."
    )


def _server_says(exc: BaseException, text: str) -> bool:
    if not isinstance(exc, HfHubHTTPError | httpx2.HTTPStatusError):
        return False
    return text.lower() in (exc.response.headers.get("X-Error-Message") or "").lower()


def gated_error(repo_id: str, web: str, status: int | None) -> HubAuthRequiredError:
    name = repo_id.rsplit("/", 1)[-1]
    if status == 401:
        why = f"{name} is gated (or private) on Hugging Face and no valid token was sent"
    else:
        why = f"{name} is gated on Hugging Face and the token sent has not been granted access"
    return HubAuthRequiredError(f"{why}: accept its terms at {web} and {_TOKEN_HINT}.", param="model")
