"""Issuing API tokens within the limits an administrator sets."""

from __future__ import annotations

import time
from dataclasses import dataclass

from restauth_wsgi.config.durations import format_duration
from restauth_wsgi.errors import TokenLimitExceeded
from restauth_wsgi.identity import NOT_IN_NAMES
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.restrictions import TokenRestrictions
from restauth_wsgi.tokens.store import TokenIdTaken, TokenRecord, TokenStore

#: Pass as ``lifetime`` for a token that never expires (if policy allows).
NEVER = -1

# An owner becomes REMOTE_USER and the user part of Basic credentials, which
# cannot hold a colon; what no username may hold (NOT_IN_NAMES: control
# characters, line separators, bidirectional overrides...) has no place in
# either. A name is shown in `restauth token list`: the same, colons allowed.


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """The limits on issuing tokens (``RESTAUTH_TOKEN_*`` settings)."""

    #: 0 means no limit.
    max_per_user: int = 10
    max_lifetime: int = 365 * 86400
    default_lifetime: int = 90 * 86400
    allow_no_expiry: bool = False


def issue_token(
    store: TokenStore,
    policy: TokenPolicy,
    *,
    owner: str,
    name: str | None = None,
    lifetime: int | None = None,
    now: int | None = None,
    restrictions: TokenRestrictions | None = None,
) -> tuple[str, TokenRecord]:
    """Create and store a new token; return the raw token (shown once) and its record.

    :param lifetime: seconds until expiry; ``None`` for the policy's default,
        :data:`NEVER` for no expiry.
    :param restrictions: what the token may do (all it may, when ``None``).
    :raises ValueError: for an owner or name that cannot be used.
    :raises TokenLimitExceeded: when a limit of ``policy`` forbids the token.
    :raises TokenStoreUnavailable: when the store cannot be written.
    """
    check_owner(owner)
    now = int(time.time()) if now is None else now
    if name is None:
        name = "created " + time.strftime("%Y-%m-%d %H:%M", time.gmtime(now))
    check_name(name)
    expires_at = _expiry(policy, lifetime, now)
    for _ in range(3):  # a random 71-bit id collides about never; retry anyway
        raw, parsed = token_format.generate()
        record = TokenRecord(
            token_id=parsed.token_id,
            secret_hash=parsed.secret_hash,
            owner=owner,
            name=name,
            created_at=now,
            expires_at=expires_at,
            restrictions=restrictions,
        )
        try:
            store.add(record, max_per_user=policy.max_per_user or None, now=now)
        except TokenIdTaken:
            continue
        return raw, record
    raise RuntimeError("could not find a free token id")  # pragma: no cover


def check_owner(owner: str) -> None:
    """Refuse a user who cannot own a token.

    :raises ValueError: saying why.
    """
    if (
        not 0 < len(owner) <= 255
        or ":" in owner
        or NOT_IN_NAMES.search(owner)
        or owner != owner.strip()
    ):
        raise ValueError(
            "the user must be 1-255 characters without colons, control characters,"
            " line separators, bidirectional overrides or surrounding spaces"
        )


def check_name(name: str) -> None:
    """Refuse a name a token cannot have.

    :raises ValueError: saying why.
    """
    if len(name) > 200 or NOT_IN_NAMES.search(name):
        raise ValueError(
            "the name must be at most 200 characters, without control characters, line"
            " separators, bidirectional overrides or lone surrogates"
        )


def _expiry(policy: TokenPolicy, lifetime: int | None, now: int) -> int | None:
    if lifetime == NEVER:
        if not policy.allow_no_expiry:
            raise TokenLimitExceeded(
                "tokens that never expire are not allowed (RESTAUTH_TOKEN_ALLOW_NO_EXPIRY);"
                f" give a lifetime of at most {format_duration(policy.max_lifetime)}"
            )
        return None
    if lifetime is None:
        lifetime = policy.default_lifetime
    if lifetime <= 0:
        raise ValueError("the lifetime must be positive")
    if lifetime > policy.max_lifetime:
        raise TokenLimitExceeded(
            f"a lifetime of {format_duration(lifetime)} is longer than the maximum,"
            f" {format_duration(policy.max_lifetime)} (RESTAUTH_TOKEN_MAX_LIFETIME)"
        )
    return now + lifetime
