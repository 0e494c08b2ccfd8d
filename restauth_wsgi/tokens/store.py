"""What every API token store offers, and how a store URL picks one."""

from __future__ import annotations

import urllib.parse
from collections.abc import Hashable, Iterable
from typing import NamedTuple, Protocol

from restauth_wsgi.config.kinds import require_extra
from restauth_wsgi.errors import ConfigurationError, TokenStoreUnavailable
from restauth_wsgi.tokens.restrictions import TokenRestrictions
from restauth_wsgi.urls import mask_url


class TokenRecord(NamedTuple):
    """One stored API token. Holds the hash of the token, never the token."""

    token_id: str
    secret_hash: str
    owner: str
    name: str
    created_at: int
    expires_at: int | None
    last_used_at: int | None = None
    revoked_at: int | None = None
    restrictions: TokenRestrictions | None = None

    def status(self, now: float) -> str:
        """``revoked``, ``expired`` or ``active`` at time ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


class TokenStore(Protocol):
    """Where API tokens live. Implementations open connections lazily.

    Every method raises :class:`~restauth_wsgi.errors.TokenStoreUnavailable`
    when the store cannot be reached, so the middleware answers 503 rather
    than refusing a token that may be valid.
    """

    url: str

    def get(self, token_id: str) -> TokenRecord | None:
        """Return the token with this id, or ``None``: the hot path, one indexed read."""

    def add(self, record: TokenRecord, *, max_per_user: int | None, now: int) -> None:
        """Insert ``record``, atomically refusing it if its owner already has
        ``max_per_user`` active tokens.

        :raises TokenLimitExceeded: the owner has too many active tokens.
        :raises TokenIdTaken: another token already has this id.
        """

    def list(self, owner: str | None = None) -> list[TokenRecord]:
        """All tokens (or one owner's), oldest first."""

    def revoke(self, token_id: str, *, now: int) -> TokenRecord | None:
        """Mark a token revoked (keeping the first revocation time); return it,
        or ``None`` if there is no such token."""

    def prune(self, *, before: int) -> int:
        """Delete tokens that expired or were revoked before ``before``; return how many.
        When there are none, nothing is written, so the change mark does not move.
        The ids deleted are remembered (see ``pruned``)."""

    def generation(self) -> Hashable:
        """The store's change mark: it reads differently whenever a token is
        created, revoked, changed or deleted (not when a last-used time is
        recorded). Cheap: the change feed polls it.

        :raises TokenStoreUnavailable: also when the store cannot vouch that
            it would change (its triggers are missing or disabled, its
            counter row is gone): the feed then fails closed.
        """

    def touch(self, token_id: str, *, now: int, min_interval: int) -> None:
        """Record a use, unless one was recorded less than ``min_interval``
        seconds ago. Best effort: a busy store skips the write."""

    def put_all(self, records: Iterable[TokenRecord]) -> int:
        """Insert or overwrite ``records``; return how many were written.

        For copying a store (``restauth store migrate``): safe to repeat. A
        token already here keeps the earlier revocation and the later use of
        the two; a token pruned from here is not written again.
        """

    def pruned(self, token_ids: Iterable[str]) -> set[str]:
        """Those of ``token_ids`` that a prune deleted from this store (which
        ``put_all`` therefore does not write)."""

    def close(self) -> None:
        """Close this thread's (or process's) connections, if any."""


#: Why a store's change feed cannot vouch for it (its ``generation()`` raises).
UNANNOUNCED_CHANGES = (
    "the change counter or its triggers are missing or disabled; API tokens are read from"
    " the store on every request (see docs/api-tokens.md, the change feed)"
)


class TokenIdTaken(Exception):
    """Raised by :meth:`TokenStore.add` when the random id already exists."""


class TokenStoreMissing(TokenStoreUnavailable):
    """A store opened with ``create=False`` does not exist.

    Commands that only read or change existing tokens open the store so: a
    mistyped path is then an error naming it, not a new empty store that
    lists no tokens.
    """

    def __init__(self, where: str) -> None:
        super().__init__(
            "The token store is unavailable; try again shortly.",
            reason=f"there is no token store at {where}; is the path right?"
            " ('restauth token create' makes a new store)",
        )


def check_store_url(url: str) -> None:
    """Check that ``url`` names a supported store, without connecting.

    :raises ValueError: saying what is wrong.
    """
    if url.startswith("sqlite:"):
        sqlite_path(url)
        return
    if url.startswith(("postgresql://", "postgres://")):
        if not urllib.parse.urlsplit(url).path.strip("/"):
            raise ValueError(f"{mask_url(url)!r} names no database: postgresql://host/dbname")
        return
    raise ValueError(
        f"{mask_url(url)!r} is not a supported store URL;"
        " use sqlite:///path/to/tokens.db or postgresql://user@host/dbname"
    )


def open_store(
    url: str, *, timeout: float, source: str = "RESTAUTH_TOKEN_STORE", create: bool = True
) -> TokenStore:
    """Return the store that ``url`` names, without connecting to it.

    :param source: where the URL came from (a variable, or a command's
        option such as ``--to``), named in errors.
    :param create: make the store (the SQLite file, the PostgreSQL tables)
        on first use if it does not exist; when false, using a store that
        does not exist raises :class:`TokenStoreMissing`.
    :raises ConfigurationError: naming ``source``.
    """
    try:
        check_store_url(url)
        if not url.startswith("sqlite:"):
            require_extra("postgresql", "a PostgreSQL store")
    except ValueError as exc:
        raise ConfigurationError(source, str(exc)) from None
    if url.startswith("sqlite:"):
        from restauth_wsgi.tokens.sqlite import SQLiteTokenStore

        return SQLiteTokenStore(sqlite_path(url), timeout=timeout, create=create)
    from restauth_wsgi.tokens.postgres import PostgresTokenStore

    return PostgresTokenStore(url, timeout=timeout, create=create)


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:`` URL.

    ``sqlite:///var/lib/x.db`` is the absolute path ``/var/lib/x.db``, as a
    ``file:`` URL would be; ``sqlite:x.db`` is relative to the working
    directory (rarely what a server wants).

    :raises ValueError: when the URL names a host or no file.
    """
    rest = url.removeprefix("sqlite:")
    if rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if authority not in ("", "localhost") or not slash:
            raise ValueError(
                f"{url!r} names a host; an SQLite store is a local file: sqlite:///path/to/tokens.db"
            )
        rest = "/" + path
    if not rest.strip("/"):
        raise ValueError(f"{url!r} names no file")
    return rest
