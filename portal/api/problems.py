"""RFC 9457 problem details for every API error, each with a `detail` a person understands.

Field errors are listed under `errors` ({field: [messages]}) and named in `detail`, so a caller's
log says what to fix without opening the response.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger(__name__)
PROBLEM_TYPE = "https://neomesh.invalid/problems/"
CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    411: "Length required",
    413: "Content too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    429: "Too many requests",
    500: "Internal error",
}


class Problem(exceptions.APIException):
    """An API error with our own status, plain-English detail and extra members."""

    def __init__(self, status_code: int, detail: str, *, kind: str = "", headers=None, **extra):
        super().__init__(detail)
        self.status_code = status_code
        self.kind = kind
        self.headers = headers
        self.extra = extra


def problem_response(status_code: int, detail: str, *, kind: str = "", headers=None, **extra):
    body = {
        "type": PROBLEM_TYPE + (kind or str(status_code)),
        "title": TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        **extra,
    }
    return Response(body, status=status_code, headers=headers, content_type=CONTENT_TYPE)


def _field_errors(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            name: [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
            for name, msgs in detail.items()
        }
    return {"non_field_errors": [str(m) for m in detail]}


def exception_handler(exc, context):
    headers = {}
    if isinstance(exc, Problem):
        return problem_response(
            exc.status_code, str(exc.detail), kind=exc.kind, headers=exc.headers, **exc.extra
        )
    if isinstance(exc, Http404):
        text = str(exc) or "There is nothing at this address."
        return problem_response(404, text if " " in text else "There is nothing at this address.")
    if isinstance(exc, PermissionDenied):
        return problem_response(403, str(exc) or "You may not do this.")
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        named = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items())
        return problem_response(400, f"Check these fields. {named}", kind="invalid", errors=errors)
    if isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 1) + (1 if exc.wait and exc.wait % 1 else 0)
        headers["Retry-After"] = str(max(wait, 1))
        return problem_response(
            429,
            f"Too many calls with this token: wait {headers['Retry-After']} seconds, then try "
            "again (or ask an administrator for a higher rate).",
            headers=headers,
        )
    if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        view = context.get("view")
        auth = view.get_authenticate_header(view.request) if view else None
        if auth:
            headers["WWW-Authenticate"] = auth
        detail = str(exc.detail)
        if isinstance(exc, exceptions.NotAuthenticated):
            detail = "Send a token as `Authorization: Bearer nmk_...`, or sign in to the portal."
        return problem_response(401, detail, headers=headers)
    if isinstance(exc, exceptions.ParseError):
        return problem_response(400, f"The body could not be read: {exc.detail}", kind="malformed")
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return problem_response(415, f"{exc.detail} See the API documentation for what it takes.")
    if isinstance(exc, exceptions.APIException):
        if exc.status_code == 403 and "CSRF" in str(exc.detail):
            return problem_response(
                403,
                "Signed-in calls need the CSRF token in the X-CSRFToken header "
                "(systems should use an API token instead).",
                kind="csrf",
            )
        return problem_response(exc.status_code, str(exc.detail))
    logger.exception("API call failed", exc_info=exc)
    return problem_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "Something went wrong on our side; it has been logged. Try again later.",
    )
