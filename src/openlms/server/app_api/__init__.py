"""openlms extension: the web app's own endpoints under /api/v1/app/ (docs/http-api.md)."""
