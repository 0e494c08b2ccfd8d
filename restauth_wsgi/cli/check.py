"""``restauth check``: the middleware's whole decision, on one credential.

It runs the same :class:`~restauth_wsgi.decision.Gatekeeper` the middleware
runs, for a request described by ``--method``, ``--path`` and ``--client``:
networks, path levels, blocked passwords, lockout, authentication and the
rules all apply, so what ``check`` accepts the middleware accepts. It only
looks: failures are not counted towards a lockout.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import urllib.parse
from typing import Any

from restauth_wsgi.cli.output import (
    CommandError,
    format_time,
    load_settings,
    printable,
    read_secret,
)
from restauth_wsgi.decision import Decision, Gatekeeper
from restauth_wsgi.errors import MalformedRequest
from restauth_wsgi.identity import Identity
from restauth_wsgi.request.client_address import parse_address
from restauth_wsgi.request.description import describe


def register(commands: Any) -> None:
    """Add the ``check`` command to the ``restauth`` parser."""
    check = commands.add_parser(
        "check",
        help="test a token or Basic credentials the way the middleware would",
        description="Decide one request with the current RESTAUTH_* settings, exactly as"
        " the middleware does (networks, paths, blocked passwords, lockout, rules), and"
        " say who it is or why it fails. Failures are not counted towards a lockout."
        " Pass '-' to read the credential from standard input instead of the"
        " command line. Exit 0: accepted (or a public path); 1: refused or forbidden;"
        " 3: could not be checked.",
    )
    which = check.add_mutually_exclusive_group(required=True)
    which.add_argument("--bearer", metavar="TOKEN", help="a bearer token (or '-')")
    which.add_argument("--basic", metavar="USER:PASSWORD", help="Basic credentials (or '-')")
    check.add_argument("--method", default="GET", help="the request's method (default GET)")
    check.add_argument(
        "--path",
        default="/",
        help="the request's path as a client sends it (default /); %%XX escapes are"
        " decoded once, as the server does",
    )
    check.add_argument(
        "--client", metavar="ADDRESS", help="the client's address (for networks and lockout)"
    )
    check.add_argument("--json", action="store_true", help="print the outcome as JSON")
    check.set_defaults(run=_run)


def authorization_header(args: argparse.Namespace) -> str:
    """The ``Authorization`` header a client would send for these arguments."""
    if args.bearer is not None:
        token = read_secret(args.bearer)
        if not token.strip():
            raise CommandError(
                '--bearer got an empty token: is the variable you passed ("$TOKEN") set?',
                exit_code=2,
            )
        return "Bearer " + token
    credentials = read_secret(args.basic)
    if ":" not in credentials:
        raise CommandError("--basic takes USER:PASSWORD (or USER:TOKEN)", exit_code=2)
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")


def _run(args: argparse.Namespace) -> int:
    client = None
    if args.client is not None:
        client = parse_address(args.client)
        if client is None:
            raise CommandError(f"--client {args.client!r} is not an IP address", exit_code=2)
    path = args.path if args.path.startswith("/") else "/" + args.path
    header = authorization_header(args)
    try:
        # As the server hands it on (PEP 3333): %XX decoded once, the bytes
        # as latin-1 text.
        request = describe(
            method=args.method,
            path_info=urllib.parse.unquote_to_bytes(path).decode("latin-1"),
            client=client,
            authorization=header,
        )
    except MalformedRequest as exc:
        raise CommandError(f"--method {args.method!r}: {exc.description}", exit_code=2) from None
    settings = load_settings()
    if not settings.enabled:
        print("DISABLED")
        print("  RESTAUTH_ENABLED is false: the middleware lets every request through unchecked")
        return 0
    gatekeeper = Gatekeeper.from_settings(settings, record_failures=False, create_store=False)
    try:
        decision = gatekeeper.decide(request)
    finally:
        gatekeeper.close()
    _print(decision, request.method, path, args.json)
    if decision.error is None:
        return 0
    return 3 if decision.outcome == "unavailable" else 1


def _print(decision: Decision, method: str, path: str, as_json: bool) -> None:
    identity, error = decision.identity, decision.error
    if as_json:
        shown: dict[str, Any] = {"outcome": _WORDS[decision.outcome].lower()}
        if identity is not None:
            shown["identity"] = identity.to_json()
        if error is not None:
            shown.update(
                status=error.status,
                error=error.code,
                error_description=error.description,
                reason=error.reason,
            )
        print(json.dumps(shown))
        return
    print(_WORDS[decision.outcome])
    if decision.outcome == "public":
        print(
            f"  {method} {printable(path)} needs no authentication: the credential was not checked"
        )
    if identity is not None:
        _print_identity(identity)
    if error is not None:
        print(f"  {'answer:':<20} {error.status} {error.code}: {error.description}")
        print(f"  {'reason:':<20} {printable(error.reason)}")


# What each outcome is called here; "refused" whatever the 4xx.
_WORDS = {
    "allowed": "ACCEPTED",
    "public": "PUBLIC",
    "anonymous": "ANONYMOUS",
    "forbidden": "FORBIDDEN",
    "unavailable": "UNAVAILABLE",
    "refused": "REFUSED",
    "unauthenticated": "REFUSED",
    "locked": "REFUSED",
    "malformed": "REFUSED",
}


def _print_identity(identity: Identity) -> None:
    lines = [
        ("user (REMOTE_USER)", identity.username),
        ("method", f"{identity.method} ({identity.auth_type})"),
        ("provider", identity.provider),
        ("token id", identity.token_id),
        ("scopes", " ".join(sorted(identity.scopes)) or None),
        ("groups", " ".join(sorted(identity.groups)) or None),
        ("expires", expiry(identity)),
    ]
    for label, value in lines:
        if value is not None:
            print(f"  {label + ':':<20} {printable(value)}")


def expiry(identity: Identity, now: float | None = None) -> str:
    """When the credential stops working, in words a person reads at a glance."""
    expires_at = identity.expires_at
    if expires_at is None:
        # An API token without expiry never expires; a provider that did not
        # say (userinfo) may still expire it at any time.
        return "never" if identity.method == "api_token" else "unknown (the provider did not say)"
    left = expires_at - (time.time() if now is None else now)
    if left <= 0:
        return f"{format_time(expires_at)} (expired {_span(-left)} ago; accepted within the leeway)"
    return f"{format_time(expires_at)} (in {_span(left)})"


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"
