"""Two server processes on different ports, standing for two hosts, sharing one
PostgreSQL token store and one Redis cache: they agree on every token at once,
share provider answers, and ride out Redis and PostgreSQL outages."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
import requests

from restauth_wsgi.tokens.feed import POLL_SECONDS, STALE_SECONDS

from .fake_provider import FakeProvider
from .helpers import (
    RESTAUTH,
    ROOT,
    cli_env,
    eventually,
    free_port,
    gunicorn_command,
    server_process,
)
from .oidc_provider import RESOURCE_OPAQUE, RESOURCE_SERVER, OidcProvider
from .services import ServerProcess, TcpProxy, postgres_database, redis_server

pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    hosts: list[str]
    env: dict[str, str]
    redis: ServerProcess
    postgres: TcpProxy
    introspection: FakeProvider
    provider: OidcProvider

    def get(self, host: int, token: str) -> requests.Response:
        return requests.get(
            self.hosts[host], headers={"Authorization": f"Bearer {token}"}, timeout=20
        )

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [RESTAUTH, *args], env=self.env, capture_output=True, text=True, check=True, timeout=60
        )
        return done.stdout


@pytest.fixture
def cluster(oidc_provider: OidcProvider, fake_provider: FakeProvider) -> Iterator[Cluster]:
    fake_provider.proxy_to = oidc_provider.issuer  # counts introspection calls
    with ExitStack() as stack:
        pg_url = stack.enter_context(postgres_database())
        host, port = pg_url.split("@", 1)[1].split("/", 1)[0].split(":")
        proxy = TcpProxy(host, int(port))
        stack.callback(proxy.cut)
        redis = stack.enter_context(redis_server())
        env = cli_env(
            pg_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}"),
            RESTAUTH_CACHE=f"redis://127.0.0.1:{redis.port}/0",
            RESTAUTH_TOKEN_STORE_TIMEOUT="2",
            RESTAUTH_PROVIDERS="op",
            RESTAUTH_OP_TYPE="oidc",
            RESTAUTH_OP_ISSUER=oidc_provider.issuer,
            RESTAUTH_OP_VALIDATION="introspection",
            RESTAUTH_OP_INTROSPECTION_URL=f"{fake_provider.url}/token/introspection",
            RESTAUTH_OP_CLIENT_ID=RESOURCE_SERVER[0],
            RESTAUTH_OP_CLIENT_SECRET=RESOURCE_SERVER[1],
            RESTAUTH_OP_AUDIENCE=RESOURCE_OPAQUE,
        )
        hosts = []
        for _ in range(2):
            port_ = free_port()
            command = gunicorn_command("tests.apps:application", port_, "--workers", "2")
            hosts.append(stack.enter_context(server_process(command, port_, env, cwd=ROOT)))
        yield Cluster(hosts, env, redis, proxy, fake_provider, oidc_provider)


def test_api_tokens_agree_on_both_hosts_and_revocation_is_seen_within_the_bound(
    cluster: Cluster,
) -> None:
    token = cluster.cli("token", "create", "--user", "alice").splitlines()[-1]
    for _ in range(4):  # every worker of both hosts
        for host in (0, 1):
            assert cluster.get(host, token).text == "hello alice via Bearer"
    cluster.cli("token", "revoke", token.split("_")[1])
    # The change feed's bound: a poll, and how stale a poll may be.
    time.sleep(POLL_SECONDS + STALE_SECONDS)
    for _ in range(4):
        for host in (0, 1):
            assert cluster.get(host, token).status_code == 401


def test_one_opaque_token_costs_one_introspection_in_all(cluster: Cluster) -> None:
    token = cluster.provider.user_tokens("alice", resource=RESOURCE_OPAQUE, scope="openid read")[
        "access_token"
    ]
    for _ in range(4):
        for host in (0, 1):
            assert cluster.get(host, token).text == "hello alice via Bearer"
    assert cluster.introspection.calls["/token/introspection"] == 1


def test_redis_outage_degrades_to_no_cache_and_recovers(cluster: Cluster) -> None:
    api_token = cluster.cli("token", "create", "--user", "alice").splitlines()[-1]
    first = cluster.provider.client_credentials(RESOURCE_OPAQUE)
    assert cluster.get(0, api_token).status_code == 200
    cluster.redis.stop()
    second = cluster.provider.user_tokens("bob", resource=RESOURCE_OPAQUE, scope="openid read")[
        "access_token"
    ]
    for _ in range(3):
        for host in (0, 1):
            assert cluster.get(host, api_token).status_code == 200
            assert cluster.get(host, second).text == "hello bob via Bearer"
            assert cluster.get(host, first).status_code in (200, 401)  # unmapped client: 401
    calls = cluster.introspection.calls["/token/introspection"]
    assert calls >= 2, "without the shared cache, hosts ask the provider themselves"

    cluster.redis.start()
    time.sleep(6)  # past the breaker's retry interval in every worker
    third = cluster.provider.user_tokens("carol", resource=RESOURCE_OPAQUE, scope="openid read")[
        "access_token"
    ]
    before = cluster.introspection.calls["/token/introspection"]
    for host in (0, 1, 0, 1):
        assert cluster.get(host, third).text == "hello carol via Bearer"
    assert cluster.introspection.calls["/token/introspection"] - before == 1, "shared again"


def test_postgresql_outage_is_503_for_api_tokens_only(cluster: Cluster) -> None:
    api_token = cluster.cli("token", "create", "--user", "alice").splitlines()[-1]
    provider_token = cluster.provider.user_tokens(
        "bob", resource=RESOURCE_OPAQUE, scope="openid read"
    )["access_token"]
    assert cluster.get(0, api_token).status_code == 200
    cluster.postgres.cut()
    for host in (0, 1):
        answer = cluster.get(host, api_token)
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"]
        assert cluster.get(host, provider_token).text == "hello bob via Bearer"
    cluster.postgres.restore()
    eventually(
        lambda: all(cluster.get(h, api_token).status_code == 200 for h in (0, 1, 0, 1, 0, 1)),
        "every worker of both hosts recovers",
    )
