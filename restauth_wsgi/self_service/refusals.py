"""The API's own refusals, and the answer each becomes.

They are :class:`~restauth_wsgi.errors.AuthenticationError` subclasses so
that the answer has the body every refusal of the middleware has
(:func:`~restauth_wsgi.responses.error_body`: RFC 6750's ``error`` and
``error_description``, Atlassian's ``errorMessages``), with one addition
Atlassian's REST APIs make: ``errors`` names the field that is wrong
(``{"errors": {"expirationDuration": "..."}}``). Unlike the middleware's
401 and 400, these carry no ``WWW-Authenticate`` challenge: the credentials
were fine, the request was not.
"""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

from restauth_wsgi.errors import AuthenticationError, ServiceUnavailable, TooManyFailures
from restauth_wsgi.responses import CONTENT_TYPE, error_body


class ApiRefusal(AuthenticationError):
    """A request the API cannot carry out as sent: 400 ``invalid_request``.

    :param field: the request field that is wrong (``name``,
        ``restrictions.allow``...), named in the body's ``errors``.
    """

    status = 400
    code = "invalid_request"

    def __init__(self, description: str, *, field: str | None = None, reason: str | None = None):
        super().__init__(description, reason=reason)
        self.field = field


class LimitReached(ApiRefusal):
    """A limit the administrator set forbids the token (how many, how long)."""

    code = "limit_exceeded"


class NotFound(ApiRefusal):
    """No such resource: an unknown path below the API, or a token id that is
    not one of the caller's (someone else's is not found either)."""

    status = 404
    code = "not_found"


class MethodNotAllowed(ApiRefusal):
    """The method has no meaning here; ``allow`` lists those that have."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, method: str, allow: tuple[str, ...]) -> None:
        super().__init__(f"{method} is not allowed here; use {' or '.join(allow)}.")
        self.allow = allow


class UnsupportedMediaType(ApiRefusal):
    """A body that is not declared as JSON (also what keeps HTML forms out)."""

    status = 415
    code = "unsupported_media_type"


class BodyTooLarge(ApiRefusal):
    """A body longer than the API reads."""

    status = 413
    code = "request_too_large"


def refusal_response(error: AuthenticationError) -> Response:
    """The answer for a refusal of the API (or of the store behind it)."""
    body = error_body(error)
    if isinstance(error, ApiRefusal) and error.field is not None:
        body["errors"] = {error.field: error.description}
    response = Response(json.dumps(body), status=error.status, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(error.allow)
    if isinstance(error, ServiceUnavailable | TooManyFailures):
        response.headers["Retry-After"] = str(error.retry_after)
    return response
