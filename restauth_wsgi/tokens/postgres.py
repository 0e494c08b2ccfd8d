"""API tokens in PostgreSQL, for several hosts sharing one store.

psycopg 3 with a connection pool per process (made on first use, so a
pre-fork server's workers each get their own). The schema and its
migrations mirror the SQLite store's; they run under an advisory lock, so
hosts starting together migrate once. Tokens live in ``restauth_tokens``,
so the store can share a database with the application.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool

from restauth_wsgi.errors import TokenLimitExceeded, TokenStoreUnavailable
from restauth_wsgi.fork_safety import PerProcess
from restauth_wsgi.tokens.sql import Queries, SqlTokenWrites, from_row, to_row
from restauth_wsgi.tokens.store import (
    UNANNOUNCED_CHANGES,
    TokenIdTaken,
    TokenRecord,
    TokenStoreMissing,
)
from restauth_wsgi.urls import mask_url
from restauth_wsgi.watchdog import watch_socket

log = logging.getLogger(__name__)

#: Each entry upgrades the schema by one version; never edit a released entry.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE restauth_tokens (
            id TEXT PRIMARY KEY,
            secret_hash TEXT NOT NULL,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            last_used_at BIGINT,
            revoked_at BIGINT
        )""",
        "CREATE INDEX restauth_tokens_by_owner ON restauth_tokens (owner)",
    ),
    # 2: per-token restrictions (read-only, allowed requests, networks, scopes), as JSON.
    ("ALTER TABLE restauth_tokens ADD COLUMN restrictions TEXT",),
    # 3: the change counter every process polls (see the SQLite store), kept by
    # triggers so that any writer bumps it and a last-used time alone does not.
    (
        """CREATE TABLE restauth_token_changes (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation BIGINT NOT NULL
        )""",
        "INSERT INTO restauth_token_changes (id, generation) VALUES (1, 0)",
        """CREATE FUNCTION restauth_tokens_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE restauth_token_changes SET generation = generation + 1 WHERE id = 1;
            RETURN NULL;
        END $$""",
        """CREATE TRIGGER restauth_tokens_changed_on_update AFTER UPDATE ON restauth_tokens
        FOR EACH ROW WHEN (
            OLD.id IS DISTINCT FROM NEW.id
            OR OLD.secret_hash IS DISTINCT FROM NEW.secret_hash
            OR OLD.owner IS DISTINCT FROM NEW.owner
            OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
            OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
            OR OLD.restrictions IS DISTINCT FROM NEW.restrictions
        ) EXECUTE FUNCTION restauth_tokens_changed()""",
        """CREATE TRIGGER restauth_tokens_changed_on_delete AFTER DELETE ON restauth_tokens
        FOR EACH STATEMENT EXECUTE FUNCTION restauth_tokens_changed()""",
    ),
    # 4: the counter also moves when tokens are created or the table is
    # truncated; every change also writes a random nonce (a restored backup
    # changed as often as it was behind still reads differently); the
    # triggers fire for every session, replication's and pg_restore's
    # (session_replication_role = replica) included; the counter bumped is
    # the one in the schema of the table written, whatever the writer's
    # search_path; and it starts over at 0 before it could overflow.
    (
        "ALTER TABLE restauth_token_changes ADD COLUMN nonce TEXT",
        "UPDATE restauth_token_changes SET nonce = md5(random()::text || clock_timestamp()::text)",
        """CREATE OR REPLACE FUNCTION restauth_tokens_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            EXECUTE format(
                'UPDATE %I.restauth_token_changes SET generation = CASE'
                ' WHEN generation < 4611686018427387904 THEN generation + 1 ELSE 0 END,'
                ' nonce = md5(random()::text || clock_timestamp()::text)'
                ' WHERE id = 1',
                TG_TABLE_SCHEMA
            );
            RETURN NULL;
        END $$""",
        """CREATE TRIGGER restauth_tokens_changed_on_insert AFTER INSERT ON restauth_tokens
        FOR EACH STATEMENT EXECUTE FUNCTION restauth_tokens_changed()""",
        """CREATE TRIGGER restauth_tokens_changed_on_truncate AFTER TRUNCATE ON restauth_tokens
        FOR EACH STATEMENT EXECUTE FUNCTION restauth_tokens_changed()""",
        *(
            f"ALTER TABLE restauth_tokens ENABLE ALWAYS TRIGGER restauth_tokens_changed_on_{event}"
            for event in ("update", "delete", "insert", "truncate")
        ),
    ),
    # 5: the ids prune deleted (see the SQLite store).
    (
        """CREATE TABLE restauth_token_tombstones (
            id TEXT PRIMARY KEY,
            pruned_at BIGINT NOT NULL
        )""",
    ),
)

#: The triggers that keep the counter; a poll that finds any missing or not
#: enabled for every session fails.
CHANGE_TRIGGERS = tuple(
    f"restauth_tokens_changed_on_{event}" for event in ("update", "delete", "insert", "truncate")
)

_SQL = Queries.render("restauth_tokens", "restauth_token_tombstones", "%s")
# The counter, and how many of the change triggers fire always (one read).
_GENERATION = """SELECT generation, nonce, (
    SELECT count(*) FROM pg_trigger
    WHERE tgrelid = to_regclass('restauth_tokens') AND tgenabled = 'A' AND tgname = ANY(%s)
), (
    SELECT string_agg(concat_ws(':', t.oid, t.xmin, f.oid, f.xmin), ',' ORDER BY t.tgname)
    FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid
    WHERE t.tgrelid = to_regclass('restauth_tokens') AND t.tgname = ANY(%s)
) FROM restauth_token_changes WHERE id = 1"""
# pg_advisory_xact_lock key for migrations (any constant of our own).
_MIGRATION_LOCK = 0x72657374  # "rest"


class PostgresTokenStore(SqlTokenWrites):
    """API tokens in a PostgreSQL database (see the module docstring)."""

    sql = _SQL

    migrations: Sequence[Sequence[str]] = MIGRATIONS

    def __init__(
        self, url: str, *, timeout: float = 5.0, pool_size: int = 4, create: bool = True
    ) -> None:
        self.url = url
        self.timeout = timeout
        #: Whether the first use makes the tables if missing (the database must exist).
        self.create = create
        self.pool_size = pool_size
        self._pool = PerProcess(self._open_pool)
        self._schema_ready = False

    # -- the hot path -----------------------------------------------------

    def get(self, token_id: str) -> TokenRecord | None:
        """Return the token with this id, or ``None``."""
        # A read may meet a connection the server dropped (a restart): try
        # once more on a fresh one before calling the store unavailable.
        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    found = conn.execute(_SQL.select_one, (token_id,)).fetchone()
                return None if found is None else from_row(found)
            except psycopg.OperationalError as exc:
                if attempt == 2:
                    raise self._unavailable(exc) from exc
                # After a server restart every idle connection is dead, not
                # only the one taken: drop them all before the second try.
                with contextlib.suppress(psycopg.Error, psycopg_pool.PoolTimeout):
                    self._pool.get().check()
            except psycopg.Error as exc:
                # The table renamed or dropped, no privilege, a read-only
                # standby: no second try mends those.
                raise self._unavailable(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def generation(self) -> tuple[int, str, str]:
        """The change counter and nonce, which move whenever a token is
        created, revoked, changed or deleted, and the change triggers' rows
        and their function's as written (each row's id and the transaction
        that wrote it), which move when a trigger is disabled and enabled
        again, dropped and made again, or its function's body replaced and
        put back: writes made meanwhile moved no counter.

        :raises TokenStoreUnavailable: when the counter row or a change
            trigger is missing, or a trigger is not enabled for every session.
        """
        try:
            with self._connection() as conn:
                triggers = list(CHANGE_TRIGGERS)
                found = conn.execute(_GENERATION, (triggers, triggers)).fetchone()
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        if found is None or found[2] != len(CHANGE_TRIGGERS):
            raise self._unavailable(ValueError(UNANNOUNCED_CHANGES))
        return int(found[0]), str(found[1]), str(found[3])

    def touch(self, token_id: str, *, now: int, min_interval: int) -> None:
        """Record a use at most once per ``min_interval``; never fail the request for it."""
        try:
            with self._connection() as conn, conn.transaction():
                # A row held by someone's open transaction must not stall the
                # change feed's thread, which writes these between polls.
                conn.execute("SET LOCAL lock_timeout = '100ms'")
                conn.execute(_SQL.touch, (now, token_id, now - min_interval))
        except (psycopg.Error, TokenStoreUnavailable) as exc:
            log.debug("last-used time of token %s not recorded: %s", token_id, exc)

    # -- administration -----------------------------------------------------

    def add(self, record: TokenRecord, *, max_per_user: int | None, now: int) -> None:
        """Insert ``record`` unless its owner is at ``max_per_user`` active tokens."""
        with self._transaction() as conn:
            if max_per_user is not None:
                # One owner's creations run one at a time, so the count holds.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (record.owner,))
                counted = conn.execute(_SQL.count_active, (record.owner, now)).fetchone()
                active = int(counted[0]) if counted else 0
                if active >= max_per_user:
                    raise TokenLimitExceeded(
                        f"{record.owner!r} already has {active} active tokens, the most"
                        " allowed (RESTAUTH_TOKEN_MAX_PER_USER); revoke one first"
                    )
            try:
                conn.execute(_SQL.insert, to_row(record))
            except psycopg.errors.UniqueViolation as exc:
                raise TokenIdTaken(record.token_id) from exc

    def list(self, owner: str | None = None) -> list[TokenRecord]:
        """All tokens, or one owner's, oldest first."""
        try:
            with self._connection() as conn:
                if owner is None:
                    rows = conn.execute(_SQL.select_all).fetchall()
                else:
                    rows = conn.execute(_SQL.select_owner, (owner,)).fetchall()
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc
        return [from_row(values) for values in rows]

    def close(self) -> None:
        """Close this process's pool, if it has one."""
        pool = self._pool.discard()
        if pool is not None:
            pool.close()

    # -- connections and schema ---------------------------------------------

    def _open_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.pool_size,
            timeout=self.timeout,
            # The pool's background reconnection backs off for up to five
            # minutes by default; give it up quickly instead, so that after an
            # outage the next request connects on demand.
            reconnect_timeout=max(self.timeout, 1.0),
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, round(self.timeout)),
                # A network path that goes silent mid-read (no reset) is found
                # dead within about the timeout, not after the kernel's hours.
                "keepalives": 1,
                "keepalives_idle": max(1, round(self.timeout)),
                "keepalives_interval": 1,
                "keepalives_count": 3,
                "tcp_user_timeout": max(1000, round(self.timeout * 1000)),
            },
            configure=self._configure,
            open=False,
            name="restauth-tokens",
        )
        pool.open(wait=False)
        return pool

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # No statement waits longer than the store's timeout, for a lock (a
        # session holding the table) or for anything else: a request gets its
        # 503 then. Set on the session, not as a startup option, which
        # PgBouncer refuses.
        limit = max(1, round(self.timeout * 1000))
        conn.execute(f"SET statement_timeout = {limit}")
        conn.execute(f"SET lock_timeout = {limit}")

    @contextmanager
    def _connection(self, *, bounded: bool = True) -> Iterator[psycopg.Connection[Any]]:
        try:
            with (
                self._pool.get().connection() as conn,
                _cut_at_deadline(conn, bounded, self.timeout),
            ):
                if not self._schema_ready:
                    try:
                        self._migrate(conn)
                    except psycopg.Error as exc:
                        # A read-only standby, a role without CREATE: the
                        # schema cannot be checked, so nothing is read.
                        raise self._unavailable(exc) from exc
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            raise self._unavailable(exc) from exc

    def _lock_for_copy(self, conn: psycopg.Connection[Any]) -> None:
        # A copy writes many rows, each firing the trigger that bumps the
        # change counter; a revoke locks its row, then the counter. Row by row
        # the two deadlock; with the table held first, a revoke waits its turn.
        conn.execute("LOCK TABLE restauth_tokens IN SHARE ROW EXCLUSIVE MODE")

    @contextmanager
    def _transaction(self, *, long: bool = False) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._connection(bounded=not long) as conn, conn.transaction():
                # A write waits for a lock no longer than the store's timeout
                # (a copy holding the table, a stuck session): then it fails,
                # as an unreachable store does, and nothing queues behind it.
                conn.execute(f"SET LOCAL lock_timeout = '{max(1, round(self.timeout * 1000))}ms'")
                yield conn
        except psycopg.errors.UniqueViolation:
            raise
        except psycopg.Error as exc:
            raise self._unavailable(exc) from exc

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        target = len(self.migrations)
        if not self.create:
            found = conn.execute("SELECT to_regclass('restauth_schema')").fetchone()
            if found is None or found[0] is None:
                raise TokenStoreMissing(f"{mask_url(self.url)} (no restauth_schema table)")
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS restauth_schema (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM restauth_schema").fetchone()
            version = 0 if row is None else int(row[0])
            if row is None:
                conn.execute("INSERT INTO restauth_schema (version) VALUES (0)")
            if version > target:
                log.warning(
                    "token store has schema %d, newer than this release's %d; carrying on"
                    " (migrations are additive), but upgrade restauth-wsgi",
                    version,
                    target,
                )
            for number in range(version, target):
                for statement in self.migrations[number]:
                    conn.execute(statement)
                log.info("token store migrated to schema %d", number + 1)
            if version < target:
                conn.execute("UPDATE restauth_schema SET version = %s", (target,))
        self._schema_ready = True

    def schema_version(self) -> int:
        """The schema version of the database (migrating it first if needed)."""
        with self._connection() as conn:
            row = conn.execute("SELECT version FROM restauth_schema").fetchone()
        return int(row[0]) if row else 0

    def _unavailable(self, exc: Exception) -> TokenStoreUnavailable:
        return TokenStoreUnavailable(
            "The token store is unavailable; try again shortly.",
            reason=f"token store {mask_url(self.url)}: {type(exc).__name__}: {exc}",
        )


# How long past the store's timeout a call may run before its connection is
# cut: the server's own statement_timeout answers first, when it answers.
_GRACE = 1.0


@contextmanager
def _cut_at_deadline(
    conn: psycopg.Connection[Any], bounded: bool, timeout: float
) -> Iterator[None]:
    """Shut the connection's socket down if the block outlasts ``timeout``.

    A server (or PgBouncer, or the path to it) that accepts a statement and
    then answers nothing holds the call for ever: libpq has no timeout of
    its own for an answer, and statement_timeout is the silent server's to
    enforce. Shut down, the socket wakes the waiting call with an error (a
    503), and the pool discards the connection.
    """
    if not bounded:
        yield
        return
    stop = watch_socket(conn.pgconn.socket, time.monotonic() + timeout + _GRACE)
    try:
        yield
    finally:
        if stop():
            # Cut, perhaps just as the call ended: the socket is shut, so the
            # pool must not lend this connection again (it discards closed ones).
            conn.close()
