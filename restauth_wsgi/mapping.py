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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidToken
from .identity import Identity, freeze

# Where providers put the client a token was issued to.
CLIENT_ID_CLAIMS = ("client_id", "azp", "appid", "cid")
# Where providers put granted scopes: a space-separated string or a list.
SCOPE_CLAIMS = ("scope", "scp", "scopes")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
    if isinstance(value, list | tuple):
        return [str(item) for item in value if isinstance(item, str | int) and str(item)]
    return []


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """Granted scopes, from ``scope``/``scp`` (space-separated) or a ``scopes`` list."""
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

        :raises InvalidToken: when no usable username can be found.
        """
        return Identity(
            username=self.username(claims),
            method=method,
            auth_type="Bearer",
            provider=provider,
            scopes=scopes_of(claims) if scopes is None else scopes,
            groups=self.groups(claims),
            expires_at=expires_at,
            claims=freeze(claims),
        )

    def groups(self, claims: Mapping[str, Any]) -> frozenset[str]:
        """Every group (or role) the claims name."""
        found: set[str] = set()
        for path in self.groups_attributes:
            found.update(_strings(claim(claims, path)))
        return frozenset(found)

    def username(self, claims: Mapping[str, Any]) -> str:
        """``REMOTE_USER`` for these claims, or a service account's name."""
        attribute, raw = self._first_username(claims)
        client_id = next((str(claims[c]) for c in CLIENT_ID_CLAIMS if claims.get(c)), None)
        if raw is None or (client_id is not None and raw == client_id):
            return self._service_account(client_id)
        if (
            attribute == "email"
            and self.require_verified_email
            and claims.get("email_verified") not in (True, "true")
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
        if not value or len(value) > 255 or _CONTROL.search(value):
            raise _refuse(
                "the username from the token is empty, too long or has control characters"
            )
        return value

    def _first_username(self, claims: Mapping[str, Any]) -> tuple[str, str | None]:
        # A string, the first string of a list (Azure B2C's "emails"), or a
        # numeric id (GitHub's); never an object's or a boolean's text.
        for path in self.username_attributes:
            value = claim(claims, path)
            if isinstance(value, list) and value and isinstance(value[0], str):
                value = value[0]
            if isinstance(value, str) and value:
                return path, value
            if isinstance(value, int) and not isinstance(value, bool):
                return path, str(value)
        return "", None

    def _service_account(self, client_id: str | None) -> str:
        if client_id is not None and client_id in self.service_accounts:
            return self.service_accounts[client_id]
        raise _refuse(
            f"the token has no user (client {client_id!r}); map the client to a service"
            f" account with {self.prefix}SERVICE_ACCOUNTS to accept it"
        )


def lowercase(value: str) -> str:
    """``value`` lower-cased, except where that would turn a non-ASCII
    character into ASCII (U+212A KELVIN SIGN would become ``k``, U+0130 an
    ``i`` with a combining dot): such characters are kept as they are."""
    if value.isascii():
        return value.lower()
    return "".join(
        c if not c.isascii() and any(x.isascii() for x in c.lower()) else c.lower() for c in value
    )


def _refuse(reason: str) -> InvalidToken:
    return InvalidToken("The access token is not accepted here.", reason=reason, scheme="Bearer")
