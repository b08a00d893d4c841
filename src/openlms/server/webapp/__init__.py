"""The openlms web app (issue 14; `app/` in the repository, docs/app.md), served at `/`."""

from openlms.server.webapp.routes import install

__all__ = ["install"]
