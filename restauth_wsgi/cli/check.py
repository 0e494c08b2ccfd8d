"""``restauth check``: run exactly the middleware's authentication on a credential."""

from __future__ import annotations

import argparse
import base64
import json
import time
from typing import Any

from restauth_wsgi.authentication import Authentication
from restauth_wsgi.errors import AuthenticationError, ServiceUnavailable
from restauth_wsgi.identity import Identity

from .output import CommandError, format_time, load_settings, read_secret


def register(commands: Any) -> None:
    """Add the ``check`` command to the ``restauth`` parser."""
    check = commands.add_parser(
        "check",
        help="test a token or Basic credentials the way the middleware would",
        description="Authenticate one credential with the current RESTAUTH_* settings,"
        " exactly as the middleware does, and say who it is or why it fails."
        " Pass '-' to read the credential from standard input instead of the"
        " command line. Exit 0: accepted; 1: refused; 3: could not be checked.",
    )
    which = check.add_mutually_exclusive_group(required=True)
    which.add_argument("--bearer", metavar="TOKEN", help="a bearer token (or '-')")
    which.add_argument("--basic", metavar="USER:PASSWORD", help="Basic credentials (or '-')")
    check.add_argument("--json", action="store_true", help="print the outcome as JSON")
    check.set_defaults(run=_run)


def authorization_header(args: argparse.Namespace) -> str:
    """The ``Authorization`` header a client would send for these arguments."""
    if args.bearer is not None:
        return "Bearer " + read_secret(args.bearer)
    credentials = read_secret(args.basic)
    if ":" not in credentials:
        raise CommandError("--basic takes USER:PASSWORD (or USER:TOKEN)", exit_code=2)
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")


def _run(args: argparse.Namespace) -> int:
    authentication = Authentication.from_settings(load_settings())
    header = authorization_header(args)
    try:
        identity = authentication.authenticate(header)
    except AuthenticationError as error:
        _print_refusal(error, args.json)
        return 3 if isinstance(error, ServiceUnavailable) else 1
    _print_identity(identity, args.json)
    return 0


def _print_identity(identity: Identity, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"outcome": "accepted", "identity": identity.to_json()}))
        return
    print("ACCEPTED")
    lines = [
        ("user (REMOTE_USER)", identity.username),
        ("method", f"{identity.method} ({identity.auth_type})"),
        ("provider", identity.provider),
        ("token id", identity.token_id),
        ("scopes", " ".join(sorted(identity.scopes)) or None),
        ("groups", " ".join(sorted(identity.groups)) or None),
        ("expires", _expiry(identity.expires_at)),
    ]
    for label, value in lines:
        if value is not None:
            print(f"  {label + ':':<20} {value}")


def _print_refusal(error: AuthenticationError, as_json: bool) -> None:
    unavailable = isinstance(error, ServiceUnavailable)
    if as_json:
        print(
            json.dumps(
                {
                    "outcome": "unavailable" if unavailable else "refused",
                    "status": error.status,
                    "error": error.code,
                    "error_description": error.description,
                    "reason": error.reason,
                }
            )
        )
        return
    print("UNAVAILABLE" if unavailable else "REFUSED")
    print(f"  {'answer:':<20} {error.status} {error.code}: {error.description}")
    print(f"  {'reason:':<20} {error.reason}")


def _expiry(expires_at: float | None) -> str:
    if expires_at is None:
        return "never"
    days = (expires_at - time.time()) / 86400
    return f"{format_time(expires_at)} (in {days:.1f} days)"
