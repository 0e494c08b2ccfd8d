"""One token-store suite, run against SQLite and PostgreSQL alike; the CLI
against PostgreSQL; and tokens made on SQLite still working after
``restauth store migrate`` to PostgreSQL."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.errors import TokenLimitExceeded, TokenStoreUnavailable
from restauth_wsgi.tokens.issuing import TokenPolicy, issue_token
from restauth_wsgi.tokens.store import TokenStore, TokenStoreMissing, open_store

from .helpers import RESTAUTH, cli_env, echo_app, eventually
from .services import TcpProxy, postgres_database


@pytest.fixture
def any_store(store_url_any: str) -> Iterator[TokenStore]:
    store = open_store(store_url_any, timeout=5)
    yield store
    store.close()


POLICY = TokenPolicy()


def test_a_store_opened_without_create_is_never_made(store_url_any: str) -> None:
    reader = open_store(store_url_any, timeout=5, create=False)
    with pytest.raises(TokenStoreMissing, match="there is no token store at"):
        reader.list()
    reader.close()
    # Nothing was made: a store that may create finds no tokens, and the
    # reader still finds no store until one is made.
    writer = open_store(store_url_any, timeout=5)
    issue_token(writer, POLICY, owner="alice")
    assert [r.owner for r in open_store(store_url_any, timeout=5, create=False).list()] == ["alice"]
    writer.close()


def test_lifecycle(any_store: TokenStore) -> None:
    now = int(time.time())
    _raw, record = issue_token(any_store, POLICY, owner="alice", name="ci", now=now)
    assert any_store.get(record.token_id) == record
    assert any_store.get("unknown00000") is None
    assert [r.token_id for r in any_store.list("alice")] == [record.token_id]
    assert any_store.list("bob") == []
    any_store.touch(record.token_id, now=now + 100, min_interval=60)
    any_store.touch(record.token_id, now=now + 130, min_interval=60)  # within the minute
    touched = any_store.get(record.token_id)
    assert touched is not None
    assert touched.last_used_at == now + 100
    revoked = any_store.revoke(record.token_id, now=now + 200)
    assert revoked is not None
    assert revoked.revoked_at == now + 200
    again = any_store.revoke(record.token_id, now=now + 300)
    assert again is not None
    assert again.revoked_at == now + 200, "the first revocation stands"
    assert any_store.revoke("unknown00000", now=now) is None
    assert any_store.prune(before=now + 201) == 1
    assert any_store.list() == []


def test_a_prune_that_deletes_nothing_is_no_change(any_store: TokenStore) -> None:
    """A scheduled prune with nothing to delete leaves the change mark alone
    (PostgreSQL's statement-level delete trigger fired on an empty delete,
    and every process then read each token it remembered again); one that
    deletes moves it, so no process keeps answering for a deleted token."""
    now = int(time.time())
    _, record = issue_token(any_store, POLICY, owner="alice", now=now)
    any_store.revoke(record.token_id, now=now)
    before = any_store.generation()
    assert any_store.prune(before=now) == 0, "revoked at now, not before it"
    assert any_store.generation() == before
    assert any_store.prune(before=now + 1) == 1
    assert any_store.generation() != before
    assert any_store.get(record.token_id) is None


def test_limit_per_user_holds_under_concurrency(any_store: TokenStore) -> None:
    policy = TokenPolicy(max_per_user=5)
    made: list[str] = []
    refused: list[str] = []
    barrier = threading.Barrier(12)

    def create() -> None:
        barrier.wait()
        try:
            made.append(issue_token(any_store, policy, owner="shared")[1].token_id)
        except TokenLimitExceeded:
            refused.append("x")

    threads = [threading.Thread(target=create) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert (len(made), len(refused)) == (5, 7)
    assert len(any_store.list("shared")) == 5


def test_put_all_is_an_idempotent_upsert(any_store: TokenStore) -> None:
    _, record = issue_token(any_store, POLICY, owner="alice")
    changed = record._replace(name="renamed", last_used_at=123)
    assert any_store.put_all([changed, changed]) == 2
    assert any_store.get(record.token_id) == changed
    assert len(any_store.list()) == 1


def test_a_copy_never_undoes_a_revocation_on_the_target(any_store: TokenStore) -> None:
    # `restauth store migrate` read the target, then a server revoked a token
    # there, then the copy wrote its older view of it.
    _, record = issue_token(any_store, POLICY, owner="alice")
    any_store.put_all([record._replace(last_used_at=500)])
    any_store.revoke(record.token_id, now=1000)
    assert any_store.put_all([record._replace(last_used_at=100)]) == 1
    found = any_store.get(record.token_id)
    assert found is not None
    assert (found.revoked_at, found.last_used_at) == (1000, 500), "earlier revocation, later use"
    # A source that knows of an earlier revocation brings it.
    any_store.put_all([record._replace(revoked_at=900, last_used_at=700)])
    found = any_store.get(record.token_id)
    assert found is not None
    assert (found.revoked_at, found.last_used_at) == (900, 700)


def test_a_copy_never_brings_back_a_pruned_token(any_store: TokenStore) -> None:
    # Revoked on the target, pruned there; the source never heard of the
    # revocation and still has the token active: a re-run copy must not
    # resurrect it (nor an expired one pruned there).
    now = int(time.time())
    _, revoked = issue_token(any_store, POLICY, owner="alice", now=now - 100)
    _, expired = issue_token(any_store, POLICY, owner="bob", now=now - 100, lifetime=10)
    _, alive = issue_token(any_store, POLICY, owner="carol", now=now - 100)
    any_store.revoke(revoked.token_id, now=now - 50)
    assert any_store.prune(before=now) == 2
    ids = [revoked.token_id, expired.token_id, alive.token_id, "neverseen000"]
    assert any_store.pruned(ids) == {revoked.token_id, expired.token_id}
    assert any_store.put_all([revoked, expired._replace(expires_at=None), alive]) == 1
    assert any_store.get(revoked.token_id) is None
    assert any_store.get(expired.token_id) is None
    assert any_store.get(alive.token_id) == alive
    # A second prune of nothing new still remembers the first.
    assert any_store.prune(before=now) == 0
    assert any_store.pruned(ids) == {revoked.token_id, expired.token_id}


def test_a_prune_during_a_copy_remembers_every_token_it_deletes(any_store: TokenStore) -> None:
    # A copy writes a long-dead token while a prune runs: the prune must not
    # delete a row it did not remember (the copy's table lock held only its
    # delete back, and a later copy from a store where the token is active
    # brought it back).
    now = int(time.time())
    _, dead = issue_token(any_store, POLICY, owner="alice", now=now - 100)
    dead = dead._replace(revoked_at=now - 50)
    _, other = issue_token(any_store, POLICY, owner="bob", now=now - 100)
    any_store.revoke(other.token_id, now=now - 50)  # so that the prune has work at once
    pruner = open_store(any_store.url, timeout=5)
    pruned: list[object] = []
    thread = threading.Thread(target=lambda: pruned.append(pruner.prune(before=now)))

    def records() -> Iterator[object]:
        thread.start()
        time.sleep(0.5)  # the prune is under way, waiting on the copy
        yield dead

    copied = any_store.put_all(records())  # type: ignore[arg-type]
    thread.join(10)
    pruner.close()
    assert pruned, "the prune finished"
    if any_store.get(dead.token_id) is None:
        assert any_store.pruned([dead.token_id]) == {dead.token_id}, "deleted, so remembered"
    else:
        assert copied == 1  # the prune ran first; the copy's row stays for the next one
    assert any_store.pruned([other.token_id]) == {other.token_id}


@pytest.mark.parametrize("store_url_any", ["postgresql"], indirect=True)
def test_a_read_after_a_server_restart_finds_a_live_connection(any_store: TokenStore) -> None:
    # Every idle pooled connection is dead after a restart, not only the first
    # one taken: the second try must not take another dead one.
    import psycopg

    from restauth_wsgi.tokens.postgres import PostgresTokenStore

    assert isinstance(any_store, PostgresTokenStore)
    _, record = issue_token(any_store, POLICY, owner="alice")
    with any_store._connection(), any_store._connection(), any_store._connection():
        pass  # three idle connections in the pool
    database = any_store.url.rsplit("/", 1)[1]
    with psycopg.connect(any_store.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )
    time.sleep(0.2)
    assert any_store.get(record.token_id) == record


@pytest.mark.parametrize("store_url_any", ["postgresql"], indirect=True)
def test_a_revoke_during_a_copy_waits_instead_of_deadlocking(any_store: TokenStore) -> None:
    # The copy writes row after row in one transaction (each bumping the change
    # counter); a revoke locks its row, then the counter. The copy pauses
    # between two rows while the revoke starts, as a slow copy would.
    _, first = issue_token(any_store, POLICY, owner="alice")
    _, second = issue_token(any_store, POLICY, owner="bob")
    revoker = open_store(any_store.url, timeout=5)
    outcome: list[object] = []

    def revoke() -> None:
        try:
            outcome.append(revoker.revoke(second.token_id, now=2000))
        except Exception as exc:  # the deadlock, had the copy not held the table
            outcome.append(exc)

    thread = threading.Thread(target=revoke)

    def records() -> Iterator[object]:
        yield first
        thread.start()
        time.sleep(0.5)  # the revoke is under way, waiting on the copy
        yield second

    assert any_store.put_all(records()) == 2  # type: ignore[arg-type]
    thread.join(10)
    revoker.close()
    assert len(outcome) == 1
    assert not isinstance(outcome[0], Exception), outcome
    found = any_store.get(second.token_id)
    assert found is not None
    assert found.revoked_at == 2000


@pytest.mark.parametrize("store_url_any", ["postgresql"], indirect=True)
def test_a_write_waits_for_a_held_table_no_longer_than_the_timeout(store_url_any: str) -> None:
    # A copy stopped while it holds the table (Ctrl-Z on `restauth store
    # migrate`): writes must fail after the store's timeout, not queue for ever.
    import psycopg

    store = open_store(store_url_any, timeout=1)
    _, record = issue_token(store, POLICY, owner="alice")
    with psycopg.connect(store_url_any) as holder:
        holder.execute("LOCK TABLE restauth_tokens IN SHARE ROW EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(TokenStoreUnavailable):
            store.revoke(record.token_id, now=1000)
        assert time.monotonic() - started < 10
        assert store.get(record.token_id) is not None, "reads go on meanwhile"
    assert store.revoke(record.token_id, now=1000) is not None, "and writes after it"
    store.close()


def test_middleware_on_either_store(store_url_any: str, any_store: TokenStore) -> None:
    token, record = issue_token(any_store, POLICY, owner="alice")
    middleware = RestAuthMiddleware(echo_app, settings=Settings(token_store=store_url_any))
    client = Client(middleware)
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    any_store.revoke(record.token_id, now=int(time.time()))
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    middleware.close()


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RESTAUTH, *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_every_token_command_on_postgresql() -> None:
    with postgres_database() as url:
        env = cli_env(url)
        created = run("token", "create", "--user", "alice", "--name", "ci", env=env)
        assert created.returncode == 0, created.stderr
        token = created.stdout.splitlines()[-1]
        token_id = token.split("_")[1]
        assert token_id in run("token", "list", env=env).stdout
        assert run("check", "--bearer", token, env=env).returncode == 0
        assert run("token", "revoke", token_id, env=env).returncode == 0
        assert run("check", "--bearer", token, env=env).returncode == 1
        assert "Deleted 0" in run("token", "prune", env=env).stdout
        config = run("config", env=env)
        assert config.returncode == 0
        assert "1 token(s), 0 active" in config.stdout
        assert "postgres@" in config.stdout


@pytest.mark.slow
def test_migrate_sqlite_to_postgresql_keeps_every_token(tmp_path: Path) -> None:
    sqlite_url = f"sqlite://{tmp_path}/tokens.db"
    env = cli_env(sqlite_url)
    tokens = [
        run("token", "create", "--user", user, env=env).stdout.splitlines()[-1]
        for user in ("alice", "bob", "carol")
    ]
    run("token", "revoke", tokens[2].split("_")[1], env=env)
    run("check", "--bearer", tokens[0], env=env)  # records a last-used time
    before = {r.token_id: r for r in open_store(sqlite_url, timeout=5).list()}

    with postgres_database() as pg_url:
        migrated = run("store", "migrate", "--to", pg_url, env=env)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        assert "Copied 3 token(s)" in migrated.stdout
        assert "verified" in migrated.stdout
        again = run("store", "migrate", "--to", pg_url, env=env)
        assert again.returncode == 0, "safe to re-run"

        target = open_store(pg_url, timeout=5)
        after = {r.token_id: r for r in target.list()}
        assert after == before, "hashes, owners, expiries, revocations, last-used: unchanged"
        middleware = RestAuthMiddleware(echo_app, settings=Settings(token_store=pg_url))
        client = Client(middleware)
        for token, status in zip(tokens, (200, 200, 401), strict=True):
            response = client.get("/", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == status
        middleware.close()

        # Bob's token is revoked on the new store only, and pruned there; a
        # host still moving re-runs the copy from the old store, where it is
        # active: it stays gone.
        pg_env = cli_env(pg_url)
        assert run("token", "revoke", tokens[1].split("_")[1], env=pg_env).returncode == 0
        target.prune(before=int(time.time()) + 1)
        rerun = run("store", "migrate", "--to", pg_url, env=env)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "Copied 1 token(s)" in rerun.stdout
        assert "Left out 2 token(s) pruned from the target" in rerun.stdout
        assert tokens[1].split("_")[1] in rerun.stdout
        checked = run("check", "--bearer", tokens[1], env=pg_env)
        assert checked.returncode == 1, checked.stdout

        # Alice's token is revoked on the old store only (a host not yet
        # moved) and pruned there: a re-run copy revokes it on the new one.
        assert run("token", "revoke", tokens[0].split("_")[1], env=env).returncode == 0
        open_store(sqlite_url, timeout=5).prune(before=int(time.time()) + 1)
        rerun = run("store", "migrate", "--to", pg_url, env=env)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "Revoked 1 token(s) on the target that were pruned from the source" in (rerun.stdout)
        assert run("check", "--bearer", tokens[0], env=pg_env).returncode == 1
        target.close()


@pytest.mark.slow
def test_postgresql_outage_is_503_then_recovers() -> None:
    with postgres_database() as url:
        host, port = url.split("@", 1)[1].split("/", 1)[0].split(":")
        proxy = TcpProxy(host, int(port))
        via_proxy = url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
        store = open_store(via_proxy, timeout=2)
        token, _ = issue_token(store, POLICY, owner="alice")
        middleware = RestAuthMiddleware(
            echo_app, settings=Settings(token_store=via_proxy, token_store_timeout=2)
        )
        client = Client(middleware)
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        proxy.cut()
        response = client.get("/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        with pytest.raises(TokenStoreUnavailable):
            store.list()
        proxy.restore()
        eventually(
            lambda: (
                client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            ),
            "the store recovers",
        )
        middleware.close()
        store.close()
