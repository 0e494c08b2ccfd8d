"""The CLI and gunicorn with RESTAUTH_PROVIDERS pointing at a real oidc-provider.

The issue's definition of done: under gunicorn, 200 with the right
REMOTE_USER for a JWT, an introspected opaque token and a userinfo-validated
user token; 401 for hostile tokens; 503 when the provider is down and the
token is unknown. And ``restauth check``/``userinfo``/``config`` as typed.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests

from .helpers import RESTAUTH, ROOT, cli_env, free_port, gunicorn_command, server_process
from .oidc_provider import (
    RESOURCE_JWT,
    RESOURCE_OPAQUE,
    RESOURCE_SERVER,
    OidcProvider,
)

pytestmark = pytest.mark.slow


def provider_env(op: OidcProvider, store_url: str) -> dict[str, str]:
    return cli_env(
        store_url,
        RESTAUTH_PROVIDERS="op,opi,opu",
        RESTAUTH_OP_TYPE="oidc",
        RESTAUTH_OP_ISSUER=op.issuer,
        RESTAUTH_OP_AUDIENCE=RESOURCE_JWT,
        RESTAUTH_OP_ACCESS_TOKEN_TYPE="at+jwt",
        RESTAUTH_OP_SERVICE_ACCOUNTS="api-client=svc-api",
        RESTAUTH_OPI_TYPE="oidc",
        RESTAUTH_OPI_ISSUER=op.issuer,
        RESTAUTH_OPI_VALIDATION="introspection",
        RESTAUTH_OPI_CLIENT_ID=RESOURCE_SERVER[0],
        RESTAUTH_OPI_CLIENT_SECRET=RESOURCE_SERVER[1],
        RESTAUTH_OPI_AUDIENCE=RESOURCE_OPAQUE,
        RESTAUTH_OPU_TYPE="oauth2",
        RESTAUTH_OPU_USERINFO_URL=f"{op.issuer}/me",
        RESTAUTH_OPU_USERNAME_ATTRIBUTE="preferred_username",
        RESTAUTH_HTTP_TIMEOUT="2",
        RESTAUTH_UPSTREAM_BACKOFF="0",
    )


def _alg_none(token: str) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
    return f"{header}.{token.split('.')[1]}."


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RESTAUTH, *args], env=env, capture_output=True, text=True, timeout=60)


def test_check_shows_provider_validation_user_scopes_expiry(
    oidc_provider: OidcProvider, store_url: str
) -> None:
    env = provider_env(oidc_provider, store_url)
    token = oidc_provider.user_tokens("bob", resource=RESOURCE_JWT, scope="openid read write")
    checked = run("check", "--bearer", token["access_token"], env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    out = checked.stdout
    assert "bob" in out
    assert "jwt (Bearer)" in out
    assert "provider:" in out
    assert "op" in out
    assert "read write" in out
    assert "expires:" in out

    opaque = oidc_provider.user_tokens("alice", resource=RESOURCE_OPAQUE, scope="openid read")
    checked = run("check", "--bearer", opaque["access_token"], "--json", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    outcome = json.loads(checked.stdout)
    assert outcome["identity"]["method"] == "introspection"
    assert outcome["identity"]["provider"] == "opi"

    expired = oidc_provider.mint({"exp": int(time.time()) - 100, "iat": int(time.time()) - 400})
    refused = run("check", "--bearer", expired, env=env)
    assert refused.returncode == 1
    assert "ExpiredSignatureError" in refused.stdout


def test_userinfo_suggests_the_username_attribute(
    oidc_provider: OidcProvider, store_url: str
) -> None:
    env = provider_env(oidc_provider, store_url)
    token = oidc_provider.user_tokens("alice")["access_token"]
    shown = run("userinfo", "--provider", "opu", token, env=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert '"email": "Alice@Example.com"' in shown.stdout
    assert "preferred_username" in shown.stdout
    assert "<- used now" in shown.stdout
    assert "REMOTE_USER would be 'alice'" in shown.stdout

    machine = oidc_provider.client_credentials(RESOURCE_JWT)
    env_without_mapping = {**env, "RESTAUTH_OP_SERVICE_ACCOUNTS": ""}
    shown = run("userinfo", "--provider", "op", machine, env=env_without_mapping)
    assert shown.returncode == 0
    assert '"client_id": "api-client"' in shown.stdout
    assert "maps to no user" in shown.stdout
    assert "SERVICE_ACCOUNTS" in shown.stdout

    assert run("userinfo", "--provider", "nope", token, env=env).returncode == 2
    assert run("userinfo", "--provider", "opu", "made-up", env=env).returncode == 1


def test_config_checks_each_provider(oidc_provider: OidcProvider, store_url: str) -> None:
    env = provider_env(oidc_provider, store_url)
    shown = run("config", env=env)
    assert shown.returncode == 0, shown.stdout
    assert "discovery" in shown.stdout
    assert "key set: 1 signing key(s)" in shown.stdout
    assert "introspection endpoint: answers" in shown.stdout

    broken = {
        **env,
        "RESTAUTH_OPI_CLIENT_SECRET": "wrong",
        "RESTAUTH_OPU_USERINFO_URL": f"http://127.0.0.1:{free_port()}/me",
    }
    shown = run("config", env=broken)
    assert shown.returncode == 1
    assert "Problem: provider opi" in shown.stdout
    assert "CLIENT_SECRET" in shown.stdout
    assert "Problem: provider opu" in shown.stdout
    assert "unreachable" in shown.stdout


@pytest.fixture
def gunicorn(own_oidc_provider: OidcProvider, store_url: str) -> Iterator[str]:
    port = free_port()
    command = gunicorn_command("tests.apps:application", port, "--workers", "2")
    with server_process(command, port, provider_env(own_oidc_provider, store_url), cwd=ROOT) as url:
        yield url


def test_done_when_under_gunicorn(own_oidc_provider: OidcProvider, gunicorn: str) -> None:
    op = own_oidc_provider

    def get(token: str) -> requests.Response:
        return requests.get(gunicorn, headers={"Authorization": f"Bearer {token}"}, timeout=20)

    jwt_user = op.user_tokens("bob", resource=RESOURCE_JWT, scope="openid read")["access_token"]
    opaque = op.user_tokens("alice", resource=RESOURCE_OPAQUE, scope="openid read")
    userinfo_token = op.user_tokens("carol")["access_token"]
    for _ in range(4):  # both workers
        assert get(jwt_user).text == "hello bob via Bearer"
        assert get(op.client_credentials(RESOURCE_JWT)).text == "hello svc-api via Bearer"
        assert get(opaque["access_token"]).text == "hello alice via Bearer"
    assert get(userinfo_token).text.startswith("hello carol")

    hostile = [
        op.mint({"exp": int(time.time()) - 120, "iat": int(time.time()) - 400}),
        op.mint({"aud": "https://other.example"}),
        _alg_none(op.mint({})),
        op.mint({})[:-5] + "AAAAA",
        "not-a-token-at-all",
    ]
    for token in hostile:
        answer = get(token)
        assert answer.status_code == 401, token
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]

    unknown = op.user_tokens("dave", resource=RESOURCE_OPAQUE, scope="openid read")["access_token"]
    op.stop()
    answer = get(unknown)
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0
