"""The authenticated identity handed to the application.

The middleware stores it under ``environ["restauth.identity"]`` and copies
``username`` to ``REMOTE_USER`` and ``auth_type`` to ``AUTH_TYPE``.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    # Only named here: an identity does not need the tokens package to exist.
    from restauth_wsgi.tokens.restrictions import TokenRestrictions


_NO_CLAIMS: Mapping[str, Any] = types.MappingProxyType({})

#: What a username (``REMOTE_USER``) may not hold: control characters (C0 and
#: C1), line and paragraph separators (``str.splitlines`` splits on them, so
#: one log line would become two), bidirectional overrides and marks (a name
#: shown reversed), zero-width characters and lone surrogates.
NOT_IN_NAMES = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
_SCALARS = (str, int, float, bool, type(None))


#: The deepest nesting of claims kept (real claims are a few levels deep).
MAX_DEPTH = 32


def freeze(value: Any, depth: int = 0) -> Any:
    """JSON data made read-only: objects as read-only mappings, arrays as tuples.

    A remembered identity is shared by every request with the same
    credentials; an application that changed its claims would change the
    next request's identity.

    :raises ValueError: for data nested deeper than :data:`MAX_DEPTH`.
    """
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return value
    if depth >= MAX_DEPTH:
        raise ValueError(f"the claims are nested deeper than {MAX_DEPTH} levels")
    if kind is dict or isinstance(value, Mapping):
        # Copied whole (in C), then only the values that are not plain data
        # frozen in turn: claims are mostly strings and numbers.
        copy = dict(value)
        # Whether every value is plain data, asked in C (map and issuperset):
        # the usual case, with nothing more to freeze.
        if not _SCALAR_TYPES.issuperset(map(type, copy.values())):
            for key, item in copy.items():
                if type(item) not in _SCALAR_TYPES:
                    copy[key] = freeze(item, depth + 1)
        return types.MappingProxyType(copy)
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        return tuple(freeze(item, depth + 1) for item in value)
    return value


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def thaw(value: Any) -> Any:
    """Frozen JSON data back as plain dicts and lists (for ``json.dumps``)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(item) for item in value]
    return value


class Identity(NamedTuple):
    """Who made the request and how that was established.

    Immutable, claims included (a remembered identity is shared by later
    requests with the same credentials), and a named tuple because it is
    built on every request.

    :param username: the value that becomes ``REMOTE_USER``.
    :param method: how the credentials were checked: ``api_token``, ``jwt``,
        ``introspection``, ``userinfo`` or ``password``.
    :param auth_type: the HTTP scheme that carried them, ``Bearer`` or
        ``Basic``; it becomes ``AUTH_TYPE``.
    :param provider: the configured provider name, for provider tokens.
    :param token_id: the public id of an API token (never its secret).
    :param scopes: granted scopes, if the credentials carry any.
    :param groups: groups or roles of the user, if known.
    :param expires_at: when the credentials stop being valid (Unix time).
    :param claims: the token's claims or the provider's answer, as read-only
        JSON data (see :func:`freeze`).
    :param restrictions: what an API token may do, if its administrator limited it.
    """

    username: str
    method: str
    auth_type: str
    provider: str | None = None
    token_id: str | None = None
    scopes: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    expires_at: float | None = None
    claims: Mapping[str, Any] = _NO_CLAIMS
    restrictions: TokenRestrictions | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the identity as JSON-compatible data (for caches and output)."""
        return {
            "username": self.username,
            "method": self.method,
            "auth_type": self.auth_type,
            "provider": self.provider,
            "token_id": self.token_id,
            "scopes": sorted(self.scopes),
            "groups": sorted(self.groups),
            "expires_at": self.expires_at,
            "claims": thaw(self.claims),
            "restrictions": None if self.restrictions is None else self.restrictions.describe(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identity:
        """Rebuild an identity from :meth:`to_json` output.

        :raises KeyError, TypeError, ValueError: when ``data`` is not such output.
        """
        expires_at = data.get("expires_at")
        return cls(
            username=str(data["username"]),
            method=str(data["method"]),
            auth_type=str(data["auth_type"]),
            provider=_optional_str(data.get("provider")),
            token_id=_optional_str(data.get("token_id")),
            scopes=frozenset(str(s) for s in data.get("scopes", ())),
            groups=frozenset(str(g) for g in data.get("groups", ())),
            expires_at=None if expires_at is None else float(expires_at),
            claims=freeze(data.get("claims") or {}),
        )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
