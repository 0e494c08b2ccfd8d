"""The self-service token API with its real parts: a user with only a token
from the suite's real OpenID provider (oidc-provider), gunicorn with several
workers, SQLite and PostgreSQL under many processes creating at once, and the
examples (curl and requests) run as printed against it.

The issue's definition of done: a user with only their provider token
creates, lists, uses and revokes their own API token over HTTP without an
admin, and every limit holds under concurrency.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
from werkzeug.test import Client

from restauth_wsgi import Settings
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.store import open_store

from .helpers import ROOT, cli_env, eventually, free_port, gunicorn_command, need, server_process
from .oidc_provider import RESOURCE_JWT, OidcProvider
from .self_service_support import API, CREATED_FIELDS, DAY, basic, bearer, call, parse_time

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-pw"
EXAMPLES = ROOT / "examples" / "self_service"


def password_file(directory: Path) -> str:
    """An htpasswd file with the service account jenkins."""
    path = directory / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"jenkins:{hashed}\n")
    return str(path)


# -- a real provider's token, through the WSGI interface ----------------------------------


def test_a_user_with_only_a_provider_token_manages_their_own_tokens(
    oidc_provider: OidcProvider, store_url: str, make_client: Callable[..., Client]
) -> None:
    """A JWT from the authorization-code flow (bob, scopes read and write)
    creates a token, which then works without the provider's token; the
    scope asked for is granted, one bob lacks is refused."""
    op = oidc_provider
    provider = ProviderSettings(
        "op", type="oidc", issuer=op.issuer, audience=(RESOURCE_JWT,), access_token_type=("at+jwt",)
    )
    client = make_client(Settings(token_store=store_url, providers=(provider,), self_service=True))
    jwt = bearer(op.user_tokens("bob", resource=RESOURCE_JWT, scope="openid read")["access_token"])

    created = call(
        client,
        "POST",
        headers=jwt,
        json_body={
            "name": "laptop",
            "expirationDuration": 30,
            "restrictions": {"scopes": ["read"]},
        },
    )
    assert created.status == 201, created
    token = created.body
    assert set(token) == CREATED_FIELDS | {"restrictions"}
    assert parse_time(token["expiringAt"]) - parse_time(token["createdAt"]) == 30 * DAY
    wider = call(
        client, "POST", headers=jwt, json_body={"name": "x", "restrictions": {"scopes": ["write"]}}
    )
    assert (wider.status, wider.body["errors"]) == (
        400,
        {"restrictions.scopes": wider.body["error_description"]},
    )

    used = call(client, "GET", "/rest/api/2/myself", headers=bearer(token["rawToken"]))
    assert used.body["remote_user"] == "bob"
    assert used.body["identity"]["scopes"] == ["read"]
    assert [t["id"] for t in call(client, "GET", headers=jwt).body] == [token["id"]]
    assert call(client, "DELETE", f"{API}/{token['id']}", headers=jwt).status == 204
    eventually(
        lambda: call(client, "GET", "/", headers=bearer(token["rawToken"])).status == 401,
        "the revoked token refused",
        timeout=2,
    )


def test_admins_and_creators_by_the_providers_groups(
    oidc_provider: OidcProvider, store_url: str, make_client: Callable[..., Client]
) -> None:
    """Groups from the provider's userinfo: alice (admins) lists and revokes
    bob's tokens; only engineering may create, so bob (operations) may not."""
    op = oidc_provider
    provider = ProviderSettings(
        "opu",
        type="oauth2",
        userinfo_url=f"{op.issuer}/me",
        username_attribute=("preferred_username",),
    )

    def client(**changes: Any) -> Client:
        return make_client(
            Settings(token_store=store_url, providers=(provider,), self_service=True, **changes)
        )

    open_door = client(self_service_admin_groups=("admins",))
    gated = client(self_service_groups=("engineering",))
    alice = bearer(op.user_tokens("alice")["access_token"])
    bob = bearer(op.user_tokens("bob")["access_token"])
    bobs = call(open_door, "POST", headers=bob, json_body={"name": "bob's"}).body
    assert call(gated, "POST", headers=bob, json_body={"name": "x"}).status == 403
    assert call(gated, "POST", headers=alice, json_body={"name": "x"}).status == 201
    seen = call(open_door, "GET", headers=alice, query_string={"user": "bob"}).body
    assert [t["id"] for t in seen] == [bobs["id"]]
    assert call(open_door, "GET", headers=bob, query_string={"user": "alice"}).status == 403
    assert call(open_door, "DELETE", f"{API}/{bobs['id']}", headers=alice).status == 204


# -- under gunicorn -------------------------------------------------------------------------


def server_env(
    store_url: str, tmp_path: Path, op: OidcProvider | None = None, **extra: str
) -> dict[str, str]:
    env = cli_env(
        store_url,
        RESTAUTH_SELF_SERVICE="true",
        RESTAUTH_PASSWORD_FILE=password_file(tmp_path),
        RESTAUTH_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
        **extra,
    )
    if op is not None:
        env.update(
            RESTAUTH_PROVIDERS="op",
            RESTAUTH_OP_TYPE="oidc",
            RESTAUTH_OP_ISSUER=op.issuer,
            RESTAUTH_OP_AUDIENCE=RESOURCE_JWT,
            RESTAUTH_OP_ACCESS_TOKEN_TYPE="at+jwt",
        )
    return env


@pytest.fixture
def served(
    oidc_provider: OidcProvider, store_url: str, tmp_path: Path
) -> Iterator[tuple[str, Path]]:
    """gunicorn with 3 workers, the real provider and a password file; its URL and log."""
    port = free_port()
    command = gunicorn_command("tests.apps:application", port, "--workers", "3")
    env = server_env(store_url, tmp_path, oidc_provider)
    with server_process(command, port, env, cwd=ROOT) as url:
        yield url, tmp_path / "audit.jsonl"


@pytest.mark.parametrize("signed_in", ["provider-token", "password"])
def test_the_lifecycle_under_gunicorn(
    served: tuple[str, Path], oidc_provider: OidcProvider, signed_in: str
) -> None:
    url, audit = served
    if signed_in == "password":
        auth, user = basic("jenkins", PASSWORD), "jenkins"
    else:
        tokens = oidc_provider.user_tokens("carol", resource=RESOURCE_JWT, scope="openid read")
        auth, user = bearer(tokens["access_token"]), "carol"
    api = url + API
    created = requests.post(
        api, json={"name": "tokenName", "expirationDuration": 90}, headers=auth, timeout=10
    )
    assert created.status_code == 201, created.text
    token = created.json()
    assert created.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert created.headers["Cache-Control"] == "no-store"
    raw = token["rawToken"]
    for _ in range(6):  # every worker knows it
        used = requests.get(url + "/rest/api/2/myself", headers=bearer(raw), timeout=10)
        assert used.text == f"hello {user} via Bearer"
    assert requests.get(url, auth=(user, raw), timeout=10).text == f"hello {user} via Basic"
    listed = requests.get(api, headers=auth, timeout=10).json()
    assert [t["id"] for t in listed] == [token["id"]]
    assert raw not in json.dumps(listed)
    assert requests.delete(f"{api}/{token['id']}", headers=auth, timeout=10).status_code == 204

    def refused_everywhere() -> bool:
        answers = [requests.get(url, headers=bearer(raw), timeout=10) for _ in range(6)]
        return all(a.status_code == 401 for a in answers)

    eventually(refused_everywhere, "every worker refuses the revoked token", timeout=3)
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    events = [(e["event"], e["actor"], e["owner"], e["token"]) for e in lines if "event" in e]
    assert events == [
        ("token_created", user, user, f"id:{token['id']}"),
        ("token_revoked", user, user, f"id:{token['id']}"),
    ]
    assert raw not in audit.read_text()
    assert PASSWORD not in audit.read_text()


def test_the_examples_run_as_printed(served: tuple[str, Path], oidc_provider: OidcProvider) -> None:
    """examples/self_service: the curl script with a provider token, the
    requests script with a password; each creates, lists, uses and revokes."""
    need(shutil.which("jq") is not None, "jq is not installed (apt-get install jq)")
    url, _ = served
    jwt = oidc_provider.user_tokens("dave", resource=RESOURCE_JWT, scope="openid")["access_token"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("RESTAUTH_")}
    shell = subprocess.run(
        ["bash", str(EXAMPLES / "pat.sh")],
        env={**base, "BASE_URL": url, "AUTH": f"Bearer {jwt}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    python = subprocess.run(
        [sys.executable, str(EXAMPLES / "pat.py")],
        env={**base, "BASE_URL": url, "BASIC_USER": "jenkins", "BASIC_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        timeout=60,
    )
    for done in (shell, python):
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert out.count("created token ") == 1
        assert out.count("listed ") == 1
        assert "with the token: 200" in out
        assert "revoked token " in out


# -- the per-user limit under many processes ------------------------------------------------


def test_many_workers_creating_at_once_never_exceed_the_limit(
    store_url_any: str, tmp_path: Path
) -> None:
    """16 requests at once, spread over 4 gunicorn workers (processes), for
    one user allowed 3 tokens: 3 are made, 13 refused; on SQLite and PostgreSQL."""
    port = free_port()
    command = gunicorn_command("tests.apps:application", port, "--workers", "4")
    env = server_env(store_url_any, tmp_path, RESTAUTH_TOKEN_MAX_PER_USER="3")
    with server_process(command, port, env, cwd=ROOT) as url:
        auth = basic("jenkins", PASSWORD)
        for _ in range(8):  # every worker has checked the password and opened the store
            assert requests.get(url + API, headers=auth, timeout=10).status_code == 200
        start = threading.Barrier(16)
        answers: list[requests.Response] = []

        def create(number: int) -> None:
            start.wait()
            answers.append(
                requests.post(url + API, json={"name": f"n{number}"}, headers=auth, timeout=30)
            )

        threads = [threading.Thread(target=create, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [201] * 3 + [400] * 13, [a.text for a in answers]
        assert {a.json()["error"] for a in answers if a.status_code == 400} == {"limit_exceeded"}
    store = open_store(store_url_any, timeout=5)
    try:
        active = [r for r in store.list("jenkins") if r.status(time.time()) == "active"]
        assert len(active) == 3
        made = {a.json()["id"] for a in answers if a.status_code == 201}
        assert {r.token_id for r in active} == made
        assert all(token_format.is_token_id(i) for i in made)
    finally:
        store.close()
