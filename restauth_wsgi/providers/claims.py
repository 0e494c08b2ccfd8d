"""From a token's claims (or a provider's answer) to the identity the app sees.

The username attribute is a dotted path into the claims (``realm_access.roles``
style; a key that itself contains dots, such as ``https://slack.com/user_id``,
is matched whole first), or several, the first present winning. Transforms
run in a fixed order: the regex (which must match the whole value), then
stripping one of the listed e-mail domains, then lower-casing, then the
provider's prefix.

No transform may make two people one: only the domains the administrator
lists are stripped (``alice@attacker.example`` stays itself), and
lower-casing never turns a non-ASCII character into an ASCII one (the
Kelvin sign U+212A lower-cases to ``k`` in Python).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from restauth_wsgi.errors import InvalidToken
from restauth_wsgi.identity import NOT_IN_NAMES, Identity, freeze

# Where providers put the client a token was issued to.
CLIENT_ID_CLAIMS = ("client_id", "azp", "appid", "cid")
#: How a provider's tokens without a user (client credentials) are told apart:
#: ``generic`` (no username, or the username is the client id), ``azure``
#: (app-only: ``idtyp`` is ``app``, or no ``idtyp`` and no ``scp``; Microsoft's
#: claims-validation guidance), ``keycloak`` (the user ``service-account-<azp>``).
CLIENT_TOKEN_RULES = ("generic", "azure", "keycloak")
_SERVICE_ACCOUNT_USER = "service-account-"
_NO_GROUPS: frozenset[str] = frozenset()
_NO_SCOPES: frozenset[str] = frozenset()
# Where providers put granted scopes: a space-separated string or a list.
SCOPE_CLAIMS = ("scope", "scp", "scopes")
# The same names as sets, to ask in C whether a token has any of them (a
# set's isdisjoint over the claims is quicker than the keys' over a tuple).
_SCOPE_CLAIM_SET = frozenset(SCOPE_CLAIMS)
_CLIENT_ID_CLAIM_SET = frozenset(CLIENT_ID_CLAIMS)
_new_tuple = tuple.__new__
# Tuples, not unions: ``list | tuple`` builds a union object on every call.
_ARRAYS = (list, tuple)
_NAMES = (str, int)


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` in ``claims``, or ``None``."""
    if path in claims:
        return claims[path]
    head, dot, rest = path.partition(".")
    while dot:
        value = claims.get(head)
        if isinstance(value, Mapping):
            found = claim(value, rest)
            if found is not None:
                return found
        more, dot, rest = rest.partition(".")
        head = f"{head}.{more}"
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, _ARRAYS):
        # Names and numeric ids; a boolean is an int to isinstance, not a name.
        return [
            str(item)
            for item in value
            if isinstance(item, _NAMES) and not isinstance(item, bool) and str(item)
        ]
    return []


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """Granted scopes, from ``scope``/``scp`` (space-separated) or a ``scopes`` list."""
    if _SCOPE_CLAIM_SET.isdisjoint(claims):
        return _NO_SCOPES  # asked in C: most tokens of most providers name none
    for name in SCOPE_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list):
            return frozenset(_strings(value))
    return frozenset()


@dataclass(frozen=True)
class IdentityMapping:
    """How one provider's claims become an :class:`Identity`.

    :param username_attributes: paths tried in order for ``REMOTE_USER``.
    :param groups_attributes: paths whose values (strings or lists) are groups.
    :param service_accounts: client id -> username, for tokens without a user
        (client credentials); a client not listed is refused.
    :param require_verified_email: when the username came from ``email``,
        refuse it unless ``email_verified`` is true.
    :param client_tokens: how tokens without a user are told apart (see
        :data:`CLIENT_TOKEN_RULES`); only those map to service accounts.
    :param allowed_clients: when given, only tokens issued to one of these
        clients (``client_id``, ``azp``, ``appid`` or ``cid``) are accepted.
    :param required_values: ``(claim, values)`` pairs: the claim must hold one
        of the values (Slack's team, for instance).
    """

    username_attributes: tuple[str, ...] = ("sub",)
    groups_attributes: tuple[str, ...] = ()
    lowercase: bool = False
    #: E-mail domains (lower case) stripped from usernames; others are kept whole.
    strip_domains: tuple[str, ...] = ()
    #: Put before every username from this provider (``gh:``), not before service accounts.
    username_prefix: str = ""
    regex: re.Pattern[str] | None = None
    replacement: str = r"\g<0>"
    service_accounts: Mapping[str, str] = field(default_factory=dict)
    require_verified_email: bool = False
    client_tokens: str = "generic"
    allowed_clients: tuple[str, ...] = ()
    required_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: The variable prefix (``RESTAUTH_<NAME>_``), for messages that name settings.
    prefix: str = "RESTAUTH_"

    def identity(
        self,
        claims: Mapping[str, Any],
        *,
        method: str,
        provider: str,
        expires_at: float | None,
        scopes: frozenset[str] | None = None,
    ) -> Identity:
        """The identity these claims prove.

        :raises InvalidToken: when no usable username can be found, or the
            token was issued to a client or in a place that is not accepted.
        """
        if self.allowed_clients or self.required_values:
            self._check_belongs(claims)
        try:
            frozen = freeze(claims)
        except ValueError as exc:
            raise _refuse(str(exc)) from None
        # Built by tuple.__new__ itself (a named tuple's own __new__ is a
        # Python function): this runs for every token seen for the first time.
        return _new_tuple(
            Identity,
            (
                self.username(claims),
                method,
                "Bearer",
                provider,
                None,
                scopes_of(claims) if scopes is None else scopes,
                self.groups(claims) if self.groups_attributes else _NO_GROUPS,
                expires_at,
                frozen,
                None,
            ),
        )

    def groups(self, claims: Mapping[str, Any]) -> frozenset[str]:
        """Every group (or role) the claims name."""
        found: set[str] = set()
        for path in self.groups_attributes:
            # A plain claim name (groups, roles) is one lookup, and a token
            # without it (most tokens, for most presets' default) makes no
            # call at all: a sixth of the mapping's instructions when counted.
            value = claims.get(path)
            if value is None and "." in path:
                value = claim(claims, path)  # a dotted path (realm_access.roles)
            if value is not None:
                found.update(_strings(value))
        return frozenset(found) if found else _NO_GROUPS

    def username(self, claims: Mapping[str, Any]) -> str:
        """``REMOTE_USER`` for these claims, or a service account's name."""
        attribute, raw = self._first_username(claims)
        client_id = client_of(claims)
        if self.client_tokens == "generic":
            if raw is None or (client_id is not None and raw == client_id):
                return self._service_account(client_id)
        elif self._is_client_token(claims, raw, client_id):
            return self._service_account(client_id)
        if raw is None:
            raise _refuse(
                f"the token has a user but none of {', '.join(self.username_attributes)};"
                f" set {self.prefix}USERNAME_ATTRIBUTE to a claim it carries (e.g. sub)"
                + (" or request the profile scope" if self.client_tokens == "azure" else "")
            )
        # `is True`, not `in (True, ...)`: 1 and 1.0 equal True.
        verified = claims.get("email_verified")
        if (
            attribute == "email"
            and self.require_verified_email
            and verified is not True
            and verified != "true"
        ):
            raise _refuse("the e-mail address in the token is not verified")
        return self.username_prefix + self.transform(raw)

    def transform(self, raw: str) -> str:
        """Apply the regex, domain stripping and lower-casing, and check the result."""
        value = raw
        if self.regex is not None:
            match = self.regex.fullmatch(value)
            if match is None:
                raise _refuse(f"the username does not match {self.prefix}USERNAME_REGEX")
            value = match.expand(self.replacement)
        if self.strip_domains:
            local, at, domain = value.rpartition("@")
            if at and local and domain.lower() in self.strip_domains:
                value = local
        if self.lowercase:
            value = lowercase(value)
        # Printable ASCII has no control characters (asked in C); others are searched.
        if (
            not value
            or len(value) > 255
            or (not (value.isascii() and value.isprintable()) and NOT_IN_NAMES.search(value))
        ):
            raise _refuse(
                "the username from the token is empty, too long or has control characters"
            )
        return value

    def _first_username(self, claims: Mapping[str, Any]) -> tuple[str, str | None]:
        # A string, the first string of a list (Azure B2C's "emails"), or a
        # numeric id (GitHub's); never an object's or a boolean's text.
        for path in self.username_attributes:
            # A plain claim name (sub, email), the usual case, without a call.
            value = claims[path] if path in claims else claim(claims, path)
            if isinstance(value, list) and value and isinstance(value[0], str):
                value = value[0]
            if isinstance(value, str) and value:
                return path, value
            if isinstance(value, int) and not isinstance(value, bool):
                return path, str(value)
        return "", None

    def _is_client_token(
        self, claims: Mapping[str, Any], raw: str | None, client_id: str | None
    ) -> bool:
        """Whether a token of this provider is a client's (no user), by its own marks."""
        if self.client_tokens == "azure":
            # idtyp is an optional claim; without it, a delegated (user) token
            # always carries scp and an app-only one never does.
            kind = claims.get("idtyp")
            return kind == "app" if kind is not None else "scp" not in claims
        # Keycloak names a client's service account user service-account-<client>.
        if raw is not None and raw.startswith(_SERVICE_ACCOUNT_USER):
            if client_id is None or raw != _SERVICE_ACCOUNT_USER + client_id:
                raise _refuse(
                    f"{raw[:80]!r} looks like a service account user, but not of the"
                    " client the token names"
                )
            return True
        return False

    def _check_belongs(self, claims: Mapping[str, Any]) -> None:
        """Refuse a token issued to another client, or in another place (team)."""
        if self.allowed_clients:
            client = client_of(claims)
            if client is None:
                raise _refuse("the answer does not say which client the token was issued to")
            if client not in self.allowed_clients:
                raise _refuse(
                    f"the token was issued to client {client[:60]!r}, not one of"
                    f" {self.prefix}ALLOWED_CLIENTS"
                )
        for name, values in self.required_values:
            value = claim(claims, name)
            if not isinstance(value, str) or value not in values:
                raise _refuse(f"{name} is {str(value)[:40]!r}, not one of {', '.join(values)}")

    def _service_account(self, client_id: str | None) -> str:
        if client_id is not None and client_id in self.service_accounts:
            return self.service_accounts[client_id]
        raise _refuse(
            f"the token has no user (client {client_id!r}); map the client to a service"
            f" account with {self.prefix}SERVICE_ACCOUNTS to accept it"
        )


def client_of(claims: Mapping[str, Any]) -> str | None:
    """The client a token was issued to, from the claims that name it, if any."""
    if _CLIENT_ID_CLAIM_SET.isdisjoint(claims):
        return None  # asked in C: a user's token often names no client
    for name in CLIENT_ID_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def lowercase(value: str) -> str:
    """``value`` lower-cased, without merging characters that are not the same
    letter: a compatibility character (U+212A KELVIN SIGN, U+212B ANGSTROM
    SIGN, U+2126 OHM SIGN, U+03F4 GREEK CAPITAL THETA SYMBOL, whose lower
    case is another letter's) and one whose lower case would be ASCII
    (U+0130, an ``i`` with a dot) are kept as they are."""
    if value.isascii():
        return value.lower()
    return "".join(_lower(c) for c in value)


@functools.lru_cache(maxsize=4096)
def _lower(c: str) -> str:
    if c.isascii():
        return c.lower()
    lowered = c.lower()
    if unicodedata.normalize("NFKC", c) != c or any(x.isascii() for x in lowered):
        return c
    return lowered


def _refuse(reason: str) -> InvalidToken:
    return InvalidToken("The access token is not accepted here.", reason=reason, scheme="Bearer")
