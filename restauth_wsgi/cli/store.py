"""``restauth store migrate``: copy every API token to another store, verified."""

from __future__ import annotations

import argparse
import time
from typing import Any

from restauth_wsgi.cli.output import CommandError, load_settings
from restauth_wsgi.errors import ConfigurationError
from restauth_wsgi.tokens.store import TokenRecord, TokenStore, open_store
from restauth_wsgi.urls import mask_url


def register(commands: Any) -> None:
    """Add the ``store`` command group to the ``restauth`` parser."""
    store = commands.add_parser("store", help="work on the API token store as a whole")
    actions = store.add_subparsers(dest="action", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate",
        help="copy every token to another store and verify the copy",
        description="Copy every API token (hashes, owners, names, expiries, revocations,"
        " last-used times) from the current store (RESTAUTH_TOKEN_STORE, or --from) to"
        " another, then read every one back to verify it. Safe to re-run: a token already"
        " in the target keeps the later last-used time and the earlier revocation of the"
        " two, tokens only in the target are left alone (but revoked if the source pruned"
        " them), and tokens pruned from the target are not copied again. Then point"
        " RESTAUTH_TOKEN_STORE at the target.",
    )
    migrate.add_argument("--to", required=True, metavar="URL", help="the target store URL")
    migrate.add_argument("--from", dest="source", metavar="URL", help="the source store URL")
    migrate.set_defaults(run=_migrate)


def merge(source: TokenRecord, target: TokenRecord | None) -> TokenRecord:
    """The record to write: ``source``, keeping what the target knows that is newer."""
    if target is None:
        return source
    revoked = [t for t in (source.revoked_at, target.revoked_at) if t is not None]
    used = [t for t in (source.last_used_at, target.last_used_at) if t is not None]
    return source._replace(
        revoked_at=min(revoked) if revoked else None,
        last_used_at=max(used) if used else None,
    )


def _holds(found: TokenRecord | None, written: TokenRecord) -> bool:
    """Whether the target's ``found`` is ``written``, or newer than it."""
    return found is not None and merge(written, found) == found


def _end_pruned(
    source: TokenStore, target: TokenStore, existing: dict[str, TokenRecord]
) -> list[str]:
    """Revoke on ``target`` the tokens of ``existing`` (the target's, before
    the copy) that the source pruned; return their ids."""
    ended = []
    now = int(time.time())
    live = [token_id for token_id, record in existing.items() if record.revoked_at is None]
    for token_id in sorted(source.pruned(live)):
        if target.revoke(token_id, now=now) is not None:
            ended.append(token_id)
    return ended


def _open(url: str, timeout: float, option: str | None, *, create: bool) -> TokenStore:
    """The store ``url`` names; a problem with an option's URL is a usage error naming it."""
    if option is None:
        return open_store(url, timeout=timeout, create=create)
    try:
        return open_store(url, timeout=timeout, source=option, create=create)
    except ConfigurationError as exc:
        raise CommandError(str(exc), exit_code=2) from None


def _migrate(args: argparse.Namespace) -> int:
    settings = load_settings()
    source_url = args.source or settings.token_store
    if source_url == args.to:
        raise CommandError("the source and the target are the same store", exit_code=2)
    # The source is only read: a mistyped one is an error, not an empty store.
    source = _open(
        source_url, settings.token_store_timeout, "--from" if args.source else None, create=False
    )
    target = _open(args.to, settings.token_store_timeout, "--to", create=True)
    try:
        records = source.list()
        existing = {r.token_id: r for r in target.list()}
        merged = [merge(record, existing.get(record.token_id)) for record in records]
        copied = target.put_all(merged)
        # Read back: each as written, or revoked earlier or used later there
        # (by a server on the target while the copy ran; the copy keeps those),
        # or pruned from the target (revoked or expired there; before the copy
        # or since): not written again, whatever the source says of them.
        unread = [r.token_id for r in merged if not _holds(target.get(r.token_id), r)]
        pruned = target.pruned(unread)
        wrong = [token_id for token_id in unread if token_id not in pruned]
        # Pruned from the source (revoked or expired there) but still in the
        # target from an earlier copy: revoked there too, or a host still on
        # the target would go on accepting it.
        ended = _end_pruned(source, target, existing)
    finally:
        source.close()
        target.close()
    if wrong:
        raise CommandError(
            f"{len(wrong)} token(s) did not read back as written: {', '.join(wrong[:10])}"
        )
    print(
        f"Copied {copied} token(s) from {mask_url(source_url)} to {mask_url(args.to)}"
        " and verified each."
    )
    if pruned:
        print(
            f"Left out {len(pruned)} token(s) pruned from the target (revoked or"
            f" expired there): {', '.join(sorted(pruned)[:10])}"
        )
    if ended:
        print(
            f"Revoked {len(ended)} token(s) on the target that were pruned from the source"
            f" (revoked or expired there): {', '.join(sorted(ended)[:10])}"
        )
    print(f"Now set RESTAUTH_TOKEN_STORE={mask_url(args.to)} everywhere.")
    return 0
