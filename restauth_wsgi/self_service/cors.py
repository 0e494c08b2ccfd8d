"""CORS for the API: preflights answered for the listed origins only.

A web page on another origin may call the API only if its origin is listed
in ``RESTAUTH_SELF_SERVICE_CORS_ORIGINS``, compared exactly as the browser
sends ``Origin``. The answer names that origin, never ``*``, and never
allows credentials (``Access-Control-Allow-Credentials``): the API takes
credentials only from an ``Authorization`` header that the page's own
script sets, never from cookies or a browser's remembered Basic login.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from werkzeug.wrappers import Response

from restauth_wsgi.errors import Forbidden

#: What a listed origin's script may send.
METHODS = ("GET", "POST", "DELETE")
HEADERS = frozenset({"authorization", "content-type"})
#: How long a browser may keep a preflight's answer (seconds).
MAX_AGE = 600


class Cors:
    """The listed origins, and the headers their requests get.

    :param origins: exact origins (``https://app.example.com``).
    """

    def __init__(self, origins: Iterable[str]) -> None:
        self.origins = frozenset(origins)

    def preflight(self, environ: Mapping[str, Any]) -> Response:
        """The answer to a preflight: 204 for a listed origin asking for what
        the API allows, else 403 without any CORS header (the browser then
        refuses the page its request).

        :raises Forbidden: for an origin or a request that is not allowed.
        """
        origin = str(environ.get("HTTP_ORIGIN", ""))
        method = str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD", "")).strip()
        asked = str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", ""))
        headers = {h.strip().lower() for h in asked.split(",") if h.strip()}
        if origin not in self.origins:
            raise Forbidden(
                "This origin may not use the token API from a browser.",
                reason=f"CORS preflight from {origin[:100]!r}, not in"
                " RESTAUTH_SELF_SERVICE_CORS_ORIGINS",
            )
        if method not in METHODS or not headers <= HEADERS:
            raise Forbidden(
                f"A browser may send {', '.join(METHODS)} here, with the headers"
                " Authorization and Content-Type only.",
                reason=f"CORS preflight for {method[:20]!r} with {sorted(headers)[:5]}",
            )
        response = Response(status=204)
        del response.headers["Content-Type"]
        response.headers.update(self.headers(origin))
        response.headers["Access-Control-Allow-Methods"] = ", ".join(METHODS)
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = str(MAX_AGE)
        return response

    def headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of an answer to a request from ``origin``."""
        if origin is None or origin not in self.origins:
            # Answers differ by origin: a cache must not give one to another.
            return {"Vary": "Origin"}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
