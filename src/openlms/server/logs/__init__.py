"""`lms log stream`'s server side: the log records handler and `GET /api/v1/logs/stream`."""
