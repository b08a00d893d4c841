"""Error answers can always be sent: one that quotes a client's lone surrogate is still valid UTF-8 JSON."""

from __future__ import annotations

import json

from fastapi.responses import JSONResponse

from openlms.core.errors import InvalidRequestError, ModelNotFoundError
from openlms.server.errors import domain_error_body, error_body, sdk_error, sdk_unexpected_error


def test_an_error_quoting_a_lone_surrogate_renders_as_json() -> None:
    body = error_body("No model 'x\ud800'.", "invalid_request_error", param="model.\udfff")
    rendered = JSONResponse(body).body  # a surrogate would raise UnicodeEncodeError here
    assert json.loads(rendered)["error"] == {
        "message": "No model 'x\ufffd'.",
        "type": "invalid_request_error",
        "param": "model.\ufffd",
        "code": None,
    }


def test_domain_and_sdk_errors_quoting_a_surrogate_are_encodable() -> None:
    status, body = domain_error_body(ModelNotFoundError("x\ud800"))
    assert status == 404
    json.dumps(body, ensure_ascii=False).encode("utf-8")
    error = sdk_error(InvalidRequestError("bad '\ud800'"))
    assert error["title"] == error["rootTitle"] == "bad '\ufffd'"
    assert sdk_unexpected_error(ValueError("\udc80"))["title"] == "Internal error: \ufffd"
