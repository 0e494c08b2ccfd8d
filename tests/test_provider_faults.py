"""A provider that is down, slow, or answers garbage: tokens already
validated keep working, a token that cannot be checked gets 503 with
Retry-After (never 401), and recovery needs no restart."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.decision import Gatekeeper
from restauth_wsgi.providers.settings import ProviderSettings

from .fake_provider import FakeProvider, Reply, Request
from .helpers import CONNECT_DRIP, TLS_HANDSHAKE_DRIP, dripping_server, echo_app, eventually
from .oidc_provider import SigningKey

KEY = SigningKey("RS256")


def ask(client: Client, token: str) -> Any:
    return client.get("/", headers={"Authorization": f"Bearer {token}"})


def userinfo_client(
    fake: FakeProvider, settings: Settings, make_client: Callable[..., Client], **changes: Any
) -> Client:
    def me(request: Request) -> Reply:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return Reply(200, {"sub": token.upper()}) if token.startswith("good") else Reply(401, {})

    fake.route("/me", me)
    provider = ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake.url}/me")
    values = {"http_timeout": 1.0, "upstream_backoff": 0, **changes}
    return make_client(Settings(token_store=settings.token_store, providers=(provider,), **values))


@pytest.mark.parametrize(
    "mode",
    [
        "down",
        "slow",
        "stall",
        "truncated",
        "bad-gzip",
        "gzip-bomb",
        "garbage",
        "error",
        "huge",
        "trickle",
        "redirect",
    ],
)
def test_faults_answer_503_and_recover(
    fake_provider: FakeProvider, settings: Settings, make_client: Callable[..., Client], mode: str
) -> None:
    client = userinfo_client(fake_provider, settings, make_client)
    assert ask(client, "good-seen").status_code == 200

    if mode == "down":
        fake_provider.stop()
    else:
        fake_provider.mode = mode
        fake_provider.delay = 3.0
    assert ask(client, "good-seen").status_code == 200, "already validated: from the cache"
    response = ask(client, "good-new")
    assert response.status_code == 503, response.get_data(as_text=True)
    assert int(response.headers["Retry-After"]) > 0
    assert json.loads(response.get_data())["error"] == "temporarily_unavailable"
    assert "WWW-Authenticate" not in response.headers

    if mode == "down":
        fake_provider.start()
    fake_provider.mode = "ok"
    eventually(lambda: ask(client, "good-new").status_code == 200, "recovered without a restart")


def test_a_provider_that_sends_its_head_a_line_at_a_time_is_cut_at_the_timeout(
    fake_provider: FakeProvider, settings: Settings, make_client: Callable[..., Client]
) -> None:
    # Each header line within the per-receive timeout: requests alone would
    # wait for as long as the provider went on.
    client = userinfo_client(fake_provider, settings, make_client)
    fake_provider.mode, fake_provider.delay = "slow-head", 8.0
    answer = ask(client, "good-new")
    assert answer.status_code == 503
    eventually(lambda: fake_provider.cut_off, "the connection was cut before the head was done")


def test_backoff_answers_503_at_once_without_calling(
    fake_provider: FakeProvider, settings: Settings, make_client: Callable[..., Client]
) -> None:
    client = userinfo_client(fake_provider, settings, make_client, upstream_backoff=30)
    fake_provider.mode = "error"
    for token in ("good-1", "good-2", "good-3"):  # 5xx for three different tokens in a row
        assert ask(client, token).status_code == 503
    calls = fake_provider.calls["/me"]
    for token in ("good-4", "good-5", "good-6"):
        refused = ask(client, token)
        assert refused.status_code == 503
        assert 1 <= int(refused.headers["Retry-After"]) <= 30, "the backoff actually applied"
    assert fake_provider.calls["/me"] == calls, "a failing provider is not asked again at once"


def test_a_down_provider_is_backed_off_at_its_first_failure(
    fake_provider: FakeProvider, settings: Settings, make_client: Callable[..., Client]
) -> None:
    client = userinfo_client(fake_provider, settings, make_client, upstream_backoff=30)
    fake_provider.mode = "slow"
    assert ask(client, "good-1").status_code == 503
    calls = fake_provider.calls["/me"]
    assert ask(client, "good-2").status_code == 503
    assert fake_provider.calls["/me"] == calls


def test_one_token_the_provider_fails_on_does_not_take_it_down(
    fake_provider: FakeProvider, settings: Settings, make_client: Callable[..., Client]
) -> None:
    def me(request: Request) -> Reply:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token == "poison":
            return Reply(500, {"error": "server_error"})
        return Reply(200, {"sub": token.upper()}) if token.startswith("good") else Reply(401, {})

    client = userinfo_client(fake_provider, settings, make_client, upstream_backoff=30)
    fake_provider.route("/me", me)
    for n in range(5):  # sent again and again, as an attacker would
        poisoned = ask(client, "poison")
        assert poisoned.status_code == 503
        assert poisoned.headers["Retry-After"] == "30", "that token's own backoff"
        assert ask(client, f"good-{n}").status_code == 200, "everyone else is served"
    assert fake_provider.calls["/me"] == 1 + 5, "the poisoned token is asked once per backoff"


def jwt_client(
    fake: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
    clock: Callable[[], float] | None = None,
    **changes: Any,
) -> Client:
    provider = ProviderSettings(
        "idp",
        type="oidc",
        issuer="https://idp.example",
        audience=("api",),
        jwks_url=f"{fake.url}/jwks",
    )
    values = {"http_timeout": 1.0, "upstream_backoff": 0, "jwks_cooldown": 1, **changes}
    configured = Settings(token_store=settings.token_store, providers=(provider,), **values)
    if clock is None:
        return make_client(configured)
    gatekeeper = Gatekeeper.from_settings(configured, clock=clock)
    return Client(LintMiddleware(RestAuthMiddleware(echo_app, configured, gatekeeper=gatekeeper)))


def token(key: SigningKey = KEY, **claims: Any) -> str:
    now = int(time.time())
    return key.sign(
        {
            "iss": "https://idp.example",
            "aud": "api",
            "sub": "alice",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
    )


def test_key_set_down_at_first_use_is_503_then_recovers(
    fake_provider: FakeProvider, settings: Settings, make_client: Callable[..., Client]
) -> None:
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk()]})
    fake_provider.mode = "error"
    now = [time.time()]
    client = jwt_client(fake_provider, settings, make_client, clock=lambda: now[0])
    assert ask(client, token()).status_code == 503
    fake_provider.mode = "ok"
    assert ask(client, token()).status_code == 503, "not fetched again at once"
    now[0] += 1.1  # the cooldown also spaces out retries of a failed first fetch
    assert ask(client, token()).status_code == 200


def test_failed_refresh_keeps_the_last_good_keys(
    fake_provider: FakeProvider, settings: Settings, make_client: Callable[..., Client]
) -> None:
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk()]})
    now = [time.time()]
    client = jwt_client(fake_provider, settings, make_client, clock=lambda: now[0])
    assert ask(client, token()).status_code == 200
    fake_provider.mode = "garbage"
    now[0] += 1.1
    rotated = SigningKey("RS256")
    # A new kid while the provider answers garbage: it may be a real new
    # key, so it cannot be judged (503); the known key still works.
    assert ask(client, token(rotated, jti="1")).status_code == 503
    assert ask(client, token(jti="2")).status_code == 200
    fake_provider.mode = "ok"
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk(), rotated.public_jwk()]})
    now[0] += 1.1
    assert ask(client, token(rotated, jti="3")).status_code == 200


def test_discovered_endpoints_must_be_https(
    fake_provider: FakeProvider, settings: Settings, make_client: Callable[..., Client]
) -> None:
    issuer = fake_provider.url
    fake_provider.json(
        "/.well-known/openid-configuration",
        {"issuer": issuer, "jwks_uri": "http://keys.example.com/jwks"},
    )
    provider = ProviderSettings("idp", type="oidc", issuer=issuer, audience=("api",))
    client = make_client(Settings(token_store=settings.token_store, providers=(provider,)))
    assert (
        ask(
            client, KEY.sign({"iss": issuer, "aud": "api", "exp": int(time.time()) + 60})
        ).status_code
        == 503
    )


def test_provider_down_at_start_up_is_not_a_start_up_error(tmp_path: Any) -> None:
    provider = ProviderSettings("idp", type="oidc", issuer="http://127.0.0.1:9", audience=("api",))
    middleware = RestAuthMiddleware(
        echo_app, settings=Settings(token_store=f"sqlite://{tmp_path}/t.db", providers=(provider,))
    )
    token = KEY.sign({"iss": "http://127.0.0.1:9", "aud": "api", "exp": int(time.time()) + 60})
    assert ask(Client(middleware), token).status_code == 503


def test_a_provider_reached_through_a_proxy_is_cut_at_the_timeout_too(
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests honours HTTP_PROXY/HTTPS_PROXY; the proxy's connections were
    # pooled by a manager the deadline did not reach, so a proxy (or the
    # provider behind it) sending its head a line at a time held the request.
    proxy = FakeProvider()
    try:
        proxy.mode, proxy.delay = "slow-head", 8.0
        for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("http_proxy", proxy.url)
        client = userinfo_client(fake_provider, settings, make_client)
        answer = ask(client, "good-new")
        assert answer.status_code == 503
        assert proxy.requests, "the call went through the proxy"
        assert fake_provider.calls["/me"] == 0
        eventually(lambda: proxy.cut_off, "the proxy's connection was cut before the head was done")
    finally:
        proxy.stop()


@pytest.mark.parametrize("where", ["tls-handshake", "proxy-connect"])
def test_a_connection_that_drips_while_it_is_made_is_cut_at_the_timeout(
    settings: Settings,
    make_client: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    # A server that starts a TLS record and sends a byte of it every 0.3 s
    # (CPython bounds a handshake as a whole: this keeps it so), or an
    # HTTPS_PROXY that answers CONNECT a header line every 0.3 s (http.client
    # reads that answer with the per-receive timeout only: it held the
    # request for as long as the proxy went on).
    drip = TLS_HANDSHAKE_DRIP if where == "tls-handshake" else CONNECT_DRIP
    with dripping_server(*drip) as (port, cut_off):
        url = f"https://127.0.0.1:{port}/me"
        if where == "proxy-connect":
            for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
            monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
            url = "https://127.0.0.1:9/me"  # never reached: the proxy holds the tunnel
        provider = ProviderSettings("idp", type="oauth2", userinfo_url=url)
        client = make_client(
            Settings(
                token_store=settings.token_store,
                providers=(provider,),
                http_timeout=1.0,
                upstream_backoff=0,
            )
        )
        assert ask(client, "good-new").status_code == 503
        assert cut_off.wait(10), "the connection was cut while it was made"
