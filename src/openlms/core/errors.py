"""Domain errors. No HTTP here: `server/errors.py` maps each class to a status code and wire format.

Tree:
    OpenLMSError
    ├── InvalidRequestError            bad input (a field's value, a malformed message list)
    │   ├── ContextLengthExceededError the prompt does not fit in the loaded context
    │   ├── WrongModelTypeError        e.g. embeddings asked of an LLM
    │   ├── NoChatTemplateError        a chat request for a model with no usable template
    │   └── DocumentError              a chat's document cannot be read (scanned, encrypted, corrupt)
    │       └── UnsupportedDocumentError  not .pdf/.docx/.txt/.md
    ├── ModelNotFoundError             no downloaded model / loaded instance matches a query
    ├── PresetNotFoundError            no config preset matches a (fuzzy) preset identifier
    ├── IdentifierInUseError           a load asked for an identifier that is taken
    ├── PermissionDeniedError          a local-only operation asked from another machine
    ├── ModelLoadError                 llama.cpp could not load a file (corrupt, out of memory)
    ├── ModelUnloadedError             the instance went away while a request used it
    ├── ServerBusyError                a loaded model's prediction queue is full (503, Retry-After)
    └── EngineError                    an unexpected failure inside the engine
        ├── InferenceError             llama.cpp failed to evaluate a batch (decode, encode, pooling)
        └── ModelCrashedError          the model's worker process died (its requests end with this)
"""

from __future__ import annotations

from collections.abc import Sequence


class OpenLMSError(Exception):
    """Base of every error that openlms reports to a client."""

    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequestError(OpenLMSError):
    code = "invalid_request"


class ContextLengthExceededError(InvalidRequestError):
    code = "context_length_exceeded"

    def __init__(self, prompt_tokens: int, context_length: int, *, param: str | None = "messages") -> None:
        super().__init__(
            f"The prompt has {prompt_tokens} tokens, more than the loaded context length of "
            f"{context_length} tokens allows. Shorten the prompt, or load the model with a larger "
            "context length (e.g. `lms load <model> --context-length 8192`).",
            param=param,
        )
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length


class WrongModelTypeError(InvalidRequestError):
    code = "wrong_model_type"


class NoChatTemplateError(InvalidRequestError):
    code = "no_chat_template"


class ModelNotFoundError(OpenLMSError):
    code = "model_not_found"

    def __init__(self, query: str, *, available: Sequence[str] = (), reason: str | None = None) -> None:
        hint = f" Available: {', '.join(available)}." if available else ""
        text = reason or f"No model matching '{query}' was found."
        super().__init__(f"{text}{hint}", param="model")
        self.query = query
        self.available = list(available)


class PresetNotFoundError(OpenLMSError):
    code = "preset_not_found"

    def __init__(self, query: str, *, available: Sequence[tuple[str, str]] = ()) -> None:
        names = ", ".join(f"'{name}'" for _, name in available[:10])
        hint = (
            f" Available presets: {names}."
            if names
            else " No presets are saved (~/.lmstudio/config-presets)."
        )
        super().__init__(f"No preset matching '{query}' was found.{hint}", param="preset")
        self.query = query
        self.available = list(available)  # (identifier, name)


class IdentifierInUseError(OpenLMSError):
    code = "identifier_in_use"

    def __init__(self, identifier: str) -> None:
        super().__init__(
            f"Model load error: an instance with identifier '{identifier}' already exists. "
            "Choose another --identifier or unload it first.",
            param="identifier",
        )
        self.identifier = identifier


class PermissionDeniedError(OpenLMSError):
    code = "permission_denied"


class ModelLoadError(OpenLMSError):
    code = "model_load_failed"


class ModelUnloadedError(OpenLMSError):
    code = "model_unloaded"


class EngineError(OpenLMSError):
    code = "engine_error"


class InferenceError(EngineError):
    """A loaded model failed a step of a prediction or an embedding (e.g. `llama_decode` found no room
    in the KV cache). The model stays loaded; the request fails."""

    code = "inference_failed"


class InsufficientMemoryError(InvalidRequestError):
    """A load asked for more memory (weights + KV cache for its context) than the machine has free."""

    code = "insufficient_memory"


class InvalidModelFileError(ModelLoadError):
    """The model file itself cannot be loaded (corrupt, truncated, crafted, unsupported architecture):
    the caller's input, not a server failure."""

    code = "invalid_model_file"


class TemplateLimitError(InvalidRequestError):
    """A chat template ran past its render time or output size limit (`template_timeout_s`,
    `template_max_chars`), and was stopped."""

    code = "template_limit_exceeded"


class ServerBusyError(OpenLMSError):
    """A loaded model already runs its `parallel` predictions and its queue holds
    `max_queued_predictions` more: try again later (HTTP 503 with `Retry-After`)."""

    code = "server_busy"

    def __init__(self, message: str, *, retry_after_s: int = 1, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.retry_after_s = retry_after_s


class ApiSwitchedOffError(OpenLMSError):
    """The server's API is switched off for other programs (`api_enabled`: the app's Developer page,
    `lms server start` switches it on). HTTP 503; the SDK's handshake is refused with the message."""

    code = "server_switched_off"


class ModelCrashedError(EngineError):
    """The worker process that ran a loaded model died (a llama.cpp abort, out of memory, a kill).
    Only that model's requests fail; the model is unloaded and can be loaded again."""

    code = "model_crashed"


class HubError(OpenLMSError):
    """The model hub (Hugging Face, or `hub_endpoint`) could not be reached or gave an answer we cannot
    use, after retries. The message names the address tried and what to check (network, HF_ENDPOINT)."""

    code = "hub_unavailable"


class HubAuthRequiredError(HubError):
    """A gated or private repository: the hub wants a token (HF_TOKEN) that has accepted its terms."""

    code = "hub_auth_required"


class DownloadError(OpenLMSError):
    """A model download failed (after retries); what was downloaded so far is kept for a resume."""

    code = "download_failed"


class DownloadVerificationError(DownloadError):
    """A downloaded file's sha256 differs from the hub's: the file is deleted, nothing is listed."""

    code = "download_corrupt"


class InsufficientDiskError(DownloadError):
    """Not enough free disk space in the models folder for a download."""

    code = "insufficient_disk"


class DownloadJobNotFoundError(OpenLMSError):
    """No download job with this id (LM Studio's `job_not_found`)."""

    code = "job_not_found"


class UnsupportedFormatError(InvalidRequestError):
    """A model format this runtime cannot run (MLX, safetensors-only repos): llama.cpp runs GGUF."""

    code = "unsupported_format"


class DocumentError(InvalidRequestError):
    """A document attached to a chat cannot be read: a scanned PDF with no text layer, a password, a
    corrupt file (422; the message names the file and says what to do)."""

    code = "document_unreadable"


class UnsupportedDocumentError(DocumentError):
    """A document of a type openlms does not read (the message lists the supported types)."""

    code = "unsupported_document_type"


class ResponseNotFoundError(OpenLMSError):
    """No stored Responses-API response with this id (never stored, deleted, or pruned as too old)."""

    code = "response_not_found"


class PreviousResponseNotFoundError(ResponseNotFoundError):
    """`previous_response_id` names no stored response (OpenAI's `previous_response_not_found`)."""

    code = "previous_response_not_found"


class McpConfigError(InvalidRequestError):
    """`mcp.json` cannot be read as written (bad JSON, a wrong shape): the message names the file, the
    line and the field, and says how to fix it."""

    code = "mcp_config_invalid"


class McpServerNotFoundError(OpenLMSError):
    """No server with this label in `mcp.json` (`mcp/<label>` integrations, `lms mcp rm`)."""

    code = "mcp_server_not_found"


class McpNotAllowedError(PermissionDeniedError):
    """A request asked for MCP that the server's settings do not allow: servers from `mcp.json` need
    `mcp_allow_json_servers`, per-request remote servers `mcp_allow_remote_servers` (both off by default)."""

    code = "mcp_not_allowed"


class McpConnectionError(OpenLMSError):
    """An MCP server could not be started or reached, or it ended the connection (LM Studio's
    `mcp_connection_error`)."""

    code = "mcp_connection_error"


class ConversationNotFoundError(OpenLMSError):
    """No conversation, folder or trash entry with this id or path in `<home>/conversations`."""

    code = "conversation_not_found"


class ConversationConflictError(OpenLMSError):
    """A conversations operation that would overwrite something (a folder that exists, a file written by
    a newer openlms that must be kept as it is)."""

    code = "conversation_conflict"


class LinkConfigError(InvalidRequestError):
    """LM Link's configuration refused (a peer's name or URL, a device name) or `link.json` unreadable: the
    message names the field and says what to give instead."""

    code = "link_config_invalid"


class PeerNotFoundError(OpenLMSError):
    """No LM Link peer of this name (`lms link rm`, the preferred device)."""

    code = "peer_not_found"
