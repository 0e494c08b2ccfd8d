"""The token stores' SQL, written once and rendered for each database.

SQLite and PostgreSQL differ here only in the parameter marker (``?`` or
``%s``) and the tables' names (the PostgreSQL tables may share a database
with the application, so they are prefixed).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar

from restauth_wsgi.errors import TokenStoreUnavailable
from restauth_wsgi.tokens.restrictions import TokenRestrictions
from restauth_wsgi.tokens.store import TokenRecord

#: The columns, in TokenRecord's field order.
COLUMNS = (
    "id",
    "secret_hash",
    "owner",
    "name",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "restrictions",
)


@dataclass(frozen=True)
class Queries:
    """Every statement the stores run, for one table and parameter marker."""

    select_one: str
    select_all: str
    select_owner: str
    count_active: str
    insert: str
    upsert: str
    touch: str
    revoke: str
    prunable: str
    prune: str
    bury: str
    buried: str

    @classmethod
    def render(cls, table: str, tombstones: str, marker: str) -> Queries:
        """The statements for ``table`` (and its ``tombstones``, the ids
        pruned from it) with parameters written as ``marker``."""
        columns = ", ".join(COLUMNS)
        values = ", ".join([marker] * len(COLUMNS))
        # A copy over a token already there keeps the earlier revocation and
        # the later use of the two, decided in the statement itself: a revoke
        # on the target after the copy read it must not be undone.
        kept = {
            "revoked_at": f"CASE WHEN {table}.revoked_at IS NULL"
            f" OR excluded.revoked_at < {table}.revoked_at"
            f" THEN excluded.revoked_at ELSE {table}.revoked_at END",
            "last_used_at": f"CASE WHEN {table}.last_used_at IS NULL"
            f" OR excluded.last_used_at > {table}.last_used_at"
            f" THEN excluded.last_used_at ELSE {table}.last_used_at END",
        }
        updates = ", ".join(f"{c} = {kept.get(c, f'excluded.{c}')}" for c in COLUMNS[1:])
        select = f"SELECT {columns} FROM {table}"
        # What prune deletes: expired or revoked before the given time.
        dead = f"expires_at < {marker} OR revoked_at < {marker}"
        return cls(
            select_one=f"{select} WHERE id = {marker}",
            select_all=f"{select} ORDER BY created_at, id",
            select_owner=f"{select} WHERE owner = {marker} ORDER BY created_at, id",
            count_active=f"SELECT count(*) FROM {table} WHERE owner = {marker}"
            f" AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {marker})",
            insert=f"INSERT INTO {table} ({columns}) VALUES ({values})",
            upsert=f"INSERT INTO {table} ({columns}) VALUES ({values})"
            f" ON CONFLICT (id) DO UPDATE SET {updates}",
            touch=f"UPDATE {table} SET last_used_at = {marker} WHERE id = {marker}"
            f" AND (last_used_at IS NULL OR last_used_at <= {marker})",
            revoke=f"UPDATE {table} SET revoked_at = {marker}"
            f" WHERE id = {marker} AND revoked_at IS NULL",
            prunable=f"SELECT 1 FROM {table} WHERE {dead} LIMIT 1",
            prune=f"DELETE FROM {table} WHERE {dead}",
            bury=f"INSERT INTO {tombstones} (id, pruned_at) SELECT id, {marker} FROM {table}"
            f" WHERE {dead} ON CONFLICT (id) DO NOTHING",
            buried=f"SELECT 1 FROM {tombstones} WHERE id = {marker}",
        )


def to_row(record: TokenRecord) -> tuple[object, ...]:
    """A record's values in column order."""
    return (
        record.token_id,
        record.secret_hash,
        record.owner,
        record.name,
        record.created_at,
        record.expires_at,
        record.last_used_at,
        record.revoked_at,
        None if record.restrictions is None else record.restrictions.to_json(),
    )


def from_row(values: Sequence[Any]) -> TokenRecord:
    """A record from a row in column order (on the hot path: kept lean).

    :raises TokenStoreUnavailable: for a row no release writes (plain SQL
        can leave text in a time, or restrictions that are not an object,
        in SQLite's loosely typed columns): the token can be judged neither
        way, so the answer is 503 and the reason names the row, never a 500.
    """
    restrictions = values[8]
    # Written out: a third of the time of asking _KINDS column by column,
    # which only says which column is wrong.
    if (
        type(values[0]) is not str
        or type(values[1]) is not str
        or type(values[2]) is not str
        or type(values[3]) is not str
        or type(values[4]) is not int
        or type(values[5]) not in _INT_OR_NULL
        or type(values[6]) not in _INT_OR_NULL
        or type(values[7]) not in _INT_OR_NULL
    ):
        wrong = next(
            f"{column} is {type(value).__name__}"
            for column, value, kinds in zip(COLUMNS, values, _KINDS, strict=False)
            if type(value) not in kinds
        )
        raise _malformed(values[0], wrong)
    if restrictions is not None and (
        type(restrictions) is not str or len(restrictions) > _MAX_RESTRICTIONS
    ):
        raise _malformed(values[0], "restrictions are not JSON text of a sane length")
    try:
        parsed = TokenRestrictions.from_json(restrictions) if restrictions else None
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        problem = f"restrictions are not what the store writes ({exc})"
        raise _malformed(values[0], problem) from None
    return TokenRecord(
        values[0],
        values[1],
        values[2],
        values[3],
        values[4],
        values[5],
        values[6],
        values[7],
        parsed,
    )


_INT_OR_NULL = frozenset({int, type(None)})
#: Far above what any token's restrictions take (a few hundred characters).
_MAX_RESTRICTIONS = 64 * 1024
_STR = frozenset({str})
#: The types each column may hold, in COLUMNS' order (restrictions apart): the
#: check in from_row, column by column.
_KINDS = (_STR, _STR, _STR, _STR, frozenset({int}), _INT_OR_NULL, _INT_OR_NULL, _INT_OR_NULL)


def _malformed(token_id: object, problem: str) -> TokenStoreUnavailable:
    return TokenStoreUnavailable(
        "The token store is unavailable; try again shortly.",
        reason=f"the token store's row for API token {str(token_id)[:40]!r} is malformed:"
        f" {problem}; correct or delete the row with SQL (restauth commands cannot read it)",
    )


class SqlTokenWrites:
    """The administrative writes both SQL stores run alike, each in one of the
    store's own transactions (which turn the driver's errors into
    :class:`~restauth_wsgi.errors.TokenStoreUnavailable`)."""

    #: The statements, rendered for the store's database.
    sql: ClassVar[Queries]

    def _transaction(self, *, long: bool = False) -> AbstractContextManager[Any]:
        """A transaction on one connection; ``long`` for one that may outlast
        the store's timeout as a whole (a copy of every token)."""
        raise NotImplementedError

    def revoke(self, token_id: str, *, now: int) -> TokenRecord | None:
        """Mark the token revoked; return it, or ``None`` if unknown."""
        with self._transaction() as conn:
            conn.execute(self.sql.revoke, (now, token_id))
            found = conn.execute(self.sql.select_one, (token_id,)).fetchone()
        return None if found is None else from_row(found)

    def prune(self, *, before: int) -> int:
        """Delete tokens expired or revoked before ``before``; return the count."""
        with self._transaction() as conn:
            # A delete that matches nothing still fires PostgreSQL's
            # statement-level delete trigger and moves the change mark: every
            # process would read each token it remembers again, for nothing,
            # after every scheduled prune.
            if conn.execute(self.sql.prunable, (before, before)).fetchone() is None:
                return 0
            # Each pruned id is remembered, so that a copy from a store that
            # never heard of its revocation cannot bring it back (put_all).
            # The table held first: a copy writing meanwhile would otherwise
            # add a row the delete sees and the tombstones do not.
            self._lock_for_copy(conn)
            conn.execute(self.sql.bury, (int(time.time()), before, before))
            return int(conn.execute(self.sql.prune, (before, before)).rowcount)

    def _lock_for_copy(self, conn: Any) -> None:
        """Keep other writers out of the table for the rest of the transaction."""

    def put_all(self, records: Iterable[TokenRecord]) -> int:
        """Insert or overwrite ``records`` (for ``restauth store migrate``); a
        token already there keeps the earlier revocation and the later use,
        and one pruned from here is not written again."""
        count = 0
        with self._transaction(long=True) as conn:
            self._lock_for_copy(conn)
            for record in records:
                # Asked in the copy's own transaction, which a prune waits for
                # (or the copy for it): never a pruned token written back.
                if conn.execute(self.sql.buried, (record.token_id,)).fetchone() is None:
                    conn.execute(self.sql.upsert, to_row(record))
                    count += 1
        return count

    def pruned(self, token_ids: Iterable[str]) -> set[str]:
        """Those of ``token_ids`` that a prune deleted from this store."""
        with self._transaction() as conn:
            return {
                token_id
                for token_id in token_ids
                if conn.execute(self.sql.buried, (token_id,)).fetchone() is not None
            }
