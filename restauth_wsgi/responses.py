"""The middleware's own answers: JSON errors with RFC 6750 challenges.

The body always has the same shape, documented in docs/errors.md::

    {"error": "<code>", "error_description": "<sentence for the caller>",
     "errorMessages": ["<the same sentence>"], "errors": {}}

``error`` and ``error_description`` are RFC 6750's (OAuth clients read
them); ``errorMessages`` and ``errors`` are what Atlassian's REST APIs
answer, and so what their client libraries show: ``jira``'s
``JIRAError.text`` and ``atlassian-python-api``'s ``HTTPError`` come from
``errorMessages``. One body carries both, since the middleware cannot tell
the clients apart. The content type is exactly
``application/json;charset=UTF-8`` (no space): ``atlassian-python-api``
ignores the body of a 401 under any other spelling.

Challenges are written here rather than with werkzeug's
``WWWAuthenticate``, which leaves ``realm=api`` unquoted; RFC 7235 section
2.2 says a sender MUST quote the realm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from werkzeug.wrappers import Response

from restauth_wsgi.errors import (
    AuthenticationError,
    InsufficientScope,
    ServiceUnavailable,
    TooManyFailures,
)

# The errors RFC 6750 section 3.1 defines; only these go into a Bearer challenge.
_BEARER_ERRORS = frozenset({"invalid_request", "invalid_token", "insufficient_scope"})
# RFC 6750: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
_NOT_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def challenges(
    schemes: Sequence[str], realm: str, error: AuthenticationError | None = None
) -> list[str]:
    """One ``WWW-Authenticate`` value per enabled scheme.

    Only the scheme the refused credentials used carries ``error``; with no
    credentials (``MissingCredentials``) none does, as RFC 6750 asks.
    """
    values = []
    for scheme in schemes:
        value = f'{scheme} realm="{realm}"'
        if scheme == "Basic":
            value += ', charset="UTF-8"'
        elif error is not None and error.scheme == "Bearer" and error.code in _BEARER_ERRORS:
            description = _NOT_DESCRIPTION.sub("", error.description)
            value += f', error="{error.code}", error_description="{description}"'
            if isinstance(error, InsufficientScope):
                value += f', scope="{_NOT_DESCRIPTION.sub("", " ".join(error.scopes))}"'
        values.append(value)
    return values


#: The content type of every error body, spelt as Atlassian's servers spell it.
CONTENT_TYPE = "application/json;charset=UTF-8"


def error_body(error: AuthenticationError) -> dict[str, object]:
    """The JSON body of a refusal: RFC 6750's fields and Atlassian's."""
    return {
        "error": error.code,
        "error_description": error.description,
        "errorMessages": [error.description],
        "errors": {},
    }


def error_response(error: AuthenticationError, schemes: Sequence[str], realm: str) -> Response:
    """The HTTP answer for a refused request."""
    body = json.dumps(error_body(error))
    response = Response(body, status=error.status, content_type=CONTENT_TYPE)
    # An authentication answer is about this request's credentials only.
    response.headers["Cache-Control"] = "no-store"
    if isinstance(error, ServiceUnavailable | TooManyFailures):
        response.headers["Retry-After"] = str(error.retry_after)
    elif error.status != 403 or isinstance(error, InsufficientScope):
        # 401 and 400 offer every scheme; of the 403s only insufficient_scope
        # is a matter of credentials (a token with more scope would do).
        schemes = ("Bearer",) if isinstance(error, InsufficientScope) else schemes
        for value in challenges(schemes, realm, error):
            response.headers.add("WWW-Authenticate", value)
    return response
