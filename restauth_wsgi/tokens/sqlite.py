"""The embedded API token store: one SQLite file shared by every process.

Safe for many processes at once: WAL journal (readers never wait for the
writer), a busy timeout for writers, and writes that check a limit (tokens
per user) run in ``BEGIN IMMEDIATE`` transactions so two processes cannot
both slip under it. Each thread of each process has its own connection,
opened on first use; a forked child never reuses its parent's.

A connection holds the file it opened, not the path: a backup moved into
place, or the file deleted, leaves it reading (and writing) a file nobody
else sees. So each connection knows the file it opened, and before a read a
thread checks, at most every :data:`FILE_CHECK_SECONDS`, that the path still
names it (before a write, always); if not, it opens what the path names now.

The schema is versioned with ``PRAGMA user_version``; :data:`MIGRATIONS`
only ever grows, so an upgrade adds fields without losing a token.
Migrations are additive (new tables, nullable columns) and queries name
their columns, so a release keeps working on a file a newer release has
migrated: hosts can be upgraded one at a time.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from restauth_wsgi.errors import TokenLimitExceeded, TokenStoreUnavailable
from restauth_wsgi.fork_safety import PerThread
from restauth_wsgi.tokens.sql import Queries, SqlTokenWrites, from_row, to_row
from restauth_wsgi.tokens.store import (
    UNANNOUNCED_CHANGES,
    TokenIdTaken,
    TokenRecord,
    TokenStoreMissing,
)

log = logging.getLogger(__name__)

_BUMP = """UPDATE token_changes SET generation = CASE
                WHEN typeof(generation) = 'integer' AND generation < 4611686018427387904
                THEN generation + 1 ELSE 0 END,
                nonce = randomblob(16)
            WHERE id = 1;"""
#: The triggers that keep the counter; a poll that finds any missing fails.
CHANGE_TRIGGERS = (
    "tokens_changed_on_update",
    "tokens_changed_on_delete",
    "tokens_changed_on_insert",
)

#: Each entry upgrades the schema by one version; never edit a released entry.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            secret_hash TEXT NOT NULL,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            last_used_at INTEGER,
            revoked_at INTEGER
        ) WITHOUT ROWID""",
        "CREATE INDEX tokens_by_owner ON tokens (owner)",
    ),
    # 2: per-token restrictions (read-only, allowed requests, networks, scopes), as JSON.
    ("ALTER TABLE tokens ADD COLUMN restrictions TEXT",),
    # 3: a change counter that every process polls (the change feed). Kept by
    # triggers, so every writer bumps it, an older release or plain SQL too;
    # a last-used time alone does not.
    (
        """CREATE TABLE token_changes (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation INTEGER NOT NULL
        )""",
        "INSERT INTO token_changes (id, generation) VALUES (1, 0)",
        """CREATE TRIGGER tokens_changed_on_update AFTER UPDATE ON tokens
        WHEN OLD.id IS NOT NEW.id OR OLD.secret_hash IS NOT NEW.secret_hash
            OR OLD.owner IS NOT NEW.owner OR OLD.expires_at IS NOT NEW.expires_at
            OR OLD.revoked_at IS NOT NEW.revoked_at OR OLD.restrictions IS NOT NEW.restrictions
        BEGIN
            UPDATE token_changes SET generation = generation + 1 WHERE id = 1;
        END""",
        """CREATE TRIGGER tokens_changed_on_delete AFTER DELETE ON tokens
        BEGIN
            UPDATE token_changes SET generation = generation + 1 WHERE id = 1;
        END""",
    ),
    # 4: the counter also moves when a token is created (INSERT, and REPLACE
    # INTO, whose delete half fires no trigger); every change also writes a
    # random nonce, so a store restored from a backup and then changed as
    # often as the backup was behind still reads differently; the counter
    # starts over at 0 instead of turning into a float near 2**63.
    (
        "ALTER TABLE token_changes ADD COLUMN nonce BLOB",
        "UPDATE token_changes SET nonce = randomblob(16)",
        "DROP TRIGGER tokens_changed_on_update",
        "DROP TRIGGER tokens_changed_on_delete",
        f"""CREATE TRIGGER tokens_changed_on_update AFTER UPDATE ON tokens
        WHEN OLD.id IS NOT NEW.id OR OLD.secret_hash IS NOT NEW.secret_hash
            OR OLD.owner IS NOT NEW.owner OR OLD.expires_at IS NOT NEW.expires_at
            OR OLD.revoked_at IS NOT NEW.revoked_at OR OLD.restrictions IS NOT NEW.restrictions
        BEGIN
            {_BUMP}
        END""",
        f"""CREATE TRIGGER tokens_changed_on_delete AFTER DELETE ON tokens
        BEGIN
            {_BUMP}
        END""",
        f"""CREATE TRIGGER tokens_changed_on_insert AFTER INSERT ON tokens
        BEGIN
            {_BUMP}
        END""",
    ),
    # 5: the ids prune deleted, so that re-running a copy from a store that
    # never heard of a revocation cannot bring the token back.
    (
        """CREATE TABLE token_tombstones (
            id TEXT PRIMARY KEY,
            pruned_at INTEGER NOT NULL
        ) WITHOUT ROWID""",
    ),
)

_SQL = Queries.render("tokens", "token_tombstones", "?")
# The counter, how many of the change triggers exist, and the schema's
# version, which SQLite moves on every schema change: a trigger dropped and
# made again between two polls (writes made meanwhile moved no counter) is
# then a change too, even within one transaction (one read).
_GENERATION = """SELECT generation, nonce, (
    SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tokens'
        AND name IN (?, ?, ?)
), (SELECT schema_version FROM pragma_schema_version()) FROM token_changes WHERE id = 1"""
_JUNK_COUNTER = (
    "the change counter's row (token_changes) holds values no release writes:"
    " its generation must be an integer and its nonce a blob"
)
# Writes that record a use must not hold a request up behind a long writer.
_TOUCH_BUSY_MS = 50
#: How often, at most, a thread checks before a read that its connection is
#: still on the file the store's path names (a stat: cheap, but not free).
FILE_CHECK_SECONDS = 0.1

FileId = tuple[int, int]


def _file_id(path: str) -> FileId | None:
    """The (device, inode) of the file at ``path``, or ``None`` if there is none."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class _Opened:
    """A thread's connection, the file it opened, and when that was last checked."""

    __slots__ = ("checked", "conn", "file")

    def __init__(self, conn: sqlite3.Connection, file: FileId) -> None:
        self.conn = conn
        self.file = file
        self.checked = time.monotonic()

    def close(self) -> None:
        self.conn.close()


class SQLiteTokenStore(SqlTokenWrites):
    """API tokens in an SQLite file (see the module docstring)."""

    sql = _SQL

    migrations: Sequence[Sequence[str]] = MIGRATIONS

    def __init__(self, path: str, *, timeout: float = 5.0, create: bool = True) -> None:
        self.path = path
        self.url = f"sqlite://{path}" if path.startswith("/") else f"sqlite:{path}"
        self.timeout = timeout
        #: Whether the first use makes the file (and its directory) if missing.
        self.create = create
        self._connections = PerThread(self._connect)
        # The file the change feed's poll last read the counter from.
        self._polled: FileId | None = None
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    # -- the hot path -----------------------------------------------------

    def get(self, token_id: str) -> TokenRecord | None:
        """Return the token with this id, or ``None``."""
        try:
            found = self._connection().execute(_SQL.select_one, (token_id,)).fetchone()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        return None if found is None else from_row(found)

    def generation(self) -> tuple[int, int, int, bytes, int]:
        """The file's identity, its change counter and nonce, which move
        whenever a token is created, revoked, changed or deleted, and its
        schema's version, which moves when a change trigger is dropped and
        made again.

        The file's identity is part of the mark: a store file replaced under
        running servers (a backup moved into place) is a change, and every
        thread reopens the file it names.

        :raises TokenStoreUnavailable: when the counter row or a change
            trigger is missing, or the file was replaced (this poll only).
        """
        opened = self._opened(check=True)
        if opened.file != self._polled:
            if self._polled is not None:
                log.warning(
                    "token store %s: the file was replaced; every thread reopens it", self.path
                )
                # Each thread would see it by itself within FILE_CHECK_SECONDS; now.
                self._connections.renew()
            self._polled = opened.file
        try:
            found = opened.conn.execute(_GENERATION, CHANGE_TRIGGERS).fetchone()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        if found is None or found[2] != len(CHANGE_TRIGGERS):
            raise self._unavailable(ValueError(UNANNOUNCED_CHANGES))
        generation, nonce = found[0], found[1]
        # SQLite's columns take any type: junk written by hand is an unreadable
        # counter (a whole number as the nonce made bytes(n), n zero bytes).
        if type(generation) is not int or (nonce is not None and type(nonce) is not bytes):
            raise self._unavailable(ValueError(_JUNK_COUNTER))
        return *opened.file, generation, nonce or b"", int(found[3])

    def touch(self, token_id: str, *, now: int, min_interval: int) -> None:
        """Record a use at most once per ``min_interval``; skip if the file is busy."""
        try:
            conn = self._connection()
            conn.execute(f"PRAGMA busy_timeout = {_TOUCH_BUSY_MS}")
            try:
                conn.execute(_SQL.touch, (now, token_id, now - min_interval))
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        except sqlite3.Error as exc:
            # Losing one last-used time is better than failing a valid request.
            log.debug("last-used time of token %s not recorded: %s", token_id, exc)

    # -- administration -----------------------------------------------------

    def add(self, record: TokenRecord, *, max_per_user: int | None, now: int) -> None:
        """Insert ``record`` unless its owner is at ``max_per_user`` active tokens."""
        with self._transaction() as conn:
            if max_per_user is not None:
                (active,) = conn.execute(_SQL.count_active, (record.owner, now)).fetchone()
                if active >= max_per_user:
                    raise TokenLimitExceeded(
                        f"{record.owner!r} already has {active} active tokens, the most"
                        " allowed (RESTAUTH_TOKEN_MAX_PER_USER); revoke one first"
                    )
            try:
                conn.execute(_SQL.insert, to_row(record))
            except sqlite3.IntegrityError as exc:
                raise TokenIdTaken(record.token_id) from exc

    def list(self, owner: str | None = None) -> list[TokenRecord]:
        """All tokens, or one owner's, oldest first."""
        try:
            if owner is None:
                rows = self._connection().execute(_SQL.select_all)
            else:
                rows = self._connection().execute(_SQL.select_owner, (owner,))
            return [from_row(values) for values in rows]
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def close(self) -> None:
        """Close this thread's connection, if it has one."""
        opened = self._connections.discard()
        if opened is not None:
            opened.close()

    # -- connections and schema ---------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        return self._opened().conn

    def _opened(self, *, check: bool = False) -> _Opened:
        """This thread's connection, on the file the path names now (checked
        always when ``check``, else at most every FILE_CHECK_SECONDS)."""
        opened = self._connections.get()
        now = time.monotonic()
        if check or now - opened.checked >= FILE_CHECK_SECONDS:
            if _file_id(self.path) != opened.file:
                # Replaced or removed: open what the path names now (a new,
                # empty store if it is gone and the store may create one).
                self._connections.discard()
                opened.close()
                self._schema_ready = False  # a restored file may need migrating
                opened = self._connections.get()
            opened.checked = now
        return opened

    def _connect(self) -> _Opened:
        if not self.create and not os.path.isfile(self.path):
            raise TokenStoreMissing(self.url)
        try:
            # The file opened is the one the path named both before and after
            # the open (else one replaced meanwhile would pass for the new one).
            for _ in range(3):
                _create_private_file(self.path)
                before = _file_id(self.path)
                conn = sqlite3.connect(
                    self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
                )
                self._use_wal(conn)
                # NORMAL sync is durable across application crashes, which is
                # what a token store needs, and cheaper than FULL under WAL.
                conn.execute("PRAGMA synchronous = NORMAL")
                file = _file_id(self.path)
                if file is not None and file == before:
                    break
                conn.close()
            else:
                raise OSError(f"{self.path} was replaced three times while it was opened")
        except (OSError, sqlite3.Error) as exc:
            raise self._unavailable(exc) from exc
        if not self._schema_ready:
            with self._schema_lock:
                if not self._schema_ready:
                    self._migrate(conn)
                    self._schema_ready = True
        return _Opened(conn, file)

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Put the file in WAL mode (readers never wait for a writer), once.

        The mode is kept in the file, so this only changes anything the first
        time. Switching needs the file to itself and may answer "locked" at
        once, without the busy timeout, when processes open a new file
        together: retry until the timeout.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
                if mode != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        target = len(self.migrations)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                if version > target:
                    log.warning(
                        "token store %s has schema %d, newer than this release's %d;"
                        " carrying on (migrations are additive), but upgrade restauth-wsgi",
                        self.path,
                        version,
                        target,
                    )
                    target = version
                for number in range(version, target):
                    for statement in self.migrations[number]:
                        conn.execute(statement)
                    log.info("token store %s migrated to schema %d", self.path, number + 1)
                conn.execute(f"PRAGMA user_version = {target}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def _transaction(self, *, long: bool = False) -> Iterator[sqlite3.Connection]:
        # A write always lands in the file the path names now: a revocation
        # written to a replaced file would be lost.
        conn = self._opened(check=True).conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            yield conn
        except BaseException as exc:
            # The original error is the one worth reporting, not a failed rollback.
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._unavailable(exc) from exc
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> TokenStoreUnavailable:
        return TokenStoreUnavailable(
            "The token store is unavailable; try again shortly.",
            reason=f"token store {self.path}: {exc}",
        )

    def schema_version(self) -> int:
        """The schema version of the file (migrating it first if needed)."""
        (version,) = self._connection().execute("PRAGMA user_version").fetchone()
        return int(version)


def _create_private_file(path: str) -> None:
    """Create the database file (and its directory) readable by its owner only."""
    if os.path.exists(path):
        return
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
