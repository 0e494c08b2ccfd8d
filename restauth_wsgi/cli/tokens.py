"""``restauth token create | list | revoke | prune``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from restauth_wsgi.cli.output import CommandError, format_time, load_settings, printable
from restauth_wsgi.cli.token_audit import CommandAudit
from restauth_wsgi.config.kinds import parse_lifetime
from restauth_wsgi.settings import Settings
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.issuing import NEVER, check_owner, issue_token
from restauth_wsgi.tokens.restrictions import TokenRestrictions, parse_allow
from restauth_wsgi.tokens.store import TokenRecord, TokenStore
from restauth_wsgi.urls import mask_url


def register(commands: Any) -> None:
    """Add the ``token`` command group to the ``restauth`` parser."""
    token = commands.add_parser(
        "token", help="create, list, revoke and prune API tokens", description=__doc__
    )
    actions = token.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        help="create a token; it is printed once, alone on the last line",
        description="Create an API token. The raw token is printed alone on the last line"
        " of standard output; it is stored only as a hash and never shown again.",
    )
    create.add_argument("--user", required=True, help="the owner; becomes REMOTE_USER")
    create.add_argument("--name", help="what the token is for, e.g. 'ci-deploy'")
    create.add_argument(
        "--expires",
        type=_lifetime,
        metavar="DURATION",
        help="lifetime with its unit, such as 30d, 12h or 1y, or 'never' where allowed"
        " (default: RESTAUTH_TOKEN_DEFAULT_LIFETIME)",
    )
    create.add_argument("--read-only", action="store_true", help="only GET and HEAD requests")
    create.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="'METHOD /PATH-GLOB'",
        help="only requests like this ('GET /rest/api/*', '* /health'); repeatable",
    )
    create.add_argument(
        "--network",
        action="append",
        default=[],
        metavar="CIDR",
        help="only from this network (10.0.0.0/8, 2001:db8::/32); repeatable",
    )
    create.add_argument(
        "--scope",
        action="append",
        default=[],
        metavar="SCOPE",
        help="a scope the token grants, for rules that require scopes; repeatable",
    )
    create.set_defaults(run=_create)

    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    whose = listing.add_mutually_exclusive_group()
    whose.add_argument("--user", help="only this user's tokens")
    whose.add_argument(
        "--all",
        action="store_true",
        help="every user's tokens, those they made themselves included (the default)",
    )
    listing.add_argument("--json", action="store_true", help="print JSON, one object per token")
    listing.set_defaults(run=_list)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a token by id (or by the token itself)",
        description="Revoke a token. Every process and host refuses it within a second.",
    )
    revoke.add_argument("token", metavar="ID", help="the token id from 'token list', or the token")
    revoke.set_defaults(run=_revoke)

    prune = actions.add_parser("prune", help="delete tokens that expired or were revoked long ago")
    prune.add_argument(
        "--older-than",
        type=_duration,
        default=30 * 86400,
        metavar="DURATION",
        help="delete tokens expired or revoked more than this long ago, with its unit"
        " (default: 30d)",
    )
    prune.set_defaults(run=_prune)


def _lifetime(text: str) -> int:
    return NEVER if text.strip().lower() == "never" else _duration(text)


def _duration(text: str) -> int:
    # A bare number would be seconds: never what a lifetime or an age of tokens means.
    try:
        return parse_lifetime(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _store(
    settings: Settings | None = None, *, create: bool = False, as_json: bool = False
) -> TokenStore:
    """The store of the settings, named first, so a wrong one shows at once.

    Only ``create`` makes a store that does not exist: the other commands
    say there is none (a mistyped path is not an empty store).
    """
    settings = settings or load_settings()
    store = settings.open_token_store(create=create)
    # Standard output stays one JSON object a line with --json.
    print(f"Token store: {mask_url(store.url)}", file=sys.stderr if as_json else sys.stdout)
    return store


def _create(args: argparse.Namespace) -> int:
    settings = load_settings()
    with CommandAudit(settings.audit_log) as audit:
        store = _store(settings, create=True)
        try:
            raw, record = issue_token(
                store,
                settings.token_policy(),
                owner=args.user,
                name=args.name,
                lifetime=args.expires,
                restrictions=_restrictions(args),
            )
        except ValueError as exc:
            raise CommandError(str(exc), exit_code=2) from None
        try:
            audit.write("token_created", record)
        except OSError as exc:
            store.revoke(record.token_id, now=int(time.time()))  # no token without its line
            raise CommandError(
                f"RESTAUTH_AUDIT_LOG={settings.audit_log}: the audit line could not be"
                f" written ({exc.strerror}); token {record.token_id} was revoked again"
            ) from None
    print(
        f"Created API token {record.token_id} for {record.owner!r}"
        f" (name {record.name!r}, expires {format_time(record.expires_at)})."
    )
    if record.restrictions is not None:
        print(f"Restricted to: {record.restrictions.describe()}.")
    print("Copy it now: it is stored only as a hash and cannot be shown again.")
    print(raw)
    return 0


def _restrictions(args: argparse.Namespace) -> TokenRestrictions | None:
    try:
        allow = tuple(parse_allow(pattern) for pattern in args.allow)
    except ValueError as exc:
        raise CommandError(f"--allow: {exc}", exit_code=2) from None
    if not (args.read_only or allow or args.network or args.scope):
        return None
    try:
        return TokenRestrictions(
            read_only=args.read_only,
            allow=allow,
            networks=tuple(args.network),
            scopes=tuple(args.scope),
        )
    except ValueError as exc:  # a --network that is not one, a --scope with a control character
        raise CommandError(str(exc), exit_code=2) from None


def _list(args: argparse.Namespace) -> int:
    if args.user is not None:
        try:
            check_owner(args.user)
        except ValueError as exc:  # bytes that are not UTF-8, say: no one owns tokens so
            raise CommandError(f"--user: {exc}", exit_code=2) from None
    records = _store(as_json=args.json).list(args.user)
    now = time.time()
    if args.json:
        for record in records:
            print(json.dumps(_as_json(record, now)))
        return 0
    rows = [("ID", "USER", "NAME", "STATUS", "CREATED", "EXPIRES", "LAST USED", "RESTRICTIONS")]
    rows += [
        (
            r.token_id,
            r.owner,
            r.name,
            r.status(now),
            format_time(r.created_at),
            format_time(r.expires_at),
            format_time(r.last_used_at, never="-"),
            r.restrictions.describe() if r.restrictions else "-",
        )
        for r in records
    ]
    # A cell a terminal would obey (a row written before names and globs were
    # checked, or by hand in SQL) is shown escaped, never raw.
    shown = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in shown) for i in range(len(shown[0]))]
    for line in shown:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())
    return 0


def _as_json(record: TokenRecord, now: float) -> dict[str, Any]:
    return {
        "id": record.token_id,
        "user": record.owner,
        "name": record.name,
        "status": record.status(now),
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "last_used_at": record.last_used_at,
        "revoked_at": record.revoked_at,
        "restrictions": None
        if record.restrictions is None
        else json.loads(record.restrictions.to_json()),
    }


def _revoke(args: argparse.Namespace) -> int:
    token_id = args.token
    if token_format.looks_like_token(token_id):
        try:
            token_id = token_format.parse(token_id).token_id
        except token_format.MalformedToken as exc:
            raise CommandError(f"that is not a whole token: {exc}", exit_code=2) from None
    elif not token_format.is_token_id(token_id):
        raise CommandError(f"{token_id!r} is not a token id (see 'restauth token list')", 2)
    settings = load_settings()
    store = _store(settings)
    record = store.get(token_id)
    if record is None:
        raise CommandError(f"no token has the id {token_id}")
    if record.revoked_at is not None:
        print(
            f"Token {token_id} of {record.owner!r} was already revoked"
            f" at {format_time(record.revoked_at)}."
        )
        return 0
    with CommandAudit(settings.audit_log) as audit:
        revoked = store.revoke(token_id, now=int(time.time()))
        if revoked is None:  # pruned since it was read
            raise CommandError(f"no token has the id {token_id}")
        try:
            audit.write("token_revoked", revoked)
        except OSError as exc:
            raise CommandError(
                f"Revoked token {token_id} of {record.owner!r}, but RESTAUTH_AUDIT_LOG="
                f"{settings.audit_log}: its audit line could not be written ({exc.strerror})"
            ) from None
    print(f"Revoked token {token_id} of {record.owner!r}.")
    return 0


def _prune(args: argparse.Namespace) -> int:
    deleted = _store().prune(before=int(time.time()) - args.older_than)
    print(f"Deleted {deleted} token(s) that expired or were revoked before the cut-off.")
    return 0
