"""API tokens issued by this service, as ``Bearer <token>`` or Basic ``user:token``.

Atlassian Cloud clients send their API tokens as Basic ``email:token``;
other clients send ``Bearer``. Both are accepted because users mix them up;
with Basic, the user must be the token's owner.

A token is checked against the store; with the change feed (the default,
:mod:`restauth_wsgi.tokens.feed`) the chain then remembers the answer under
the store's change counter, so the same token costs no store read until the
store says something changed (see :class:`StoreAnswer`).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from restauth_wsgi.authenticator import Guard
from restauth_wsgi.cache import ExpiringMap
from restauth_wsgi.credentials import Credentials
from restauth_wsgi.errors import InvalidCredentials, InvalidToken
from restauth_wsgi.identity import Identity
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.feed import LAST_USED_INTERVAL, ChangeFeed
from restauth_wsgi.tokens.store import TokenRecord, TokenStore

# Compared against when the id is unknown, so that case costs the same.
_NO_HASH = "0" * 64
_NO_SCOPES: frozenset[str] = frozenset()


#: How many tokens back a token made with a token is followed (each one read
#: on its first use); a longer chain is refused.
MAKERS_CHECKED = 16


class StoreAnswer(NamedTuple):
    """An API token's identity, remembered under the change feed's epoch.

    It stands only while the feed reports the same epoch: any creation,
    revocation, change or deletion anywhere, or a feed too stale to vouch,
    sends the next request back to the store, which then compares the
    token's record with ``record``, the one the identity was made from
    (:meth:`ApiTokenAuthenticator.reread`).
    """

    identity: Identity
    epoch: object
    record: TokenRecord


class ApiTokenAuthenticator:
    """Checks the service's own API tokens against the token store.

    :param feed: the store's change feed; with it, answers may be remembered
        (:class:`StoreAnswer`, :meth:`reread`) and last-used times are written off
        the request path. Without it, every request reads the store (or, with
        ``cache_ttl``, a record is reused for that long).
    :param cache_ttl: seconds a record read from the store is reused, only
        without a feed: with one, every answer not recalled under the feed
        must come from the store itself, or a record read before a
        revocation would be remembered under the epoch after it.
    """

    schemes = frozenset({"Bearer", "Basic"})
    #: Never remembered by the chain: the store decides, for immediate revocation.
    remembers = False

    def __init__(
        self,
        store: TokenStore,
        *,
        cache_ttl: float = 0,
        cache_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
        feed: ChangeFeed | None = None,
    ) -> None:
        self.store = store
        self.feed = feed
        self._clock = clock
        self.cache_ttl = cache_ttl
        # Only when the administrator trades immediate revocation for fewer
        # store reads (RESTAUTH_TOKEN_CACHE_TTL): a revoked token then works
        # here for at most cache_ttl seconds.
        self._records: ExpiringMap[str, TokenRecord] | None = (
            ExpiringMap(cache_entries, clock) if cache_ttl > 0 and feed is None else None
        )

    def authenticate(self, credentials: Credentials, guard: Guard) -> Identity | None:
        """Return the token owner's identity; ``None`` if this is not an API token.

        Never guarded: an API token cannot be guessed, and checking one costs
        a store read, so a lockout of its address does not refuse it.
        """
        checked = self.check(credentials)
        return None if checked is None else checked[0]

    def check(
        self, credentials: Credentials, read: Mapping[str, TokenRecord | None] | None = None
    ) -> tuple[Identity, TokenRecord] | None:
        """:meth:`authenticate`, with the record the identity was made from
        (what :class:`StoreAnswer` remembers it by).

        :param read: records this request has already read from the store,
            by token id (``None``: no such token), used instead of reading
            them again (see :meth:`reread`).
        """
        raw = credentials.secret
        if not raw.startswith(token_format.PREFIX):
            return None
        try:
            parsed = token_format.parse(raw)
        except token_format.MalformedToken as exc:
            raise self._refuse(
                credentials,
                "The API token is malformed; check that it was copied whole.",
                f"malformed API token: {exc}",
            ) from None
        token_id = parsed.token_id
        record = read[token_id] if read and token_id in read else self._record(token_id)
        stored_hash = _NO_HASH if record is None else record.secret_hash
        if not hmac.compare_digest(stored_hash, parsed.secret_hash) or record is None:
            raise self._refuse(
                credentials, _WRONG[credentials.scheme], f"unknown API token {parsed.token_id}"
            )
        # From here on the caller has proved it holds the token, so it may
        # learn the token's state; but not a valid token's owner via Basic.
        if credentials.username is not None and credentials.username != record.owner:
            raise self._refuse(
                credentials,
                _WRONG["Basic"],
                f"API token {record.token_id} does not belong to the Basic user",
            )
        now = self._clock()
        if record.revoked_at is not None or (
            record.expires_at is not None and now >= record.expires_at
        ):
            status = record.status(now)
            raise self._refuse(
                credentials,
                f"The API token has {'been revoked' if status == 'revoked' else 'expired'}.",
                f"API token {record.token_id} is {status}",
            )
        if record.restrictions is not None and record.restrictions.made_by is not None:
            ended = self._maker_ended(record, now)
            if ended is not None:
                raise self._refuse(
                    credentials,
                    "The API token has been revoked.",
                    f"API token {record.token_id}: {ended}",
                )
        self._accepted(record, now)
        restrictions = record.restrictions
        identity = Identity(
            username=record.owner,
            method="api_token",
            auth_type=credentials.scheme,
            token_id=record.token_id,
            scopes=frozenset(restrictions.scopes) if restrictions else _NO_SCOPES,
            expires_at=record.expires_at,
            restrictions=restrictions,
        )
        return identity, record

    def reread(
        self, answer: StoreAnswer, now: float
    ) -> tuple[Identity | None, Mapping[str, TokenRecord | None] | None]:
        """A remembered answer the feed no longer vouches for, checked again
        with one read of its token's record: its identity if the record is the
        one it was made from (a last-used time aside) and the token has not
        expired; else ``None`` and the record read, by token id (``None`` if
        nothing was read), for the whole check to decide by (:meth:`check`'s
        ``read``: it was read after the epoch the answer will be remembered
        under, so it is as good as a read of its own, and a refused token
        costs one read, not two).

        The same header was proved against that record (the answer is
        remembered under the header's hash), so an unchanged record gives the
        same identity; what the store says now is all that can have changed.
        A token made with another token is always checked whole (nothing is
        read here): its makers would have to be read too.
        """
        remembered = answer.record
        restrictions = remembered.restrictions
        if restrictions is not None and restrictions.made_by is not None:
            return None, None
        record = self.store.get(remembered.token_id)
        if (
            record is None
            or record.secret_hash != remembered.secret_hash
            or record.owner != remembered.owner
            or record.revoked_at is not None
            or record.expires_at != remembered.expires_at
            or (record.expires_at is not None and now >= record.expires_at)
            or record.restrictions != restrictions
        ):
            return None, {remembered.token_id: record}
        self._accepted(record, now)
        return answer.identity, None

    def _accepted(self, record: TokenRecord, now: float) -> None:
        """What follows the acceptance of ``record``'s token, checked whole or
        again: the feed started (there is something to remember; a forked
        child's starts here), and its use noted at most once a minute."""
        feed = self.feed
        if feed is not None:
            feed.start()
        if record.last_used_at is None or now - record.last_used_at >= LAST_USED_INTERVAL:
            if feed is not None:
                feed.used(record.token_id, int(now))
            else:
                self.store.touch(record.token_id, now=int(now), min_interval=LAST_USED_INTERVAL)
            if self._records is not None:
                # The cached copy must know of the write, or every request
                # until it expires would attempt one.
                used = record._replace(last_used_at=int(now))
                self._records.put(record.token_id, used, self.cache_ttl)

    def _maker_ended(self, record: TokenRecord, now: float) -> str | None:
        """Why a token made with another token no longer stands, or ``None``:
        it ends with its maker, and the maker with its own (read from the
        store, up to :data:`MAKERS_CHECKED` of them). Remembered answers
        need no more: a maker's revocation is a change, which ends them."""
        for _ in range(MAKERS_CHECKED):
            made_by = record.restrictions.made_by if record.restrictions else None
            if made_by is None:
                return None
            maker = self._record(made_by)
            if maker is None:
                return f"the token it was made with, {made_by}, no longer exists"
            if maker.owner != record.owner:
                return f"the token it was made with, {made_by}, is someone else's"
            if maker.revoked_at is not None or (
                maker.expires_at is not None and now >= maker.expires_at
            ):
                return f"the token it was made with, {made_by}, is {maker.status(now)}"
            record = maker
        return f"it was made from a chain of more than {MAKERS_CHECKED} tokens"

    def close(self) -> None:
        """Close this process's connections to the token store, and its feed."""
        if self.feed is not None:
            self.feed.close()
        self.store.close()

    def _record(self, token_id: str) -> TokenRecord | None:
        records = self._records
        if records is None:
            return self.store.get(token_id)
        record = records.get(token_id)
        if record is None:
            record = self.store.get(token_id)
            if record is not None:
                records.put(token_id, record, self.cache_ttl)
        return record

    @staticmethod
    def _refuse(credentials: Credentials, description: str, reason: str) -> InvalidCredentials:
        error = InvalidToken if credentials.scheme == "Bearer" else InvalidCredentials
        return error(description, reason=reason, scheme=credentials.scheme)


_WRONG = {
    "Bearer": "The access token is invalid.",
    "Basic": "The username or token is invalid.",
}
