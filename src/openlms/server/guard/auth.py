"""API tokens on every route (issue 10, part 2). To be written."""

from __future__ import annotations

from fastapi import FastAPI

from openlms.core.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    return None
