"""``restauth lockout list | clear``: who is locked out, and lifting it early."""

from __future__ import annotations

import argparse
import json
from typing import Any

from restauth_wsgi.access.lockout import Lockout
from restauth_wsgi.cli.output import CommandError, load_settings, printable
from restauth_wsgi.urls import mask_url


def register(commands: Any) -> None:
    """Add the ``lockout`` command group to the ``restauth`` parser."""
    lockout = commands.add_parser(
        "lockout",
        help="list or lift lockouts (they also end by themselves)",
        description="Lockouts live in the shared cache (RESTAUTH_CACHE). With the"
        " default memory cache each process has its own, which these commands cannot"
        " see: use Redis or memcached to manage them from here.",
    )
    actions = lockout.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="addresses and users locked out now")
    listing.add_argument("--json", action="store_true", help="one JSON object per lockout")
    listing.set_defaults(run=_list)
    clear = actions.add_parser("clear", help="lift a lockout now")
    clear.add_argument("subject", nargs="?", metavar="ADDRESS|USER", help="default: all")
    clear.set_defaults(run=_clear)


def _lockout() -> Lockout:
    settings = load_settings()
    if not settings.lockout_threshold:
        raise CommandError("lockout is off (RESTAUTH_LOCKOUT_THRESHOLD=0)")
    if settings.cache == "memory":
        raise CommandError(
            "lockouts are kept in each server process's own memory (RESTAUTH_CACHE=memory);"
            " set RESTAUTH_CACHE to a Redis, memcached or file cache to manage them here"
        )
    shared = settings.shared_cache()
    # The shared cache treats an outage as a miss, which here would read as
    # "nobody is locked out": ask the backend itself once, and say so.
    try:
        shared.probe()
    except Exception as exc:
        raise CommandError(
            f"the shared cache {mask_url(settings.cache)} cannot be reached"
            f" ({type(exc).__name__}: {exc})"
        ) from None
    return Lockout(shared, settings)


def _list(args: argparse.Namespace) -> int:
    locked = _lockout().locked()
    if args.json:
        for entry in locked:
            print(json.dumps(entry.__dict__))
        return 0
    if not locked:
        print("Nobody is locked out.")
        return 0
    print(f"{'KIND':<12} {'SUBJECT':<40} {'FAILURES':>8}  ENDS IN")
    for entry in locked:
        subject = printable(entry.subject)
        print(f"{entry.kind:<12} {subject:<40} {entry.failures:>8}  {entry.retry_after} s")
    return 0


def _clear(args: argparse.Namespace) -> int:
    lifted = _lockout().clear(args.subject)
    if args.subject and not lifted:
        raise CommandError(f"{args.subject!r} is not locked out")
    print(f"Lifted {lifted} lockout(s).")
    return 0
