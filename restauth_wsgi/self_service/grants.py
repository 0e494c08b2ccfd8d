"""What a new token may be given: never more than the credential that asks.

* **Who may create.** A caller signed in with a provider's token or a
  password; a caller using an API token only when the administrator allows
  it (``RESTAUTH_SELF_SERVICE_FROM_TOKENS``), since otherwise a leaked token
  could make itself permanent. When ``RESTAUTH_SELF_SERVICE_GROUPS`` names
  groups, only their members (by the groups the credential carries).
* **What it may do.** The restrictions asked for, which only ever narrow; the
  scopes asked for must be among the caller's own. A token made by a token
  keeps every restriction of its maker: read-only stays read-only, each
  ``allow`` entry asked for must lie within one of the maker's (or the
  maker's are kept), each network within one of the maker's (or the
  maker's are kept).
* **How long.** ``expirationDuration`` days, within
  ``RESTAUTH_TOKEN_MAX_LIFETIME``. Without one, as Atlassian does, the token
  never expires, where the policy allows that
  (``RESTAUTH_TOKEN_ALLOW_NO_EXPIRY``); otherwise it lives
  ``RESTAUTH_TOKEN_DEFAULT_LIFETIME``. A token made by a token never outlives
  its maker.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import TypeVar

from restauth_wsgi.config.durations import format_duration
from restauth_wsgi.errors import Forbidden
from restauth_wsgi.identity import Identity
from restauth_wsgi.self_service.refusals import ApiRefusal, LimitReached
from restauth_wsgi.tokens.issuing import NEVER, TokenPolicy
from restauth_wsgi.tokens.restrictions import TokenRestrictions

#: How credentials are checked when a token may be made with them (identity
#: methods): a provider's token, or a password.
CREATORS = frozenset({"jwt", "introspection", "userinfo", "check", "password"})
_DAY = 86400
_T = TypeVar("_T")
# Characters that make a glob more than its literal text.
_GLOB_MAGIC = re.compile(r"[*?\[]")


class Grants:
    """Decides what a caller may create.

    :param policy: the limits on issuing tokens (``RESTAUTH_TOKEN_*``).
    :param groups: groups whose members may create (empty: every caller).
    :param from_tokens: whether an API token may create tokens.
    """

    def __init__(
        self, policy: TokenPolicy, *, groups: Iterable[str] = (), from_tokens: bool = False
    ) -> None:
        self.policy = policy
        self.groups = frozenset(groups)
        self.from_tokens = from_tokens

    def check_creator(self, caller: Identity) -> None:
        """Refuse a caller who may not create tokens.

        :raises Forbidden: saying why.
        """
        if caller.method == "api_token" and not self.from_tokens:
            raise Forbidden(
                "An API token cannot create tokens here; use your identity provider's"
                " token or your password.",
                reason=f"API token {caller.token_id} tried to create a token"
                " (RESTAUTH_SELF_SERVICE_FROM_TOKENS is off)",
            )
        if caller.method not in CREATORS and caller.method != "api_token":
            raise Forbidden(
                "Tokens cannot be created with these credentials.",
                reason=f"{caller.method} credentials cannot create tokens",
            )
        if self.groups and not caller.groups & self.groups:
            raise Forbidden(
                "You are not allowed to create API tokens.",
                reason=f"{caller.username[:60]!r} is in none of RESTAUTH_SELF_SERVICE_GROUPS",
            )

    def restrictions(
        self, caller: Identity, asked: TokenRestrictions | None
    ) -> TokenRestrictions | None:
        """The new token's restrictions: ``asked``, within the caller's own.

        :raises ApiRefusal: naming what would be wider than the caller's.
        """
        asked = asked or TokenRestrictions()
        for scope in asked.scopes:
            if scope not in caller.scopes:
                raise ApiRefusal(
                    f"restrictions.scopes: {scope[:40]!r} is not among the scopes of the"
                    " credentials you sent.",
                    field="restrictions.scopes",
                )
        if caller.method != "api_token":
            return asked if asked != TokenRestrictions() else None
        # Made with a token: tied to it (it stands only while its maker does,
        # so revoking a leaked token ends what it made), and within it.
        maker = caller.restrictions or TokenRestrictions()
        return TokenRestrictions(
            read_only=asked.read_only or maker.read_only,
            allow=_narrowed(asked.allow, maker.allow, _allow_within, "allow"),
            networks=_narrowed(asked.networks, maker.networks, _network_within, "networks"),
            scopes=asked.scopes,
            made_by=caller.token_id,
        )

    def lifetime(self, caller: Identity, days: int | None, now: int) -> int:
        """Seconds the new token lives, or :data:`~restauth_wsgi.tokens.issuing.NEVER`.

        :raises ApiRefusal: (:class:`LimitReached`) for a lifetime beyond the
            policy or the caller's token.
        """
        policy = self.policy
        ends = caller.expires_at if caller.method == "api_token" else None
        if days is None:
            if ends is None:
                return NEVER if policy.allow_no_expiry else policy.default_lifetime
            left = int(ends) - now
            if left <= 0:
                raise LimitReached("The token you sent expires now; use a fresh one.")
            return min(policy.default_lifetime, left)
        seconds = days * _DAY
        if seconds > policy.max_lifetime:
            whole_days = policy.max_lifetime // _DAY
            raise LimitReached(
                f"expirationDuration may be at most {whole_days} days here."
                if whole_days
                # Tokens here live less than a day: no number of days fits.
                else "expirationDuration cannot be given here: tokens live at most"
                f" {format_duration(policy.max_lifetime)}; leave it out for the"
                f" default lifetime, {format_duration(policy.default_lifetime)}.",
                field="expirationDuration",
            )
        if ends is not None and now + seconds > ends:
            raise LimitReached(
                "expirationDuration: a token cannot outlive the token that creates it, which"
                f" expires in {max(0, (int(ends) - now) // _DAY)} days.",
                field="expirationDuration",
            )
        return seconds


def _narrowed(
    asked: tuple[_T, ...], maker: tuple[_T, ...], within: Callable[[_T, _T], bool], key: str
) -> tuple[_T, ...]:
    """``asked``, each entry within one of ``maker``'s; ``maker``'s when
    nothing was asked. Anything is within an empty ``maker`` (no such restriction)."""
    if not maker:
        return asked
    if not asked:
        return maker
    for entry in asked:
        if not any(within(entry, outer) for outer in maker):
            shown = " ".join(entry) if isinstance(entry, tuple) else str(entry)
            raise ApiRefusal(
                f"restrictions.{key}: {shown[:80]!r} is wider than the restrictions of the"
                " token you sent.",
                field=f"restrictions.{key}",
            )
    return asked


def _allow_within(entry: tuple[str, str], outer: tuple[str, str]) -> bool:
    """Whether every request ``entry`` grants, ``outer`` grants too.

    Decided conservatively: the same method (or ``outer``'s ``*``), and the
    same glob, or a glob that starts with the literal part of an ``outer``
    that is ``literal*``. Anything else is taken as wider.
    """
    (method, glob), (outer_method, outer_glob) = entry, outer
    if outer_method not in ("*", method):
        return False
    if glob == outer_glob:
        return True
    literal = outer_glob[:-1]
    return outer_glob.endswith("*") and not _GLOB_MAGIC.search(literal) and glob.startswith(literal)


def _network_within(entry: str, outer: str) -> bool:
    inner = ipaddress.ip_network(entry, strict=False)
    around = ipaddress.ip_network(outer, strict=False)
    if inner.version != around.version:
        return False
    return inner.subnet_of(around)  # type: ignore[arg-type]
