"""The change feed under attack: each way an attack review found to keep a
revoked API token working from memory, and what the feed must do instead.

One middleware in this process stands for a server process; the store's
reads are counted, so that a test knows a token is answered from memory
before it changes the store. After a change, the bound the feed promises
(a poll, and how stale a poll may be) is all the time a revoked token gets.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import bcrypt
import pytest
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.authentication import Recalled
from restauth_wsgi.decision import Gatekeeper
from restauth_wsgi.errors import InvalidToken, TokenStoreUnavailable
from restauth_wsgi.identity import Identity
from restauth_wsgi.middleware import SpoofableHeaders
from restauth_wsgi.request import paths
from restauth_wsgi.request.paths import request_path
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.authenticator import ApiTokenAuthenticator, StoreAnswer
from restauth_wsgi.tokens.feed import POLL_SECONDS, STALE_SECONDS
from restauth_wsgi.tokens.issuing import issue_token
from restauth_wsgi.tokens.restrictions import TokenRestrictions
from restauth_wsgi.tokens.sqlite import FILE_CHECK_SECONDS
from restauth_wsgi.tokens.store import TokenRecord, open_store

from .helpers import RESTAUTH, cli_env, clocked_tokens, echo_app, eventually, run_restauth
from .services import postgres_database

#: A little more than the feed's bound: a poll, and how stale one may be.
BOUND = POLL_SECONDS + STALE_SECONDS + 0.2


class Rig:
    """One middleware on a store (a server process), counting its store reads."""

    def __init__(self, store_url: str, **changes: Any) -> None:
        self.settings = Settings(token_store=store_url, **changes)
        self.gatekeeper = Gatekeeper.from_settings(self.settings)
        self.client = Client(
            RestAuthMiddleware(echo_app, settings=self.settings, gatekeeper=self.gatekeeper)
        )
        self.api = next(
            a
            for a in self.gatekeeper.authentication.authenticators
            if isinstance(a, ApiTokenAuthenticator)
        )
        self.store = open_store(store_url, timeout=5)
        self.reads = 0
        read = self.api.store.get

        def counted(token_id: str) -> TokenRecord | None:
            self.reads += 1
            return read(token_id)

        self.api.store.get = counted  # type: ignore[method-assign]

    def issue(self, owner: str = "alice") -> tuple[str, TokenRecord]:
        return issue_token(self.store, self.settings.token_policy(), owner=owner)

    def status(self, token: str) -> int:
        return self.client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code

    def remembered(self, token: str) -> None:
        """Use ``token`` until this process answers it from memory."""

        def from_memory() -> bool:
            before = self.reads
            assert self.status(token) == 200
            return self.reads == before

        eventually(from_memory, "answered from memory", timeout=5)

    def refused_within_the_bound(self, token: str) -> None:
        time.sleep(BOUND)  # the feed's promise is a time: nothing to move but the clock
        assert self.status(token) == 401

    def close(self) -> None:
        self.gatekeeper.close()
        self.store.close()


@pytest.fixture
def rig(store_url_any: str) -> Iterator[Rig]:
    made = Rig(store_url_any)
    yield made
    made.close()


def sql(store_url: str, statement: str, *params: object) -> None:
    """Plain SQL on the store, as an administrator would run it (written for
    SQLite; the PostgreSQL store's tables have the restauth_ prefix)."""
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url.removeprefix("sqlite://")) as conn:
            conn.execute(statement, params)
        return
    if "restauth_" not in statement:
        statement = statement.replace("token_changes", "restauth_token_changes")
        statement = statement.replace(" tokens ", " restauth_tokens ")
    with _pg(store_url) as conn:
        conn.execute(statement.replace("?", "%s"), params or None)


def test_a_token_cache_ttl_does_not_outlive_a_revocation_with_the_feed(
    store_url_any: str,
) -> None:
    """A record reused for RESTAUTH_TOKEN_CACHE_TTL was remembered under the
    feed's next epoch, and worked for an hour after its revocation."""
    rig = Rig(store_url_any, token_cache_ttl=60)
    token, record = rig.issue()
    rig.remembered(token)
    rig.store.revoke(record.token_id, now=int(time.time()))
    rig.refused_within_the_bound(token)
    rig.close()


def test_a_counter_that_goes_back_and_forward_revives_nothing(rig: Rig, store_url_any: str) -> None:
    """A store restored from a backup reads a lower counter; as many changes
    later it reads the old value again. Nothing remembered before may stand."""
    token, record = rig.issue()
    _, other = rig.issue("bob")
    rig.remembered(token)
    # The restore and the changes after it, all between two polls.
    sql(store_url_any, "UPDATE token_changes SET generation = generation - 2 WHERE id = 1")
    rig.store.revoke(record.token_id, now=int(time.time()))  # +1
    rig.store.revoke(other.token_id, now=int(time.time()))  # +1: the counter reads as before
    rig.refused_within_the_bound(token)


def test_a_restored_backup_is_a_change(tmp_path: Path) -> None:
    """SQLite: a backup taken before the token was made, restored in place."""
    path = tmp_path / "tokens.db"
    rig = Rig(f"sqlite://{path}")
    rig.issue("bob")
    backup = tmp_path / "backup.db"
    with closing(sqlite3.connect(path)) as live, closing(sqlite3.connect(backup)) as copy:
        live.backup(copy)
    token, _ = rig.issue()
    rig.remembered(token)
    with closing(sqlite3.connect(path)) as live, closing(sqlite3.connect(backup)) as copy:
        copy.backup(live)  # the token did not exist then
    rig.refused_within_the_bound(token)
    rig.close()


def test_a_store_file_replaced_under_the_servers_is_read_again(tmp_path: Path) -> None:
    """A copy moved over the store file (its WAL files removed, as a "clean"
    restore does): every connection still open on the old file must go."""
    path = tmp_path / "tokens.db"
    rig = Rig(f"sqlite://{path}")
    token, record = rig.issue()
    rig.remembered(token)
    copy = tmp_path / "restored.db"
    with closing(sqlite3.connect(path)) as live, closing(sqlite3.connect(copy)) as restored:
        live.backup(restored)
        restored.execute("UPDATE tokens SET revoked_at = 1 WHERE id = ?", (record.token_id,))
        restored.commit()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.move(copy, path)
    rig.refused_within_the_bound(token)
    rig.close()


def _restore_copy(path: Path, revoke: str | None = None) -> None:
    """Move a copy over the store file, as a restore does (WAL files removed),
    with ``revoke``'s token revoked in the copy if named."""
    copy = path.with_name("restored.db")
    with closing(sqlite3.connect(path)) as live, closing(sqlite3.connect(copy)) as restored:
        live.backup(restored)
        if revoke is not None:
            restored.execute("UPDATE tokens SET revoked_at = 1 WHERE id = ?", (revoke,))
            restored.commit()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.move(copy, path)


def test_a_revocation_through_the_api_after_a_restore_lands_in_the_restored_file(
    tmp_path: Path,
) -> None:
    """The self-service API writes through a store object of its own: after a
    restore, its revocation must reach the file the servers read, not the one
    the restore replaced (it answered 204 and the token went on working)."""
    passwords = tmp_path / "htpasswd"
    passwords.write_text(f"alice:{bcrypt.hashpw(b'secret', bcrypt.gensalt(rounds=4)).decode()}\n")
    path = tmp_path / "tokens.db"
    rig = Rig(f"sqlite://{path}", self_service=True, password_file=str(passwords))
    alice = {"Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}
    made = rig.client.post("/rest/pat/latest/tokens", headers=alice, json={"name": "ci"})
    assert made.status_code == 201
    token, token_id = made.json["rawToken"], made.json["id"]  # type: ignore[index]
    rig.remembered(token)
    _restore_copy(path)
    revoked = rig.client.delete(f"/rest/pat/latest/tokens/{token_id}", headers=alice)
    assert revoked.status_code == 204
    rig.refused_within_the_bound(token)
    listed = run_restauth(f"sqlite://{path}", "token", "list", "--json")
    assert '"status": "revoked"' in listed.stdout, listed.stdout
    rig.close()


def test_a_thread_that_opens_the_restored_file_first_hides_it_from_no_other() -> None:
    """A restore; a new thread opens the store before the feed's poll (so it
    opens the new file); the threads that were open on the old one must still
    move to the new one (they went on reading the old file for ever)."""
    with TemporaryDirectory() as work:
        path = Path(work) / "tokens.db"
        store = open_store(f"sqlite://{path}", timeout=5)
        _, record = issue_token(store, Settings().token_policy(), owner="alice")
        old_thread, new_thread = ThreadPoolExecutor(1), ThreadPoolExecutor(1)
        found = old_thread.submit(store.get, record.token_id).result()
        assert found is not None
        assert found.revoked_at is None
        _restore_copy(path, revoke=record.token_id)
        on_new = new_thread.submit(store.get, record.token_id).result()
        assert on_new is not None
        assert on_new.revoked_at == 1
        store.generation()  # the feed's poll, after the new thread opened the new file
        time.sleep(FILE_CHECK_SECONDS)
        on_old = old_thread.submit(store.get, record.token_id).result()
        assert on_old is not None
        assert on_old.revoked_at == 1, "the old thread still reads the replaced file"
        for pool in (old_thread, new_thread):
            pool.submit(store.close).result()
            pool.shutdown()


def test_a_deleted_store_file_is_not_read_through_open_connections(tmp_path: Path) -> None:
    """The file removed under running servers: its tokens must not go on
    working through the connections still open on it."""
    path = tmp_path / "tokens.db"
    rig = Rig(f"sqlite://{path}")
    token, _ = rig.issue()
    rig.remembered(token)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    time.sleep(BOUND)
    assert rig.status(token) in (401, 503)
    rig.close()


DAMAGE = {
    "counter-row-deleted": (
        "DELETE FROM token_changes WHERE id = 1",
        "DELETE FROM restauth_token_changes WHERE id = 1",
    ),
    "trigger-dropped": (
        "DROP TRIGGER tokens_changed_on_update",
        "DROP TRIGGER restauth_tokens_changed_on_update ON restauth_tokens",
    ),
    "trigger-disabled": (
        None,
        "ALTER TABLE restauth_tokens DISABLE TRIGGER restauth_tokens_changed_on_update",
    ),
}


@pytest.mark.parametrize(
    ("backend", "damage"),
    [
        (backend, damage)
        for damage, statements in sorted(DAMAGE.items())
        for backend, statement in zip(("sqlite", "postgres"), statements, strict=True)
        if statement is not None  # SQLite has no way to disable a trigger
    ],
)
def test_a_store_that_cannot_announce_changes_is_read_every_time(
    tmp_path: Path, backend: str, damage: str
) -> None:
    """Without its counter row or a working trigger, a store cannot say that
    it changed: the feed must stop vouching, and every request read the store."""
    with ExitStack() as stack:
        if backend == "sqlite":
            store_url, statement = f"sqlite://{tmp_path}/tokens.db", DAMAGE[damage][0]
        else:
            store_url, statement = stack.enter_context(postgres_database()), DAMAGE[damage][1]
        assert statement is not None
        rig = Rig(store_url)
        stack.callback(rig.close)
        token, record = rig.issue()
        rig.remembered(token)
        sql(store_url, statement)
        time.sleep(BOUND)
        # A revocation the store no longer announces.
        sql(store_url, "UPDATE tokens SET revoked_at = 1 WHERE id = ?", record.token_id)
        assert rig.status(token) == 401, "read from the store: the feed vouches for nothing"


def _pg(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def test_sqlite_replace_into_is_a_change(tmp_path: Path) -> None:
    """REPLACE INTO deletes the old row without firing a delete trigger."""
    path = tmp_path / "tokens.db"
    rig = Rig(f"sqlite://{path}")
    token, record = rig.issue()
    rig.remembered(token)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "REPLACE INTO tokens (id, secret_hash, owner, name, created_at, revoked_at)"
            " VALUES (?, ?, ?, ?, ?, 1)",
            (record.token_id, record.secret_hash, record.owner, record.name, record.created_at),
        )
    rig.refused_within_the_bound(token)
    rig.close()


def test_a_counter_written_past_its_range_keeps_moving(tmp_path: Path) -> None:
    """SQLite turns an integer past 2**63 into a float that +1 no longer moves."""
    path = tmp_path / "tokens.db"
    rig = Rig(f"sqlite://{path}")
    token, record = rig.issue()
    _, other = rig.issue("bob")
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE token_changes SET generation = 9223372036854775807")
        conn.commit()
    rig.store.revoke(other.token_id, now=int(time.time()))  # past the range
    rig.remembered(token)
    rig.store.revoke(record.token_id, now=int(time.time()))
    rig.refused_within_the_bound(token)
    rig.close()


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("TRUNCATE restauth_tokens", id="truncate"),
        pytest.param(
            "SET session_replication_role = replica; UPDATE restauth_tokens SET revoked_at = 1",
            id="replica-session",
        ),
    ],
)
def test_postgres_writers_that_skip_ordinary_triggers_are_changes(statement: str) -> None:
    """TRUNCATE fires no row trigger; a session in replica mode (logical
    replication, pg_restore --disable-triggers) fires only ALWAYS triggers."""
    with postgres_database() as url:
        rig = Rig(url)
        token, _ = rig.issue()
        rig.remembered(token)
        with _pg(url) as conn:
            for part in statement.split(";"):
                conn.execute(part)
        rig.refused_within_the_bound(token)
        rig.close()


def test_postgres_counter_of_the_table_written_whatever_the_search_path() -> None:
    """Two stores in schemas a and b of one database: a revocation in a from a
    session whose search_path is b must move a's counter."""
    with postgres_database() as base:
        with _pg(base) as conn:
            conn.execute("CREATE SCHEMA a")
            conn.execute("CREATE SCHEMA b")
        url_a = base + "?options=" + urllib.parse.quote("-csearch_path=a")
        url_b = base + "?options=" + urllib.parse.quote("-csearch_path=b")
        rig = Rig(url_a)
        other = Rig(url_b)
        other.issue("bob")  # b's tables and triggers exist too
        token, record = rig.issue()
        rig.remembered(token)
        with _pg(url_b) as conn:
            conn.execute(
                "UPDATE a.restauth_tokens SET revoked_at = 1 WHERE id = %s", (record.token_id,)
            )
        rig.refused_within_the_bound(token)
        rig.close()
        other.close()


def test_a_row_lock_held_elsewhere_does_not_stall_the_feed() -> None:
    """The feed's thread writes last-used times between polls; a row held by
    someone's open transaction must not keep it from polling."""
    import psycopg

    with postgres_database() as url:
        rig = Rig(url)
        started, _ = rig.issue("bob")
        rig.remembered(started)  # the feed runs
        token, record = rig.issue()
        with psycopg.connect(url) as conn:
            conn.execute(
                "SELECT 1 FROM restauth_tokens WHERE id = %s FOR UPDATE", (record.token_id,)
            )
            assert rig.status(token) == 200  # its last-used write, for the row held
            time.sleep(BOUND)
            feed = rig.api.feed
            assert feed is not None
            assert feed.current() is not None, "the feed still polls"
            conn.rollback()
        rig.close()


def test_the_feed_thread_outlives_a_failing_write(rig: Rig) -> None:
    token, _ = rig.issue()

    def broken(token_id: str, *, now: int, min_interval: int) -> None:
        raise RuntimeError("a write that fails in an unexpected way")

    rig.api.store.touch = broken  # type: ignore[method-assign]
    rig.remembered(token)
    time.sleep(BOUND)
    feed = rig.api.feed
    assert feed is not None
    assert feed.current() is not None, "still polling"


def test_a_fork_while_the_feed_is_busy_does_not_hang_the_child(rig: Rig) -> None:
    """A fork from a serving process, taken while the feed's thread holds its
    lock or is inside the store, must leave the child able to start its own."""
    token, _ = rig.issue()
    rig.remembered(token)
    feed = rig.api.feed
    assert feed is not None
    for _ in range(20):  # forks at moments of the poll loop's choosing
        with feed._lock:
            child = os.fork()
            if child == 0:  # pragma: no cover - reports through its exit status
                signal.alarm(10)
                code = 0 if rig.status(token) == 200 else 1
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child answered"
        time.sleep(POLL_SECONDS / 7)


def test_remembered_header_sets_and_paths_are_bounded_in_size() -> None:
    """A client chooses header names and paths: the hot path's memory of them
    must hold small ones only, and still strip what must be stripped."""
    spoofable = SpoofableHeaders()
    for n in range(300):
        environ: dict[str, Any] = {f"HTTP_A{n}_{i}_{'X' * 8000}": "v" for i in range(20)}
        environ["HTTP_X_REMOTE_USER"] = "root"
        spoofable.strip(environ)
        assert "HTTP_X_REMOTE_USER" not in environ
    assert not spoofable._found, "huge key sets are not remembered"
    small: dict[str, Any] = {"HTTP_HOST": "h", "HTTP_X_REMOTE_USER": "root"}
    spoofable.strip(small)
    assert "HTTP_X_REMOTE_USER" not in small
    assert len(spoofable._found) == 1

    before = paths.remembered_path.cache_info().currsize
    for n in range(100):
        request_path(f"/x{n}/" + "a" * 4000)
    assert paths.remembered_path.cache_info().currsize == before, "long paths are not remembered"


def test_an_answer_is_never_handed_to_another_header(rig: Rig) -> None:
    """The hot path hands what it found for a header (its hash, the answer
    remembered under it) on to the full check, as a value. Two requests
    interleaved on threads, a revoked token's and a valid one's, must each
    get their own answer: a valid token's identity remembered under the
    revoked one's hash would be a bypass."""
    authentication = rig.gatekeeper.authentication
    valid, _ = rig.issue("alice")
    revoked, record = rig.issue("mallory")
    rig.store.revoke(record.token_id, now=int(time.time()))
    rig.remembered(valid)  # the feed runs and vouches from here on
    rig.issue("bob")
    time.sleep(BOUND)  # issuing is a change: the valid token is read again below

    good, bad = f"Bearer {valid}", f"Bearer {revoked}"
    found_good, found_bad = authentication.recall(good), authentication.recall(bad)
    assert isinstance(found_good, Recalled), "a change since: the store decides"
    assert isinstance(found_bad, Recalled)
    assert found_good.key != found_bad.key
    assert authentication.authenticate(good, recalled=found_good).username == "alice"
    with pytest.raises(InvalidToken):
        authentication.authenticate(bad, recalled=found_bad)
    eventually(
        lambda: isinstance(authentication.recall(good), Identity), "alice's answer remembered"
    )
    again = authentication.recall(bad)
    assert isinstance(again, Recalled), "mallory's header has no answer of alice's"
    with pytest.raises(InvalidToken):
        authentication.authenticate(bad, recalled=again)
    assert rig.status(revoked) == 401
    assert rig.status(valid) == 200


def test_a_remembered_answer_ends_with_its_token_however_late_it_was_kept(
    tmp_path: Path,
) -> None:
    """The map entry of an API token's answer is capped at the token's expiry
    from one clock read and stored with another: a process paused between the
    two (a GIL wait, SIGSTOP, a suspended VM) kept it past the expiry, and
    the feed, seeing no change in the store, vouched for it. The expiry is
    checked on every recall."""
    now, settings, gatekeeper, client, store = clocked_tokens(tmp_path)
    token, record = issue_token(
        store, settings.token_policy(), owner="alice", lifetime=3600, now=int(now[0])
    )
    assert record.expires_at is not None
    recent = gatekeeper.authentication._recent
    assert recent is not None
    put = recent.put
    kept: list[bool] = []

    def paused_put(key: bytes, value: object, ttl: float) -> None:
        if isinstance(value, StoreAnswer) and not kept:
            now[0] += 100  # paused for 100 s between the two clock reads
            kept.append(True)
        put(key, value, ttl)

    recent.put = paused_put  # type: ignore[method-assign]
    eventually(
        lambda: (
            client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            and bool(kept)
        ),
        "the answer remembered under the feed",
    )
    now[0] = record.expires_at + 10
    status = client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code
    gatekeeper.close()
    store.close()
    assert status == 401, "an expired token is never answered from memory"


def test_a_jwt_with_padding_inside_is_not_a_b64token(tmp_path: Path) -> None:
    """RFC 6750's b64token allows '=' only at the end: a 400, as before the
    JWT-shaped fast path."""
    client = Client(RestAuthMiddleware(echo_app, Settings(token_store=f"sqlite://{tmp_path}/t.db")))
    padded = "eyJhbGciOiAiUlMyNTYifQ==.e30=.c2lnbg=="
    assert client.get("/", headers={"Authorization": f"Bearer {padded}"}).status_code == 400


def test_restauth_config_says_the_cache_ttl_does_nothing_with_the_feed(tmp_path: Path) -> None:
    env = cli_env(f"sqlite://{tmp_path}/t.db", RESTAUTH_TOKEN_CACHE_TTL="5")
    shown = subprocess.run(
        [RESTAUTH, "config"], env=env, capture_output=True, text=True, check=False
    )
    assert "RESTAUTH_TOKEN_CACHE_TTL has no effect while RESTAUTH_TOKEN_FEED is on" in shown.stdout
    env["RESTAUTH_TOKEN_FEED"] = "false"
    shown = subprocess.run(
        [RESTAUTH, "config"], env=env, capture_output=True, text=True, check=False
    )
    assert "RESTAUTH_TOKEN_CACHE_TTL has no effect" not in shown.stdout


# -- the hot path under attack: answers recalled from memory face every check --------

ATTACKS = [
    pytest.param("GET", "/api/reports/../admin/users", {}, id="dot-dot"),
    pytest.param("GET", "/api/reports/%2e%2e/admin/users", {}, id="encoded-dot-dot"),
    pytest.param("GET", "//api/admin/users", {}, id="double-slash"),
    pytest.param("GET", "/api/./admin/users", {}, id="dot"),
    pytest.param("GET", "/api/donn%C3%A9es", {}, id="non-ascii"),
    pytest.param("delete", "/api/reports/1", {}, id="lower-case-method"),
    pytest.param("POST", "/api/reports/1", {"X-HTTP-Method-Override": "DELETE"}, id="override"),
]


def _remembered_reports_token(rig: Rig) -> dict[str, str]:
    """The Authorization header of a token allowed only GET /api/reports/*,
    once its answer is remembered (a request of it reads no store)."""
    token, _ = issue_token(
        rig.store,
        rig.settings.token_policy(),
        owner="alice",
        restrictions=TokenRestrictions(allow=(("GET", "/api/reports/*"),)),
    )
    bearer = {"Authorization": f"Bearer {token}"}

    def from_memory() -> bool:
        before = rig.reads
        assert rig.client.get("/api/reports/1", headers=bearer).status_code == 200
        return rig.reads == before

    eventually(from_memory, "answered from memory", timeout=5)
    return bearer


@pytest.mark.parametrize(("method", "path", "headers"), ATTACKS)
def test_a_restricted_token_answered_from_memory_is_still_restricted(
    rig: Rig, method: str, path: str, headers: dict[str, str]
) -> None:
    """A token allowed only GET (and so HEAD) of /api/reports/* is remembered,
    then sent every other spelling of a path or method: each is refused by
    the remembered answer's restrictions, with no store read to help."""
    bearer = _remembered_reports_token(rig)
    before = rig.reads
    assert rig.client.head("/api/reports/1", headers=bearer).status_code == 200
    answer = rig.client.open(path, method=method, headers={**bearer, **headers})
    assert answer.status_code == 403, (method, path, answer.status_code)
    assert rig.reads == before, "decided from memory"


def test_an_answer_remembered_by_one_middleware_is_not_another_ones(store_url_any: str) -> None:
    """Two middlewares in one process on one store, one with a rule that
    keeps alice out: what the first remembers never answers for the second."""
    open_rig = Rig(store_url_any)
    closed_rig = None
    try:
        token, _ = open_rig.issue("alice")
        open_rig.remembered(token)
        with TemporaryDirectory() as where:
            rules = Path(where) / "rules.toml"
            rules.write_text('[[rule]]\npaths = ["/*"]\nusers = ["bob"]\n')
            closed_rig = Rig(store_url_any, rules_file=str(rules))
            assert closed_rig.status(token) == 403
            assert open_rig.status(token) == 200
            rig = closed_rig

            def refused_from_memory() -> bool:
                before = rig.reads
                assert rig.status(token) == 403, "under its own rules"
                return rig.reads == before

            eventually(refused_from_memory, "refused from its own memory", timeout=5)
    finally:
        open_rig.close()
        if closed_rig is not None:
            closed_rig.close()


# -- after a change: a remembered answer checked again by its token's record alone ---


def _a_change_elsewhere(rig: Rig) -> None:
    """A change to another token (bob's creation), and the poll that sees it."""
    rig.issue("bob")
    time.sleep(BOUND)


def test_after_a_change_elsewhere_a_remembered_token_costs_one_read(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store changed, but not this token: its answer is checked again by
    one read of its record, without parsing the header it was proved by."""
    token, _ = rig.issue()
    rig.remembered(token)
    _a_change_elsewhere(rig)
    parsed: list[str] = []
    parse = token_format.parse
    monkeypatch.setattr(token_format, "parse", lambda raw: parsed.append(raw) or parse(raw))
    before = rig.reads
    assert rig.status(token) == 200
    assert rig.reads == before + 1, "its record, read once"
    assert parsed == [], "the header is not parsed again"
    before = rig.reads
    assert rig.status(token) == 200
    assert rig.reads == before, "remembered again, under the new epoch"


def _replace_secret(store_url: str, record: TokenRecord) -> None:
    sql(
        store_url,
        "UPDATE tokens SET secret_hash = ? WHERE id = ?",
        token_format.hash_token(token_format.generate()[0]),
        record.token_id,
    )


# Each change an administrator can make to the token itself, with plain SQL
# (so nothing but the record says what changed), and what the next request
# must get: what the whole check of a token never seen would answer.
CHANGES_TO_THE_TOKEN = [
    pytest.param(
        lambda url, record: sql(
            url, "UPDATE tokens SET revoked_at = ? WHERE id = ?", int(time.time()), record.token_id
        ),
        401,
        None,
        id="revoked",
    ),
    pytest.param(
        lambda url, record: sql(
            url,
            "UPDATE tokens SET expires_at = ? WHERE id = ?",
            int(time.time()) - 1,
            record.token_id,
        ),
        401,
        None,
        id="expired",
    ),
    pytest.param(
        lambda url, record: sql(url, "DELETE FROM tokens WHERE id = ?", record.token_id),
        401,
        None,
        id="deleted",
    ),
    pytest.param(_replace_secret, 401, None, id="secret-replaced"),
    pytest.param(
        lambda url, record: sql(
            url, "UPDATE tokens SET owner = 'mallory' WHERE id = ?", record.token_id
        ),
        200,
        ("remote_user", "mallory"),
        id="owner-changed",
    ),
    pytest.param(
        lambda url, record: sql(
            url,
            "UPDATE tokens SET expires_at = expires_at + 3600 WHERE id = ?",
            record.token_id,
        ),
        200,
        ("expires_at", "later"),
        id="lifetime-changed",
    ),
    pytest.param(
        lambda url, record: sql(
            url,
            "UPDATE tokens SET restrictions = ? WHERE id = ?",
            TokenRestrictions(read_only=True).to_json(),
            record.token_id,
        ),
        403,
        None,
        id="made-read-only",
    ),
    pytest.param(
        lambda url, record: sql(
            url,
            "UPDATE tokens SET restrictions = ? WHERE id = ?",
            TokenRestrictions(networks=("192.0.2.0/24",)).to_json(),
            record.token_id,
        ),
        403,
        None,
        id="network-restricted",
    ),
]


@pytest.mark.parametrize(("change", "status", "shown"), CHANGES_TO_THE_TOKEN)
def test_a_remembered_token_changed_in_the_store_is_checked_whole(
    rig: Rig,
    store_url_any: str,
    change: Callable[[str, TokenRecord], None],
    status: int,
    shown: tuple[str, str] | None,
) -> None:
    """A record that differs from the one the remembered answer was made from
    in anything but its last-used time is never answered by that answer."""
    token, record = rig.issue()
    rig.remembered(token)
    assert rig.client.post("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    change(store_url_any, record)
    time.sleep(BOUND)
    for _ in range(2):  # the first request after the change, and one from memory
        answer = rig.client.post("/", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == status, answer.get_data(as_text=True)
    if shown == ("remote_user", "mallory"):
        assert answer.json["remote_user"] == "mallory"
    if shown == ("expires_at", "later"):
        assert answer.json["identity"]["expires_at"] == (record.expires_at or 0) + 3600


def test_a_last_used_time_alone_is_no_change(rig: Rig, store_url_any: str) -> None:
    """Last-used times are written by every process: one written since the
    answer was made does not send the token to the whole check."""
    token, record = rig.issue()
    rig.remembered(token)
    sql(store_url_any, "UPDATE tokens SET last_used_at = ? WHERE id = ?", 12345, record.token_id)
    _a_change_elsewhere(rig)
    before = rig.reads
    assert rig.status(token) == 200
    assert rig.reads == before + 1, "its record, read once; the last-used time ignored"


def test_a_token_made_with_a_token_is_checked_whole_after_a_change(rig: Rig) -> None:
    """Its answer stands only while its maker does: after a change both are
    read, and the maker's revocation ends it."""
    _, maker_record = rig.issue()
    made, _ = issue_token(
        rig.store,
        rig.settings.token_policy(),
        owner="alice",
        restrictions=TokenRestrictions(made_by=maker_record.token_id),
    )
    rig.remembered(made)
    _a_change_elsewhere(rig)
    before = rig.reads
    assert rig.status(made) == 200
    assert rig.reads == before + 2, "itself and its maker"
    rig.store.revoke(maker_record.token_id, now=int(time.time()))
    rig.refused_within_the_bound(made)


def test_basic_user_token_after_a_change_keeps_its_user_check(rig: Rig) -> None:
    """Basic alice:token is remembered under its own header; after a change
    it is checked again by its record, and bob:token (another header) is
    checked whole and refused."""
    token, _ = rig.issue("alice")

    def basic(user: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()}

    def from_memory() -> bool:
        before = rig.reads
        assert rig.client.get("/", headers=basic("alice")).status_code == 200
        return rig.reads == before

    eventually(from_memory, "answered from memory", timeout=5)
    _a_change_elsewhere(rig)
    answer = rig.client.get("/", headers=basic("alice"))
    assert answer.status_code == 200
    assert answer.json["remote_user"] == "alice"
    assert answer.json["auth_type"] == "Basic"
    assert rig.client.get("/", headers=basic("bob")).status_code == 401


def test_a_store_down_after_a_change_is_503_not_a_remembered_200(rig: Rig) -> None:
    """The record cannot be read again: the store's outage is the answer,
    never the answer remembered before the change."""
    token, _ = rig.issue()
    rig.remembered(token)
    _a_change_elsewhere(rig)

    def down(token_id: str) -> TokenRecord | None:
        raise TokenStoreUnavailable("the token store is down (test)")

    rig.api.store.get = down  # type: ignore[method-assign]
    assert rig.status(token) == 503


def test_a_refused_token_costs_one_read_after_a_change(rig: Rig) -> None:
    """The record read to check a remembered answer again is the one the whole
    check decides by; a refusal forgets the answer, so later requests of the
    revoked token read its record once each, not twice."""
    token, record = rig.issue()
    rig.remembered(token)
    rig.store.revoke(record.token_id, now=int(time.time()))
    time.sleep(BOUND)
    for _ in range(3):
        before = rig.reads
        assert rig.status(token) == 401
        assert rig.reads == before + 1
        found = rig.gatekeeper.authentication.recall(f"Bearer {token}")
        assert isinstance(found, Recalled)
        assert found.remembered is None, "the refused answer is forgotten"


def test_a_store_down_after_a_change_names_the_basic_user(rig: Rig) -> None:
    """A 503 from the reread carries the scheme and the Basic user, as one
    from the whole check does (the audit line and the lockout read them)."""
    token, _ = rig.issue("alice")
    header = "Basic " + base64.b64encode(f"alice:{token}".encode()).decode()
    authentication = rig.gatekeeper.authentication

    def from_memory() -> bool:
        before = rig.reads
        assert rig.client.get("/", headers={"Authorization": header}).status_code == 200
        return rig.reads == before

    eventually(from_memory, "answered from memory", timeout=5)
    _a_change_elsewhere(rig)

    def down(token_id: str) -> TokenRecord | None:
        raise TokenStoreUnavailable("the token store is down (test)")

    rig.api.store.get = down  # type: ignore[method-assign]
    with pytest.raises(TokenStoreUnavailable) as refused:
        authentication.authenticate(header)
    assert (refused.value.scheme, refused.value.username) == ("Basic", "alice")


def _sqlite_trigger(name: str) -> str:
    """The store's current definition of one of its SQLite triggers."""
    from restauth_wsgi.tokens.sqlite import MIGRATIONS

    return [
        statement
        for statements in MIGRATIONS
        for statement in statements
        if statement.startswith(f"CREATE TRIGGER {name} ")
    ][-1]


def _postgres_function() -> str:
    """The store's current definition of its PostgreSQL change function."""
    from restauth_wsgi.tokens.postgres import MIGRATIONS

    latest = [
        statement
        for statements in MIGRATIONS
        for statement in statements
        if "FUNCTION restauth_tokens_changed() RETURNS" in statement
    ][-1]
    return latest.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


# A damage that keeps the store from announcing changes, and its repair,
# which leaves the counter reading as it did before the damage.
REPAIRED = {
    "sqlite-trigger-dropped": (
        "DROP TRIGGER tokens_changed_on_update",
        _sqlite_trigger("tokens_changed_on_update"),
    ),
    "postgres-trigger-disabled": (
        "ALTER TABLE restauth_tokens DISABLE TRIGGER restauth_tokens_changed_on_update",
        "ALTER TABLE restauth_tokens ENABLE ALWAYS TRIGGER restauth_tokens_changed_on_update",
    ),
    "postgres-function-emptied": (
        "CREATE OR REPLACE FUNCTION restauth_tokens_changed() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
        _postgres_function(),
    ),
}


@pytest.mark.parametrize("pace", ["a-poll-apart", "back-to-back", "one-transaction"])
@pytest.mark.parametrize("case", sorted(REPAIRED))
def test_a_change_the_store_could_not_announce_is_seen_after_the_repair(
    tmp_path: Path, case: str, pace: str
) -> None:
    """A trigger off (or its function emptied), a token revoked by plain SQL
    (the counter does not move), the trigger back: the counter reads as
    before the damage. Whether
    a poll failed in between (a poll apart) or no poll could see the damage
    (statements back to back, or all in one transaction), the store's mark
    moved with its triggers, so nothing remembered before stands."""
    damage, repair = REPAIRED[case]
    with ExitStack() as stack:
        if case.startswith("sqlite"):
            store_url = f"sqlite://{tmp_path}/tokens.db"
        else:
            store_url = stack.enter_context(postgres_database())
        rig = Rig(store_url)
        stack.callback(rig.close)
        token, record = rig.issue()
        rig.remembered(token)
        revoke = "UPDATE tokens SET revoked_at = 1 WHERE id = ?"
        if pace == "one-transaction":
            _in_one_transaction(store_url, [damage, revoke, repair], record.token_id)
        else:
            sql(store_url, damage)
            if pace == "a-poll-apart":
                time.sleep(BOUND)  # a poll fails
            sql(store_url, revoke, record.token_id)
            sql(store_url, repair)
        time.sleep(BOUND)  # a poll reads the counter as before
        assert rig.status(token) == 401


def _in_one_transaction(store_url: str, statements: list[str], token_id: str) -> None:
    """``statements`` in one transaction; the one with a ``?`` gets ``token_id``."""
    if store_url.startswith("sqlite"):
        with closing(
            sqlite3.connect(store_url.removeprefix("sqlite://"), isolation_level=None)
        ) as conn:
            conn.execute("BEGIN IMMEDIATE")
            for statement in statements:
                conn.execute(statement, (token_id,) if "?" in statement else ())
            conn.execute("COMMIT")
        return
    with _pg(store_url) as conn, conn.transaction():
        for statement in statements:
            statement = statement.replace(" tokens ", " restauth_tokens ")
            conn.execute(statement.replace("?", "%s"), (token_id,) if "?" in statement else None)


def _set(assignment: str, named: str, case: str) -> Any:
    """A row of MALFORMED_ROWS: the token's row updated by ``assignment``."""
    statement = f"UPDATE tokens SET {assignment} WHERE id = ?"  # noqa: S608 (the table's own constants)
    return pytest.param(statement, named, id=case)


# What plain SQL can leave in a row that no release writes.
MALFORMED_ROWS = [
    _set("expires_at = 'abc'", "expires_at is str", "text-expiry"),
    _set("revoked_at = 'x'", "revoked_at is str", "text-revoked"),
    _set("expires_at = expires_at + 0.5", "expires_at is float", "real-expiry"),
    _set("owner = X'616c696365'", "owner is bytes", "blob-owner"),
    _set("restrictions = 'null'", "restrictions", "null-json"),
    _set("restrictions = '[]'", "restrictions", "array-json"),
    _set("restrictions = '{'", "restrictions", "not-json"),
    _set("""restrictions = '{"networks": ["x"]}'""", "restrictions", "bad-network"),
    _set("""restrictions = '{"allow": 5}'""", "restrictions", "allow-not-a-list"),
    _set("restrictions = '" + "[" * 5000 + "]" * 5000 + "'", "restrictions", "nested-too-deep"),
    _set(
        """restrictions = '{"allow": [["GE\\nT", "/x"]]}'""", "restrictions", "newline-in-a-method"
    ),
    # JSON's escape for a lone surrogate, which no store can be asked for.
    _set("""restrictions = '{"made_by": "\\ud800"}'""", "restrictions", "made-by-surrogate"),
    _set("""restrictions = '{"made_by": "not an id"}'""", "restrictions", "made-by-not-an-id"),
    _set(
        """restrictions = '{"allow": [["GET", "/x\\u2028y"]]}'""", "restrictions", "glob-linebreak"
    ),
]


@pytest.mark.parametrize(("statement", "named"), MALFORMED_ROWS)
def test_a_malformed_row_is_503_naming_it_never_a_500(
    tmp_path: Path, statement: str, named: str
) -> None:
    """SQLite's columns take any type: the token is judged neither way (503,
    with the row and the column in the log), and ``restauth token list``
    says which row to correct."""
    store_url = f"sqlite://{tmp_path}/tokens.db"
    rig = Rig(store_url)
    try:
        token, record = rig.issue()
        rig.remembered(token)
        sql(store_url, statement, record.token_id)
        time.sleep(BOUND)
        for _ in range(2):
            answer = rig.client.get("/", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 503
        with pytest.raises(TokenStoreUnavailable) as unavailable:
            rig.store.get(record.token_id)
        reason = str(unavailable.value.reason)
        assert record.token_id in reason
        assert named in reason
        assert "\n" not in reason, "a stored row's text never starts a log line"
        listed = run_restauth(store_url, "token", "list")
        assert listed.returncode != 0
        assert record.token_id in listed.stderr, listed.stderr
        assert "Traceback" not in listed.stderr
    finally:
        rig.close()


@pytest.mark.parametrize(
    "assignment",
    ["generation = 'abc'", "generation = 9e999", "nonce = 'text'", "nonce = 100000000"],
)
def test_a_counter_row_of_junk_is_an_unreadable_store(tmp_path: Path, assignment: str) -> None:
    """SQLite's counter row written by hand with values of the wrong type: a
    poll fails as for a missing row (the feed vouches for nothing), never
    with another error, and a whole number as the nonce allocates nothing."""
    store_url = f"sqlite://{tmp_path}/tokens.db"
    store = open_store(store_url, timeout=5)
    try:
        store.get("000000000000")  # the file made and migrated
        store.generation()
        sql(store_url, f"UPDATE token_changes SET {assignment} WHERE id = 1")  # noqa: S608
        with pytest.raises(TokenStoreUnavailable, match="change counter"):
            store.generation()
    finally:
        store.close()


@pytest.mark.parametrize(("method", "path", "headers"), ATTACKS)
def test_a_restricted_token_checked_again_after_a_change_is_still_restricted(
    rig: Rig, method: str, path: str, headers: dict[str, str]
) -> None:
    """The first request after a change is answered by the record read again,
    not the whole check: every other spelling of a path or method a token
    allowed only GET /api/reports/* sends then is still refused."""
    bearer = _remembered_reports_token(rig)
    _a_change_elsewhere(rig)
    before = rig.reads
    answer = rig.client.open(path, method=method, headers={**bearer, **headers})
    assert answer.status_code == 403, (method, path, answer.status_code)
    assert rig.reads == before + 1, "checked again by its record alone"


def test_identity_headers_a_proxy_sets_do_not_survive_a_reread(rig: Rig) -> None:
    """After a change, the answer checked again by its record is the token
    owner's: identity headers a client or proxy sends are stripped, and
    REMOTE_USER is alice, not what the headers claim."""
    token, _ = rig.issue("alice")
    rig.remembered(token)
    _a_change_elsewhere(rig)
    before = rig.reads
    answer = rig.client.get(
        "/",
        headers={
            "Authorization": f"Bearer {token}",
            "X-Remote-User": "root",
            "X-Forwarded-User": "root",
            "X-Auth-Request-User": "root",
        },
    )
    assert rig.reads == before + 1, "checked again by its record alone"
    assert answer.status_code == 200
    assert answer.json["remote_user"] == "alice"
    assert answer.json["spoofable"] == {}
