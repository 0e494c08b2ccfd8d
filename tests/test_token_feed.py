"""API tokens remembered under the store's change feed, and revocation that
still reaches every process promptly.

Each kind of change (revocation, expiry, new restrictions, deletion), made by
the CLI or by plain SQL, is seen by every worker of two servers sharing the
store (a real SQLite file; real PostgreSQL) once the feed's bound has passed:
a poll, and how stale a poll may be. The feed fails closed: with the store's
connection cut no revoked token is accepted, and it recovers by itself. A
child forked after the feed started trusts nothing its parent saw.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.decision import Gatekeeper
from restauth_wsgi.identity import Identity
from restauth_wsgi.tokens.feed import POLL_SECONDS, STALE_SECONDS

from .helpers import (
    RESTAUTH,
    ROOT,
    cli_env,
    clocked_tokens,
    echo_app,
    eventually,
    free_port,
    server_process,
)
from .services import TcpProxy, postgres_database

#: After this long, every process must have seen a change.
BOUND = POLL_SECONDS + STALE_SECONDS


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Servers:
    """Two gunicorn servers, two workers each, on one token store."""

    def __init__(self, urls: list[str], env: dict[str, str]) -> None:
        self.urls = urls
        self.env = env

    def statuses(self, token: str, method: str = "GET") -> set[int]:
        """What every worker of every server answers (each asked several times)."""
        return {
            requests.request(method, url, headers=bearer(token), timeout=20).status_code
            for url in self.urls
            for _ in range(4)
        }

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [RESTAUTH, *args], env=self.env, capture_output=True, text=True, check=True, timeout=60
        )
        return done.stdout

    def token(self) -> str:
        return self.cli("token", "create", "--user", "alice").splitlines()[-1]


def serve(stack: ExitStack, store_url: str, hosts: int = 2) -> Servers:
    env = cli_env(store_url, RESTAUTH_TOKEN_STORE_TIMEOUT="2")
    urls = []
    for _ in range(hosts):
        port = free_port()
        command = [
            str(Path(RESTAUTH).with_name("gunicorn")),
            "--bind",
            f"127.0.0.1:{port}",
            "--no-control-socket",
            "--workers",
            "2",
            "tests.apps:application",
        ]
        urls.append(stack.enter_context(server_process(command, port, env, cwd=ROOT)))
    return Servers(urls, env)


# One pair of servers per store for the whole module: every test makes its own tokens.
@pytest.fixture(scope="module")
def sqlite_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Servers, Callable[..., None]]]:
    path = tmp_path_factory.mktemp("feed") / "tokens.db"

    def sql(statement: str, *params: object) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(statement, params)

    with ExitStack() as stack:
        yield serve(stack, f"sqlite://{path}"), sql


@pytest.fixture(scope="module")
def postgres_servers() -> Iterator[tuple[Servers, Callable[..., None]]]:
    import psycopg

    with ExitStack() as stack:
        url = stack.enter_context(postgres_database())

        def sql(statement: str, *params: object) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                pg = statement.replace("tokens", "restauth_tokens").replace("?", "%s")
                conn.execute(pg, params)  # type: ignore[arg-type]

        yield serve(stack, url), sql


CHANGES = [
    pytest.param(
        lambda servers, sql, token_id: servers.cli("token", "revoke", token_id),
        "GET",
        id="revoked-by-the-cli",
    ),
    pytest.param(
        lambda servers, sql, token_id: sql(
            "UPDATE tokens SET expires_at = 1 WHERE id = ?", token_id
        ),
        "GET",
        id="expired-by-sql",
    ),
    pytest.param(
        lambda servers, sql, token_id: sql(
            "UPDATE tokens SET restrictions = ? WHERE id = ?",
            json.dumps({"read_only": True}),
            token_id,
        ),
        "POST",
        id="restricted-by-sql",
    ),
    pytest.param(
        lambda servers, sql, token_id: sql("DELETE FROM tokens WHERE id = ?", token_id),
        "GET",
        id="deleted-by-sql",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("change", "method"), CHANGES)
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_every_change_reaches_every_process_within_the_bound(
    request: pytest.FixtureRequest, store: str, change: Any, method: str
) -> None:
    servers, sql = request.getfixturevalue(f"{store}_servers")
    token = servers.token()
    other = servers.token()
    assert servers.statuses(token, method) == {200}, "remembered by every worker"
    change(servers, sql, token.split("_")[1])
    time.sleep(BOUND)
    assert servers.statuses(token, method) == {401 if method == "GET" else 403}
    assert servers.statuses(other) == {200}, "other tokens are unaffected"


@pytest.mark.slow
def test_last_used_times_do_not_make_processes_drop_their_answers(
    sqlite_servers: tuple[Servers, Callable[..., None]],
) -> None:
    servers, _sql = sqlite_servers
    token = servers.token()
    assert servers.statuses(token) == {200}
    with sqlite3.connect(servers.env["RESTAUTH_TOKEN_STORE"].removeprefix("sqlite://")) as conn:
        (before,) = conn.execute("SELECT generation FROM token_changes").fetchone()
        conn.execute("UPDATE tokens SET last_used_at = last_used_at - 100")
        (after,) = conn.execute("SELECT generation FROM token_changes").fetchone()
    assert before == after, "a last-used time is not a change"


@pytest.mark.slow
def test_a_cut_feed_fails_closed_and_recovers() -> None:
    import psycopg

    with ExitStack() as stack:
        url = stack.enter_context(postgres_database())
        host, port = url.split("@", 1)[1].split("/", 1)[0].split(":")
        proxy = TcpProxy(host, int(port))
        stack.callback(proxy.cut)
        servers = serve(stack, url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}"))
        revoked, kept = servers.token(), servers.token()
        assert servers.statuses(revoked) == {200}
        assert servers.statuses(kept) == {200}

        proxy.cut()  # every process loses its store and its feed
        with psycopg.connect(url, autocommit=True) as conn:  # the revocation goes around
            conn.execute(
                "UPDATE restauth_tokens SET revoked_at = 1 WHERE id = %s", (revoked.split("_")[1],)
            )
        time.sleep(BOUND)
        assert 200 not in servers.statuses(revoked), "never a revoked token, feed or no feed"

        proxy.restore()
        eventually(lambda: servers.statuses(kept) == {200}, "the feed recovers by itself")
        assert servers.statuses(revoked) == {401}


def test_a_forked_child_trusts_nothing_its_parent_saw(tmp_path: Path) -> None:
    settings = Settings(token_store=f"sqlite://{tmp_path}/tokens.db")
    middleware = RestAuthMiddleware(echo_app, settings=settings)
    client = Client(middleware)
    from restauth_wsgi.tokens.issuing import issue_token
    from restauth_wsgi.tokens.store import open_store

    store = open_store(settings.token_store, timeout=5)
    token, record = issue_token(store, settings.token_policy(), owner="alice")
    assert client.get("/", headers=bearer(token)).status_code == 200  # the feed starts
    eventually(lambda: client.get("/", headers=bearer(token)).status_code == 200, "remembered")

    to_child, from_parent = os.pipe()
    from_child, to_parent = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through a pipe
        try:
            statuses = [client.get("/", headers=bearer(token)).status_code]
            os.write(to_parent, b"?")
            os.read(to_child, 1)  # the parent has revoked the token
            time.sleep(BOUND)
            statuses.append(client.get("/", headers=bearer(token)).status_code)
            os.write(to_parent, json.dumps(statuses).encode())
        finally:
            os._exit(0)
    assert os.read(from_child, 1) == b"?"
    store.revoke(record.token_id, now=int(time.time()))
    os.write(from_parent, b"!")
    os.waitpid(child, 0)
    answer = os.read(from_child, 1024)
    for end in (to_child, from_parent, from_child, to_parent):
        os.close(end)
    assert json.loads(answer) == [200, 401], "the child read the store, then saw the change"
    middleware.close()


def test_without_the_feed_every_request_reads_the_store(tmp_path: Path) -> None:
    settings = Settings(token_store=f"sqlite://{tmp_path}/tokens.db", token_feed=False)
    gatekeeper = Gatekeeper.from_settings(settings)
    client = Client(RestAuthMiddleware(echo_app, settings=settings, gatekeeper=gatekeeper))
    from restauth_wsgi.tokens.issuing import issue_token
    from restauth_wsgi.tokens.store import open_store

    store = open_store(settings.token_store, timeout=5)
    token, record = issue_token(store, settings.token_policy(), owner="alice")
    assert client.get("/", headers=bearer(token)).status_code == 200
    store.revoke(record.token_id, now=int(time.time()))
    assert client.get("/", headers=bearer(token)).status_code == 401, "at once"
    gatekeeper.close()


def test_an_expiring_token_expires_from_memory_too(tmp_path: Path) -> None:
    """Remembered under the feed, then past its expiry with nothing changed in
    the store: the answer no longer stands, and the record read again says
    it expired (the memory keeps answers for an hour, longer than this token)."""
    now, settings, gatekeeper, client, store = clocked_tokens(tmp_path)
    from restauth_wsgi.tokens.issuing import issue_token

    token, _ = issue_token(
        store, settings.token_policy(), owner="alice", lifetime=600, now=int(now[0])
    )
    authentication = gatekeeper.authentication
    eventually(
        lambda: (
            client.get("/", headers=bearer(token)).status_code == 200
            and isinstance(authentication.recall(f"Bearer {token}"), Identity)
        ),
        "remembered",
    )
    now[0] += 600
    assert client.get("/", headers=bearer(token)).status_code == 401
    gatekeeper.close()
