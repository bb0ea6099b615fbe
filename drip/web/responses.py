"""What every route of the webhook app answers with: JSON errors, empty TwiML, small pages."""

from __future__ import annotations

import hmac
from typing import Any, Final

from flask import Response, jsonify, request

__all__ = ["EMPTY_TWIML", "ApiError", "check_bearer", "html_page", "json_error", "twiml"]

EMPTY_TWIML: Final = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


class ApiError(Exception):
    """An answer other than success: HTTP ``status`` with a JSON reason naming ``field``."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        self.status = status
        self.error = error
        self.field = field
        super().__init__(error)


def json_error(status: int, error: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": error}
    if field is not None:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def twiml() -> Response:
    return Response(EMPTY_TWIML, status=200, content_type="text/xml; charset=utf-8")


def html_page(title: str, message: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><h1>{title}</h1><p>{message}</p></body></html>"
    )


def check_bearer(expected: str | None) -> None:
    """Refuse the request (401) unless it carries ``Authorization: Bearer <expected>``."""
    if not expected:
        raise ApiError(
            401, "registration is disabled: the server has no DRIP_API_TOKEN", "Authorization"
        )
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise ApiError(401, "a valid bearer token is required", "Authorization")
