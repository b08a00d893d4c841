"""One source of settings for environment variables, the settings file in the home, and CLI flags.

Precedence, highest first: explicit overrides (CLI flags) > `OPENLMS_*` environment variables >
`<home>/openlms/settings.json` > defaults. The home itself comes from an override, `OPENLMS_HOME`, or
`~/.lmstudio`, in that order, because the settings file lives inside it.

The server persists its state (port, CORS, JIT, auto-evict, default JIT TTL, bind address) back into the
settings file whenever it starts, so `lms server stop` / `lms server start` brings back the same server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from openlms.core.fsutil import atomic_write_text
from openlms.core.types import ContextOverflowPolicy

HOME_ENV = "OPENLMS_HOME"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".lmstudio").expanduser()


class Settings(BaseSettings):
    """Every openlms setting. Each field is `OPENLMS_<NAME>` in the environment and `<name>` in the file."""

    model_config = SettingsConfigDict(env_prefix="OPENLMS_", extra="ignore", validate_default=True)

    # Fields the server writes back to the settings file when it starts.
    PERSISTED: ClassVar[tuple[str, ...]] = (
        "port",
        "host",
        "cors",
        "jit",
        "auto_evict",
        "jit_ttl_seconds",
        "sdk_port",
        "require_auth",
        "api_enabled",
        "restore_loaded_models",
        "mcp_allow_json_servers",
        "mcp_allow_remote_servers",
    )

    home: Path = Field(
        default_factory=default_home, description="Data folder, LM Studio layout (~/.lmstudio)."
    )
    models_dir: Path | None = Field(
        default=None, description="Models folder (<publisher>/<repo>/<file>.gguf); default <home>/models."
    )
    host: str = Field(
        default="127.0.0.1", description="Address the server binds; 0.0.0.0 serves the network."
    )
    port: int = Field(default=1234, ge=1, le=65535, description="HTTP port of the server (last used one).")
    sdk_port: int = Field(
        default=41343,
        ge=0,
        le=65535,
        description="Second port serving the same APIs, where the lmstudio SDK looks for the server when it "
        "is given no host (its first default port); 0: none.",
    )
    cors: bool = Field(default=False, description="Send CORS headers allowing any origin.")
    jit: bool = Field(default=True, description="Load a downloaded model on its first inference request.")
    auto_evict: bool = Field(default=True, description="Keep at most one JIT-loaded model at a time.")
    jit_ttl_seconds: int = Field(
        default=3600, ge=0, description="Idle time after which a JIT-loaded model is unloaded (0: never)."
    )
    default_context_length: int = Field(
        default=4096, ge=64, description="Context length for loads that do not set one (capped by the model)."
    )
    n_threads: int | None = Field(
        default=None, ge=1, description="CPU threads for inference; default: all cores."
    )
    log_level: str = Field(default="info", description="Server log level: debug, info, warning, error.")
    separate_reasoning_content: bool = Field(
        default=True,
        description="Put a thinking model's reasoning in `reasoning_content` (or `reasoning` for gpt-oss), "
        "not in `content` (LM Studio's Developer setting). A model's own setting wins.",
    )
    context_overflow_policy: ContextOverflowPolicy = Field(
        default=ContextOverflowPolicy.STOP_AT_LIMIT,
        description="When a conversation does not fit the context: stopAtLimit (a prompt that does not fit "
        "is an error), truncateMiddle or rollingWindow. A model's own setting and the request win.",
    )

    # Safety (issue 10): who may call the server, and how much one request may ask for.
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the server answers besides localhost, 127.0.0.1 and [::1] (and the "
        "machine's own names and addresses when bound to the network). Other Host headers get 403.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins (e.g. http://localhost:5173) allowed besides the server's own; "
        "`cors` allows any. Requests without an Origin header (scripts, SDKs) always pass.",
    )
    require_auth: bool = Field(
        default=False,
        description="Require an API token (`lms token create`) on every API request "
        "(LM Studio's Require Authentication).",
    )
    api_enabled: bool = Field(
        default=True,
        description="Serve the API to other programs (the app's Developer page switch, `lms server start`). "
        "Off: /v1, /api and the SDK's websockets answer 503; the app and `lms` keep working.",
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest HTTP request body, bytes (413 above)."
    )
    max_json_depth: int = Field(default=64, ge=4, description="Deepest nesting of a JSON body (400 above).")
    max_messages: int = Field(default=10_000, ge=1, description="Most messages in one chat request.")
    max_tools: int = Field(default=512, ge=1, description="Most tools in one request.")
    max_stop_strings: int = Field(default=64, ge=1, description="Most stop strings in one request.")
    max_images: int = Field(default=16, ge=0, description="Most images in one request.")
    max_image_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="Largest image in a request, bytes (decoded)."
    )
    max_ws_clients: int = Field(
        default=256,
        ge=1,
        description="Most websocket connections open at once (the SDK opens one per namespace).",
    )
    idle_timeout_s: float = Field(
        default=5.0, gt=0, description="Seconds an idle keep-alive HTTP connection stays open."
    )
    template_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest a chat template may take to render, seconds (400 above)."
    )
    template_max_chars: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Longest text a chat template may render (400 above)."
    )
    load_guardrails: str = Field(
        default="strict",
        pattern="^(strict|relaxed|off)$",
        description="Refuse a model load whose estimated memory (weights + KV cache) does not fit: strict "
        "(in the memory available now), relaxed (in the machine's total memory) or off.",
    )
    # Engine v2 (issue 11).
    prompt_cache_mb: int = Field(
        default=1024,
        ge=0,
        description="Host memory (MB) per loaded model that keeps the KV cache of recent prompts, so that "
        "a conversation served again after another one skips its cached prefix (0: off; least recently used "
        "out first).",
    )
    max_queued_predictions: int = Field(
        default=32,
        ge=0,
        description="Predictions that may wait for a free slot of one loaded model (beyond its `parallel` "
        "running ones); more are refused with 503 and Retry-After.",
    )
    isolate_models: bool = Field(
        default=True,
        description="Run each loaded model in its own worker process, so that a crash inside llama.cpp "
        "ends only that model's requests.",
    )
    # Model downloads (issue 12).
    hub_endpoint: str | None = Field(
        default=None,
        description="Hugging Face Hub address for search and downloads; default: the HF_ENDPOINT "
        "environment variable, else https://huggingface.co. HF_TOKEN (or `hf auth login`) is used for "
        "gated repos.",
    )
    max_concurrent_downloads: int = Field(
        default=2, ge=1, le=16, description="Model downloads that run at once; more wait their turn."
    )
    download_retries: int = Field(
        default=5, ge=0, le=50, description="Retries (with backoff) of a cut or throttled download."
    )
    # MCP (issue 13): servers from <home>/mcp.json and per-request remote servers.
    mcp_allow_json_servers: bool = Field(
        default=False,
        description="Allow requests (/api/v1/chat integrations, /v1/responses mcp tools) to call the servers "
        "of mcp.json, which may run programs on this machine (LM Studio's \"Allow calling servers from "
        'mcp.json").',
    )
    mcp_allow_remote_servers: bool = Field(
        default=False,
        description="Allow a request to name a remote MCP server by URL (ephemeral_mcp integrations, "
        '/v1/responses mcp tools with server_url) (LM Studio\'s "Allow per-request MCPs").',
    )
    mcp_tool_timeout_s: float = Field(
        default=60.0, gt=0, le=3600, description="Seconds an MCP tool call may take before it fails."
    )
    mcp_idle_stop_s: float = Field(
        default=600.0, gt=0, description="Seconds after its last use that an mcp.json server is stopped."
    )
    mcp_max_tool_rounds: int = Field(
        default=8, ge=1, le=64, description="Tool calls a server-side tool loop makes before it answers."
    )
    metrics: bool = Field(
        default=True, description="Serve Prometheus metrics at GET /metrics (as guarded as every route)."
    )
    # Running as a service.
    restore_loaded_models: bool = Field(
        default=False,
        description="On start, load again the models that were loaded when the server last stopped, "
        "with their load settings.",
    )
    log_max_bytes: int = Field(
        default=10_000_000, ge=10_000, description="Size at which the server log file is rotated."
    )
    log_backups: int = Field(default=3, ge=1, description="Rotated server log files kept.")
    app_dir: Path | None = Field(
        default=None,
        description="Folder of the built web app served at / (index.html, assets/); default: the one "
        "inside the openlms package, built by scripts/build-app.sh (docs/app.md).",
    )

    @property
    def resolved_models_dir(self) -> Path:
        return (self.models_dir or self.home / "models").expanduser()

    @property
    def state_dir(self) -> Path:
        """openlms's own files inside the home, kept apart from LM Studio's."""
        return self.home / "openlms"

    @property
    def settings_file(self) -> Path:
        return self.state_dir / "settings.json"

    @property
    def server_file(self) -> Path:
        """Written by a running server: its pid, host and port."""
        return self.state_dir / "server.json"

    @property
    def tokens_file(self) -> Path:
        """API tokens, hashed (file mode 0600)."""
        return self.state_dir / "tokens.json"

    @property
    def loaded_models_file(self) -> Path:
        """The models loaded when the server last stopped, with their load settings."""
        return self.state_dir / "loaded-models.json"

    @property
    def logs_dir(self) -> Path:
        return self.home / "server-logs"

    @property
    def server_log_file(self) -> Path:
        return self.logs_dir / "openlms-server.log"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SettingsFileSource(settings_cls))


class _SettingsFileSource(PydanticBaseSettingsSource):
    """Reads `<home>/openlms/settings.json`; the home is found before the file is read."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return read_settings_file(_home_for_file_source(self.current_state))


def _home_for_file_source(current: dict[str, Any]) -> Path:
    home = current.get("home")
    return Path(home).expanduser() if home else default_home()


def settings_file_for(home: Path) -> Path:
    return home / "openlms" / "settings.json"


def read_settings_file(home: Path) -> dict[str, Any]:
    path = settings_file_for(home)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"The settings file {path} is not valid JSON ({exc}). Fix or delete it.") from exc
    if not isinstance(data, dict):
        raise ValueError(f"The settings file {path} must hold a JSON object.")
    return data


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI-style overrides on top; `None` overrides are ignored."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def persist_settings(settings: Settings, fields: tuple[str, ...] = Settings.PERSISTED) -> None:
    """Write the given fields into the settings file, keeping what else it holds. Atomic."""
    data = read_settings_file(settings.home)
    dumped = settings.model_dump(mode="json")
    data.update({name: dumped[name] for name in fields})
    atomic_write_text(settings.settings_file, json.dumps(data, indent=2, sort_keys=True) + "\n")
