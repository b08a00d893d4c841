"""Host allowlist, browser Origin checks and request limits (issue 10, part 1). To be written."""

from __future__ import annotations

from fastapi import FastAPI

from openlms.core.settings import Settings


def install_origin_and_host(app: FastAPI, settings: Settings) -> None:
    return None


def install_limits(app: FastAPI, settings: Settings) -> None:
    return None
