"""Lockout aimed at guessing, not at users: what a locked address is refused
(passwords, opaque tokens that would need a provider call) and what it never
is (API tokens, JWTs with a valid signature, answers already cached); a
stranger cannot lock a user's right password out from the user's own
addresses; Retry-After is what the server does; across workers and hosts
sharing Redis. Time is a clock the tests move, never a sleep."""

from __future__ import annotations

import base64
import logging
import subprocess
import threading
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
from restauth_wsgi.decision import Gatekeeper
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.tokens.store import TokenRecord

from .fake_provider import FakeProvider
from .helpers import (
    RESTAUTH,
    ROOT,
    claims_token,
    cli_env,
    echo_app,
    eventually,
    free_port,
    gunicorn_command,
    run_restauth,
    serve_claims,
    server_process,
)
from .oidc_provider import SigningKey
from .services import redis_server

Issue = Callable[..., tuple[str, TokenRecord]]
KEY = SigningKey("RS256")
ISSUER = "https://idp.lockout.test"
WINDOW = 60


class Clock:
    """A clock the test moves; it starts at the beginning of the current
    window (near the real time: the JWTs' times are checked by it too)."""

    def __init__(self) -> None:
        self.now = time.time() // WINDOW * WINDOW

    def __call__(self) -> float:
        return self.now


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def ask(client: Client, authorization: str | None, remote: str, **headers: str) -> Any:
    if authorization is not None:
        headers["Authorization"] = authorization
    return client.get("/", headers=headers, environ_overrides={"REMOTE_ADDR": remote})


@pytest.fixture
def passwords(tmp_path: Path) -> str:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"jenkins:{hashed}\n")
    return str(path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def web(
    store_url: str, passwords: str, fake_provider: FakeProvider, clock: Clock
) -> Callable[..., Client]:
    """The echo app with lockout (threshold 3), passwords, JWTs and opaque tokens."""
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk()]})
    fake_provider.route("/me", serve_claims)
    providers = (
        ProviderSettings(
            "jwt",
            type="oidc",
            issuer=ISSUER,
            audience=("api",),
            jwks_url=f"{fake_provider.url}/jwks",
        ),
        ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me"),
    )

    def build(**changes: Any) -> Client:
        values: dict[str, Any] = {
            "token_store": store_url,
            "password_file": passwords,
            "providers": providers,
            "lockout_threshold": 3,
            "lockout_user_threshold": 5,
            "lockout_window": WINDOW,
            **changes,
        }
        settings = Settings(**values)
        gatekeeper = Gatekeeper.from_settings(settings, clock=clock)
        return Client(RestAuthMiddleware(echo_app, settings=settings, gatekeeper=gatekeeper))

    return build


def jwt_for(user: str) -> str:
    now = int(time.time())
    return KEY.sign({"iss": ISSUER, "aud": "api", "sub": user, "iat": now, "exp": now + 300})


def lock(client: Client, address: str) -> None:
    for _ in range(3):
        assert ask(client, "Bearer restauth_wrong", address).status_code == 401


def test_a_locked_address_keeps_credentials_that_cost_nothing(
    web: Callable[..., Client], issue: Issue, fake_provider: FakeProvider
) -> None:
    client = web()
    token, _ = issue("alice")
    seen = claims_token(sub="carol")
    assert ask(client, f"Bearer {seen}", "192.0.2.7").status_code == 200, "cached from now on"
    lock(client, "192.0.2.7")

    assert ask(client, f"Bearer {token}", "192.0.2.7").status_code == 200, "API token"
    assert ask(client, basic("alice", token), "192.0.2.7").status_code == 200, "API token, Basic"
    assert ask(client, f"Bearer {jwt_for('dave')}", "192.0.2.7").status_code == 200, "JWT"
    assert ask(client, f"Bearer {seen}", "192.0.2.7").status_code == 200, "a cached answer"

    calls = fake_provider.calls["/me"]
    unseen = ask(client, f"Bearer {claims_token(sub='erin')}", "192.0.2.7")
    assert unseen.status_code == 429, "an unseen opaque token would cost a provider call"
    assert fake_provider.calls["/me"] == calls, "and no call was made"
    assert ask(client, basic("jenkins", "right"), "192.0.2.7").status_code == 429, "passwords"
    assert ask(client, basic("jenkins", "right"), "198.51.100.1").status_code == 200, "elsewhere"


def test_a_strangers_guesses_do_not_lock_the_users_own_address(
    web: Callable[..., Client],
) -> None:
    client = web()
    for _ in range(3):
        assert ask(client, basic("jenkins", "guess"), "203.0.113.9").status_code == 401
    assert ask(client, basic("jenkins", "right"), "203.0.113.9").status_code == 429
    assert ask(client, basic("jenkins", "right"), "192.0.2.50").status_code == 200, "own machine"


def test_guessing_spread_over_addresses_meets_the_users_ceiling_but_not_known_addresses(
    web: Callable[..., Client],
) -> None:
    client = web()
    assert ask(client, basic("jenkins", "right"), "192.0.2.50").status_code == 200  # known
    for n in range(5):  # one guess each from five addresses: no address is locked
        assert ask(client, basic("jenkins", f"guess{n}"), f"203.0.113.{n}").status_code == 401
    assert ask(client, basic("jenkins", "right"), "198.51.100.7").status_code == 429, "new address"
    assert ask(client, basic("jenkins", "right"), "192.0.2.50").status_code == 200, "known address"


def test_a_remembered_password_is_still_a_password(web: Callable[..., Client]) -> None:
    client = web()
    assert ask(client, basic("jenkins", "right"), "203.0.113.20").status_code == 200
    lock(client, "203.0.113.20")
    assert ask(client, basic("jenkins", "right"), "203.0.113.20").status_code == 429


def test_retry_after_is_when_the_server_lets_the_address_in_again(
    web: Callable[..., Client], clock: Clock
) -> None:
    client = web()
    clock.now += 17.4  # into the window
    lock(client, "192.0.2.9")
    refused = ask(client, basic("jenkins", "right"), "192.0.2.9")
    assert refused.status_code == 429
    assert refused.json["error"] == "too_many_failures"
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after == 43, "the window's end, rounded up"
    clock.now += retry_after - 1
    assert ask(client, basic("jenkins", "right"), "192.0.2.9").status_code == 429, "not before"
    clock.now += 1
    assert ask(client, basic("jenkins", "right"), "192.0.2.9").status_code == 200, "not after"


def test_missing_credentials_do_not_count(web: Callable[..., Client]) -> None:
    client = web()
    for _ in range(10):
        assert ask(client, None, "192.0.2.8").status_code == 401
    assert ask(client, basic("jenkins", "right"), "192.0.2.8").status_code == 200


def test_blocked_passwords_do_not_count(web: Callable[..., Client]) -> None:
    client = web(block_basic_passwords=True)
    for _ in range(5):
        assert ask(client, basic("jenkins", "guess"), "192.0.2.30").status_code == 401
    unseen = claims_token(sub="frank")
    assert ask(client, f"Bearer {unseen}", "192.0.2.30").status_code == 200, "not locked"


def test_lockout_off(web: Callable[..., Client]) -> None:
    client = web(lockout_threshold=0)
    for _ in range(20):
        ask(client, basic("jenkins", "guess"), "192.0.2.20")
    assert ask(client, basic("jenkins", "right"), "192.0.2.20").status_code == 200


def test_forwarded_for_without_trusted_proxies_is_said_once(
    web: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    client = web()
    with caplog.at_level(logging.WARNING, logger="restauth_wsgi"):
        for n in range(3):
            ask(client, None, "10.0.0.1", **{"X-Forwarded-For": f"198.51.100.{n}"})
    said = [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
    assert len(said) == 1
    assert "RESTAUTH_TRUSTED_PROXIES" in said[0].getMessage()


def test_forwarded_for_with_trusted_proxies_is_not_warned_about(
    web: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    client = web(trusted_proxies=1)
    with caplog.at_level(logging.WARNING, logger="restauth_wsgi"):
        ask(client, None, "10.0.0.1", **{"X-Forwarded-For": "198.51.100.1"})
    assert not [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]


def test_concurrent_guesses_get_no_more_than_the_threshold(
    store_url: str, passwords: str, clock: Clock
) -> None:
    settings = Settings(
        token_store=store_url, password_file=passwords, lockout_threshold=10, lockout_window=WINDOW
    )
    middleware = RestAuthMiddleware(
        echo_app, settings=settings, gatekeeper=Gatekeeper.from_settings(settings, clock=clock)
    )
    statuses: list[int] = []
    start = threading.Barrier(40)

    def guess(n: int) -> None:
        client = Client(middleware)
        start.wait()
        statuses.append(ask(client, basic("jenkins", f"guess-{n}"), "203.0.113.9").status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(401) <= 10, "a guess is counted before it is checked"
    assert statuses.count(401) + statuses.count(429) == 40


def test_an_ipv6_client_is_counted_by_its_64(web: Callable[..., Client]) -> None:
    client = web()
    for n in range(3):  # one guess from each of three addresses of one /64
        assert ask(client, basic("jenkins", f"g{n}"), f"2001:db8:1:2::{n + 1:x}").status_code == 401
    assert ask(client, basic("jenkins", "right"), "2001:db8:1:2::ffff").status_code == 429
    assert ask(client, basic("jenkins", "right"), "2001:db8:1:3::1").status_code == 200, "next /64"


def test_clients_without_an_address_are_counted_together(
    web: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    client = web()
    with caplog.at_level(logging.WARNING, logger="restauth_wsgi"):
        for n in range(3):
            assert ask(client, basic("jenkins", f"g{n}"), "").status_code == 401
    assert ask(client, f"Bearer {claims_token(sub='x')}", "").status_code == 429
    said = [r.getMessage() for r in caplog.records if "cannot be told" in r.getMessage()]
    assert len(said) == 1
    assert "REMOTE_ADDR is empty" in said[0]


def test_answers_do_not_evict_lockout_counters(
    web: Callable[..., Client], fake_provider: FakeProvider
) -> None:
    client = web(cache_max_entries=100)
    lock(client, "203.0.113.66")
    for n in range(150):  # plenty of ordinary sign-ins, each answer cached
        assert (
            ask(client, f"Bearer {claims_token(sub=f'user{n}')}", f"198.51.100.{n}").status_code
            == 200
        )
    assert ask(client, basic("jenkins", "right"), "203.0.113.66").status_code == 429


# -- across processes sharing Redis, and the CLI ---------------------------------------------


#: The lockout window of the two hosts: long, so that a test rarely waits
#: for the next window to start.
TWO_HOSTS_WINDOW = 3600


@pytest.fixture
def two_hosts(store_url: str, passwords: str) -> Iterator[tuple[list[str], dict[str, str]]]:
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server())
        env = cli_env(
            store_url,
            RESTAUTH_CACHE=f"redis://127.0.0.1:{redis.port}/0",
            RESTAUTH_PASSWORD_FILE=passwords,
            RESTAUTH_LOCKOUT_THRESHOLD="5",
            RESTAUTH_LOCKOUT_WINDOW=str(TWO_HOSTS_WINDOW),
            RESTAUTH_TRUSTED_PROXIES="1",  # the client address comes from X-Forwarded-For
        )
        hosts = []
        for _ in range(2):
            port = free_port()
            command = gunicorn_command("tests.apps:application", port, "--workers", "2")
            hosts.append(stack.enter_context(server_process(command, port, env, cwd=ROOT)))
        # Every lockout lifts when its window ends: a test that crossed the
        # end would see its lockout gone between two commands. Start in a
        # window with a minute left at least.
        left = TWO_HOSTS_WINDOW - time.time() % TWO_HOSTS_WINDOW
        if left < 60:
            time.sleep(left + 0.5)
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

    def everywhere(status: int, client: str) -> bool:
        # Each worker trusts its note for at most a second: ask each a few times.
        return all(
            get(h, basic("jenkins", "right"), client).status_code == status for h in (0, 1) * 3
        )

    eventually(lambda: everywhere(429, "203.0.113.5"), "every worker refuses the address")
    for host in (0, 1):
        assert get(host, f"Bearer {token}", "203.0.113.5").status_code == 200, "API token"
        assert get(host, basic("jenkins", "right"), "203.0.113.6").status_code == 200

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
    eventually(lambda: everywhere(200, "203.0.113.5"), "every worker lets the address in")
    assert (
        "Nobody is locked out"
        in subprocess.run(
            [RESTAUTH, "lockout", "list"], env=env, capture_output=True, text=True, check=True
        ).stdout
    )


@pytest.mark.slow
def test_lockout_list_escapes_what_a_client_chose(
    two_hosts: tuple[list[str], dict[str, str]],
) -> None:
    hosts, env = two_hosts
    forged = "mallory\n203.0.113.99 \x1b[2Kuser     root"
    for _ in range(5):
        requests.get(
            hosts[0],
            timeout=10,
            headers={"Authorization": basic(forged, "guess"), "X-Forwarded-For": "192.0.2.77"},
        )
    listed = subprocess.run(
        [RESTAUTH, "lockout", "list"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "\x1b" not in listed
    assert "mallory\\n203.0.113.99 \\x1b[2K" in listed, listed
    rows = [line for line in listed.splitlines() if "mallory" in line or "root" in line]
    assert all("mallory" in row for row in rows), "no row forged by the username"


def test_lockout_commands_need_a_shared_cache(store_url: str) -> None:
    done = run_restauth(store_url, "lockout", "list")
    assert done.returncode == 1
    assert "RESTAUTH_CACHE" in done.stderr
