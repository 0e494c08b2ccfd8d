"""The values of the ``RESTAUTH_SELF_SERVICE_*`` settings, checked.

Kept apart from the API so that the settings can check them without
importing it (the API needs the settings).
"""

from __future__ import annotations

import re
import urllib.parse

from restauth_wsgi.values import check_str_tuple

#: Where Jira and Confluence Data Center serve their personal access token API.
DEFAULT_API_PATH = "/rest/pat/latest/tokens"

# Segments of unreserved characters (RFC 3986), none of them '.' or '..': a
# path that every router reads one way, and that a glob can name literally.
_SEGMENT = r"/(?!\.\.?(?:/|$))[A-Za-z0-9._~-]+"
_API_PATH = re.compile(f"(?:{_SEGMENT}){{1,20}}")


def check_api_path(value: object) -> str:
    """``RESTAUTH_SELF_SERVICE_PATH``: an absolute path without a trailing slash,
    of letters, digits and ``.``, ``_``, ``~``, ``-`` (no globs, no ``.``
    or ``..`` segments, nothing to decode).

    :raises ValueError: saying what is wrong.
    """
    if not isinstance(value, str) or len(value) > 200 or not _API_PATH.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a path for the API; write one such as {DEFAULT_API_PATH}"
            " (letters, digits, '.', '_', '~' and '-' between slashes, no trailing slash)"
        )
    return value


def check_origins(value: object) -> tuple[str, ...]:
    """``RESTAUTH_SELF_SERVICE_CORS_ORIGINS``: exact origins
    (``https://app.example.com``, ``http://127.0.0.1:3000``), compared as
    browsers send them in ``Origin``; never ``*``.

    :raises ValueError: naming the first that is not an origin.
    """
    origins = check_str_tuple(value)
    for origin in origins:
        if origin == "*":
            raise ValueError(
                "'*' would let any web page use the API with its visitors' credentials;"
                " list the exact origins (https://app.example.com)"
            )
        parts = urllib.parse.urlsplit(origin)
        try:
            parts.port  # noqa: B018 - raises for a port that is not a number
        except ValueError:
            parts = parts._replace(scheme="")
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or f"{parts.scheme}://{parts.netloc}" != origin
            or parts.username is not None
            or origin != origin.lower()
        ):
            raise ValueError(
                f"{origin!r} is not an origin; write scheme://host[:port] in lower case,"
                " without a path or a trailing slash (https://app.example.com)"
            )
    return origins


def api_globs(path: str) -> tuple[str, str]:
    """The path globs the API answers for: the collection and one level below it."""
    return (path, path + "/*")
