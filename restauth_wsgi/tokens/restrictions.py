"""Restrictions an administrator puts on one API token.

Set with ``restauth token create`` (``--read-only``, ``--allow 'GET /api/*'``,
``--network 10.0.0.0/8``, ``--scope read``), stored with the token as JSON,
and enforced on every request the token makes.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Set
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from restauth_wsgi.identity import NOT_IN_NAMES
from restauth_wsgi.request.client_address import IPAddress
from restauth_wsgi.request.paths import PathGlobs, RequestPath
from restauth_wsgi.tokens import format as token_format

#: Methods a read-only token (or a member of a read-only group) may use.
#: ``OPTIONS`` is not one: it is judged as every method (a view that does not
#: look at the method runs its code for it), CORS preflights aside.
READ_METHODS = frozenset({"GET", "HEAD"})
_METHOD = re.compile(r"\*|[A-Z]{1,20}")


def _check_text(what: str, text: str) -> None:
    """Refuse a glob or a scope that is empty, over 500 characters, or holds
    what no name may (NOT_IN_NAMES: control characters a terminal would obey
    when `restauth token list` shows them, line separators, bidirectional
    overrides, lone surrogates, which are not storable as UTF-8)."""
    if not 0 < len(text) <= 500 or NOT_IN_NAMES.search(text):
        raise ValueError(
            f"the {what} {text[:200]!r} holds a control character, a line separator or a"
            " bidirectional override, or is too long"
        )


@dataclass(frozen=True)
class TokenRestrictions:
    """What one token may do.

    :param read_only: only GET and HEAD.
    :param allow: ``(method, path glob)`` pairs, ``*`` for any method; when
        given, a request must match one. A ``HEAD`` request is judged as
        ``GET``, so ``GET`` entries grant it (an entry for ``HEAD`` grants nothing).
    :param networks: CIDRs the client address must be in, when given.
    :param scopes: scopes the token grants (for rules that require scopes).
    :param made_by: the id of the API token this one was made with (through
        the self-service API, ``RESTAUTH_SELF_SERVICE_FROM_TOKENS``): it stands
        only while that token does, so revoking a leaked token ends what it made.
    """

    read_only: bool = False
    allow: tuple[tuple[str, str], ...] = ()
    networks: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    made_by: str | None = None

    def __post_init__(self) -> None:
        for method, glob in self.allow:
            if not _METHOD.fullmatch(method) or not glob.startswith("/"):
                # Quoted: a stored row's text reaches the log through this.
                shown = f"{method[:20]!r} {glob[:200]!r}"
                raise ValueError(f"{shown} is not 'METHOD /path-glob' (or '* /glob')")
            _check_text("path glob", glob)
        for scope in self.scopes:
            _check_text("scope", scope)
        for network in self.networks:
            ipaddress.ip_network(network, strict=False)  # raises ValueError if not one
        if self.made_by is not None and not token_format.is_token_id(self.made_by):
            # Read from a stored row: anything else (a lone surrogate cannot
            # even be sent to the store) makes the row malformed.
            raise ValueError(f"made_by {self.made_by[:40]!r} is not a token's id")

    def refusal(
        self, methods: Set[str], path: RequestPath, address: IPAddress | None
    ) -> str | None:
        """Why this request is outside the restrictions, or ``None`` if it is within.

        :param methods: every method the request is judged as (``HEAD`` as
            ``GET``); each must be within the restrictions.
        :param path: an ``--allow`` glob grants only the path's canonical
            spelling, so ``/api/reports/../admin`` is refused.
        """
        writes = methods - READ_METHODS
        if self.read_only and writes:
            return f"the token is read-only and the method is {' and '.join(sorted(writes))}"
        for method in sorted(methods) if self.allow else ():
            if not any(m in ("*", method) and _globs(g).matches(path) for m, g in self.allow):
                return f"the token is not allowed {method} {path.text[:80]!r}"
        if self.networks and (
            address is None or not any(address in _network(n) for n in self.networks)
        ):
            return f"the token may not be used from {address}"
        return None

    def to_json(self) -> str:
        """For the token store."""
        return json.dumps(
            {
                "read_only": self.read_only,
                "allow": [list(pair) for pair in self.allow],
                "networks": list(self.networks),
                "scopes": list(self.scopes),
                **({"made_by": self.made_by} if self.made_by is not None else {}),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> TokenRestrictions | None:
        """Back from the store (``None`` for a token without restrictions)."""
        if not text:
            return None
        data: dict[str, Any] = json.loads(text)
        return cls(
            read_only=bool(data.get("read_only", False)),
            allow=tuple((str(m), str(g)) for m, g in data.get("allow", ())),
            networks=tuple(map(str, data.get("networks", ()))),
            scopes=tuple(map(str, data.get("scopes", ()))),
            made_by=None if data.get("made_by") is None else str(data["made_by"]),
        )

    def describe(self) -> str:
        """A short human summary for ``restauth token list``."""
        parts = ["read-only"] if self.read_only else []
        parts += [f"{m} {g}" for m, g in self.allow]
        parts += [f"from {n}" for n in self.networks]
        parts += [f"scope {s}" for s in self.scopes]
        parts += [f"made by id:{self.made_by}"] if self.made_by is not None else []
        return "; ".join(parts)


def parse_allow(entry: str) -> tuple[str, str]:
    """One ``--allow`` entry, ``'METHOD /path-glob'`` (``*`` for any method), as
    ``(METHOD, glob)``.

    :raises ValueError: saying what to write instead.
    """
    method, _, glob = entry.strip().partition(" ")
    if method.startswith("/") or not glob.strip():
        # '/rest/*' alone: the method was left out (an easy slip).
        shown = entry.strip()
        raise ValueError(
            f"{shown!r} needs a method and a path glob: write 'GET {shown}' for"
            f" one method or '* {shown}' for any"
        )
    if method.upper() == "HEAD":
        raise ValueError("a HEAD request is judged as GET; write GET (which grants HEAD too)")
    if method != "*" and method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise ValueError(
            f"a {method.upper()[:20]} request is judged as every method (a view may run any"
            " of its code for it); write '*' to grant it"
        )
    pair = (method.upper(), glob.strip())
    if not _METHOD.fullmatch(pair[0]) or not pair[1].startswith("/"):
        raise ValueError(f"{entry.strip()!r} is not 'METHOD /path-glob' (or '* /glob')")
    _check_text("path glob", pair[1])
    return pair


@lru_cache(maxsize=512)
def _globs(glob: str) -> PathGlobs:
    return PathGlobs((glob,))


@lru_cache(maxsize=512)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)
