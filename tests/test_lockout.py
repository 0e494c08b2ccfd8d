"""Lockout that heals itself: throttled after too many failures, per address and
per user, across workers and hosts sharing Redis, released when the window ends."""

from __future__ import annotations

import base64
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.tokens.store import TokenRecord

from .helpers import RESTAUTH, ROOT, cli_env, echo_app, free_port, gunicorn_command, server_process
from .services import redis_server

Issue = Callable[..., tuple[str, TokenRecord]]


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def ask(client: Client, authorization: str, remote: str) -> Any:
    return client.get(
        "/", headers={"Authorization": authorization}, environ_overrides={"REMOTE_ADDR": remote}
    )


@pytest.fixture
def passwords(tmp_path: Path) -> str:
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{bcrypt.hashpw(b'right', bcrypt.gensalt(rounds=4)).decode()}\n")
    return str(path)


def middleware(store_url: str, **changes: Any) -> Client:
    values = {"lockout_threshold": 3, "lockout_window": 60, **changes}
    return Client(RestAuthMiddleware(echo_app, settings=Settings(token_store=store_url, **values)))


def test_an_address_is_throttled_and_others_are_not(store_url: str, issue: Issue) -> None:
    client = middleware(store_url)
    token, _ = issue("alice")
    for _ in range(3):
        assert ask(client, "Bearer restauth_wrong", "192.0.2.7").status_code == 401
    locked = ask(client, f"Bearer {token}", "192.0.2.7")
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 61
    assert locked.json["error"] == "too_many_failures"
    assert ask(client, f"Bearer {token}", "198.51.100.1").status_code == 200, "another address"


def test_missing_credentials_do_not_count(store_url: str) -> None:
    client = middleware(store_url)
    for _ in range(10):
        assert client.get("/", environ_overrides={"REMOTE_ADDR": "192.0.2.8"}).status_code == 401


def test_lockout_heals_itself(store_url: str, issue: Issue) -> None:
    client = middleware(store_url, lockout_window=2)
    token, _ = issue("alice")
    time.sleep(2 - time.time() % 2 + 0.05)  # start at the beginning of a window
    for _ in range(3):
        ask(client, "Bearer restauth_wrong", "192.0.2.9")
    assert ask(client, f"Bearer {token}", "192.0.2.9").status_code == 429
    time.sleep(2.2)
    assert ask(client, f"Bearer {token}", "192.0.2.9").status_code == 200, "no admin action"


def test_a_user_locked_for_passwords_keeps_their_tokens(
    store_url: str, issue: Issue, passwords: str
) -> None:
    client = middleware(store_url, password_file=passwords)
    token, _ = issue("alice")
    for n in range(3):  # from three addresses: no address reaches the threshold
        assert ask(client, basic("alice", "guess"), f"192.0.2.{10 + n}").status_code == 401
    assert ask(client, basic("alice", "right"), "198.51.100.2").status_code == 429
    assert ask(client, basic("alice", token), "198.51.100.2").status_code == 200
    assert ask(client, f"Bearer {token}", "198.51.100.2").status_code == 200


def test_lockout_off(store_url: str, issue: Issue) -> None:
    client = middleware(store_url, lockout_threshold=0)
    token, _ = issue("alice")
    for _ in range(20):
        ask(client, "Bearer restauth_wrong", "192.0.2.20")
    assert ask(client, f"Bearer {token}", "192.0.2.20").status_code == 200


# -- across processes sharing Redis, and the CLI ---------------------------------------------


@pytest.fixture
def two_hosts(store_url: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server())
        env = cli_env(
            store_url,
            RESTAUTH_CACHE=f"redis://127.0.0.1:{redis.port}/0",
            RESTAUTH_LOCKOUT_THRESHOLD="5",
            RESTAUTH_LOCKOUT_WINDOW="60",
            RESTAUTH_TRUSTED_PROXIES="1",  # the client address comes from X-Forwarded-For
        )
        hosts = []
        for _ in range(2):
            port = free_port()
            command = gunicorn_command("tests.apps:application", port, "--workers", "2")
            hosts.append(stack.enter_context(server_process(command, port, env, cwd=ROOT)))
        yield hosts, env


@pytest.mark.slow
def test_throttled_across_workers_and_hosts(
    two_hosts: tuple[list[str], dict[str, str]], issue: Issue
) -> None:
    hosts, env = two_hosts
    token, _ = issue("alice")

    def get(host: int, authorization: str, client: str) -> requests.Response:
        return requests.get(
            hosts[host],
            timeout=10,
            headers={"Authorization": authorization, "X-Forwarded-For": client},
        )

    for n in range(5):  # spread over both hosts and their workers
        assert get(n % 2, "Bearer restauth_wrong", "203.0.113.5").status_code == 401
    time.sleep(1.1)  # workers trust a "not locked" note for at most a second
    for host in (0, 1, 0, 1):
        assert get(host, f"Bearer {token}", "203.0.113.5").status_code == 429
        assert get(host, f"Bearer {token}", "203.0.113.6").status_code == 200

    listed = subprocess.run(
        [RESTAUTH, "lockout", "list"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "203.0.113.5" in listed
    assert "address" in listed
    cleared = subprocess.run(
        [RESTAUTH, "lockout", "clear", "203.0.113.5"], env=env, capture_output=True, text=True
    )
    assert cleared.returncode == 0
    assert "Lifted 1" in cleared.stdout
    time.sleep(1.1)
    for host in (0, 1):
        assert get(host, f"Bearer {token}", "203.0.113.5").status_code == 200
    assert (
        "Nobody is locked out"
        in subprocess.run(
            [RESTAUTH, "lockout", "list"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )


def test_lockout_commands_need_a_shared_cache(store_url: str) -> None:
    done = subprocess.run(
        [RESTAUTH, "lockout", "list"], env=cli_env(store_url), capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "RESTAUTH_CACHE" in done.stderr
