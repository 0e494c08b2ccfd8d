"""``restauth userinfo``: what a provider says about a token, and which
attribute should become ``REMOTE_USER`` (the "get username attribute" step)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from restauth_wsgi.cli.output import CommandError, load_settings, read_secret
from restauth_wsgi.errors import AuthenticationError, InvalidToken
from restauth_wsgi.jwt import jws
from restauth_wsgi.provider_chain import Provider, Providers
from restauth_wsgi.providers.claims import claim
from restauth_wsgi.upstream import UpstreamError

#: Attributes that commonly hold a username or an e-mail, most specific first.
USERNAME_CANDIDATES = (
    "preferred_username",
    "upn",
    "unique_name",
    "username",
    "login",
    "nickname",
    "email",
    "emails",
    "name",
    "oid",
    "sub",
    "id",
)
#: Attributes that identify a user for good: the provider never reassigns them
#: (Microsoft: oid and sub are immutable; a login or e-mail can change hands).
STABLE_CANDIDATES = frozenset({"oid", "sub", "id"})
# Scopes (scope, scp) are what a token may do, not who the user is: never groups.
GROUP_CANDIDATES = ("groups", "roles", "realm_access.roles", "cognito:groups")


def register(commands: Any) -> None:
    """Add the ``userinfo`` command to the ``restauth`` parser."""
    command = commands.add_parser(
        "userinfo",
        help="show a provider's claims for a token and suggest the username attribute",
        description="Ask the provider about TOKEN the way the middleware would (or read a"
        " JWT's verified claims), print what it says, and suggest which attribute holds"
        " the username or e-mail (RESTAUTH_<NAME>_USERNAME_ATTRIBUTE). TOKEN '-' reads it"
        " from standard input. Exit 0: the provider vouches for it; 1: it does not;"
        " 3: the provider could not be asked.",
    )
    command.add_argument("--provider", required=True, metavar="NAME", help="a configured provider")
    command.add_argument("token", metavar="TOKEN", help="an access token (or '-')")
    command.add_argument("--json", action="store_true", help="print the claims as JSON only")
    command.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.providers:
        raise CommandError("no provider is configured (RESTAUTH_PROVIDERS)", exit_code=2)
    providers = Providers(settings)
    provider = providers.by_name.get(args.provider.lower())
    if provider is None:
        names = ", ".join(p.config.name for p in providers.by_name.values())
        raise CommandError(f"no provider is named {args.provider!r}; configured: {names}", 2)
    token = read_secret(args.token)
    try:
        claims = _claims(provider, token)
    except AuthenticationError as exc:
        print(f"REFUSED by {provider.config.name}: {exc.reason}")
        return 1
    except UpstreamError as exc:
        print(f"UNAVAILABLE: {exc}")
        return 3
    if args.json:
        print(json.dumps(claims, indent=2, sort_keys=True))
        return 0
    print(f"{provider.config.name} ({provider.config.validation}) says:")
    print(json.dumps(claims, indent=2, sort_keys=True))
    _suggest(provider, claims)
    return 0


def _claims(provider: Provider, token: str) -> dict[str, Any]:
    """The verified claims, or the provider's answer, for ``token``.

    Only whether the provider vouches for the token counts here, not whether
    it maps to a user: finding the right attribute is what this is for.
    """
    if provider.validator is not None:
        parsed = jws.parse(token)
        if parsed is None:
            raise InvalidToken("not a JWT", reason="the token is not a JWT")
        return provider.validator.verified_claims(parsed)
    assert provider.lookup is not None
    answer = provider.lookup(token)
    if not answer.active:
        raise InvalidToken("not active", reason=answer.reason)
    return answer.claims


def _suggest(provider: Provider, claims: dict[str, Any]) -> None:
    mapping = provider.config.mapping
    variable = f"RESTAUTH_{provider.config.name.upper()}_USERNAME_ATTRIBUTE"
    print("\nAttributes that could be the username (readable ones may change hands; stable")
    print("ones never do):")
    for name in USERNAME_CANDIDATES:
        value = claim(claims, name)
        if value is not None:
            kind = "stable" if name in STABLE_CANDIDATES else "readable"
            mark = " <- used now" if name == _used(mapping.username_attributes, claims) else ""
            print(f"  {name:<20} {kind:<9} {json.dumps(value)[:60]}{mark}")
    try:
        print(
            f"\nREMOTE_USER would be {mapping.username(claims)!r}"
            f" ({variable}={','.join(mapping.username_attributes)})."
        )
    except AuthenticationError as exc:
        print(f"\nThis token maps to no user: {exc.reason}.")
    groups = [n for n in GROUP_CANDIDATES if claim(claims, n) is not None]
    if groups:
        print(
            f"Group attributes present: {', '.join(groups)}"
            f" (RESTAUTH_{provider.config.name.upper()}_GROUPS_ATTRIBUTE)."
        )


def _used(attributes: tuple[str, ...], claims: dict[str, Any]) -> str | None:
    return next((a for a in attributes if claim(claims, a) is not None), None)
