"""A hello-world app wrapped in the middleware, served by gunicorn with several workers,
tokens made by the CLI: the issue's definition of done, over real HTTP."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest
import requests

from restauth_wsgi import Settings
from restauth_wsgi.tokens.issuing import issue_token
from restauth_wsgi.tokens.store import open_store

from .helpers import (
    ROOT,
    cli_env,
    free_port,
    gunicorn_command,
    raw_request,
    run_restauth,
    server_process,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def server(store_url: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    command = gunicorn_command("tests.apps:application", port, "--workers", "3")
    with server_process(command, port, cli_env(store_url), cwd=ROOT) as url:
        yield url, port


def create(store_url: str, user: str) -> str:
    done = run_restauth(store_url, "token", "create", "--user", user)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


def test_cli_token_works_on_every_worker_as_bearer_and_basic(
    server: tuple[str, int], store_url: str
) -> None:
    url, _ = server
    token = create(store_url, "alice@example.com")
    with requests.Session() as session:
        for _ in range(12):  # new connections spread over the workers
            answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert answer.status_code == 200
            assert answer.text == "hello alice@example.com via Bearer"
        answer = session.get(url, auth=("alice@example.com", token), timeout=10)
        assert answer.text == "hello alice@example.com via Basic"


def test_refusals_carry_correct_challenges(server: tuple[str, int], store_url: str) -> None:
    url, _ = server
    token = create(store_url, "alice")
    store = open_store(store_url, timeout=5)
    expired, _ = issue_token(
        store,
        Settings(token_store=store_url).token_policy(),
        owner="alice",
        lifetime=60,
        now=int(time.time()) - 120,
    )
    revoked = create(store_url, "alice")
    done = run_restauth(store_url, "token", "revoke", revoked)
    assert done.returncode == 0, done.stderr
    cases = {
        "none": ({}, None),
        "wrong": ({"Authorization": "Bearer " + token[:-6] + "AAAAAA"}, "invalid_token"),
        "expired": ({"Authorization": f"Bearer {expired}"}, "invalid_token"),
        "revoked": ({"Authorization": f"Bearer {revoked}"}, "invalid_token"),
    }
    for name, (headers, error) in cases.items():
        answer = requests.get(url, headers=headers, timeout=10)
        assert answer.status_code == 401, name
        bearer, basic = answer.headers["WWW-Authenticate"].split(", Basic ")
        if error is None:
            assert bearer == 'Bearer realm="api"', name
        else:
            assert bearer.startswith(f'Bearer realm="api", error="{error}"'), name
        assert basic == 'realm="api", charset="UTF-8"'
        assert answer.json()["error"] == (error or "missing_credentials")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"Authorization: Bearer caf\xc3\xa9", id="utf8"),
        pytest.param(b"Authorization: Bearer \xff\xfe", id="latin1-bytes"),
        pytest.param(b"Authorization: Basic \xff\xfe", id="basic-bytes"),
        pytest.param(b"Authorization: Basic " + base64.b64encode(b"\xff:\xfe"), id="non-utf8"),
        pytest.param(b"Authorization: " + b"A" * 7000, id="long"),
    ],
)
def test_raw_bytes_over_the_wire_get_a_4xx(server: tuple[str, int], header: bytes) -> None:
    _, port = server
    answer = raw_request(port, b"GET / HTTP/1.0\r\nHost: x\r\n" + header + b"\r\n\r\n")
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:200]
