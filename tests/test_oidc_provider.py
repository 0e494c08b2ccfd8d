"""Bearer tokens from a real OpenID provider (oidc-provider on loopback).

Each validation mode end to end through the middleware; identity mapping;
key rotation; revocation seen through introspection; the provider stopped
and restarted; one upstream call for many concurrent first uses.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.decision import Gatekeeper
from restauth_wsgi.providers.settings import ProviderSettings

from .fake_provider import FakeProvider
from .helpers import echo_app
from .oidc_provider import (
    RESOURCE_JWT,
    RESOURCE_OPAQUE,
    RESOURCE_SERVER,
    RESOURCE_SERVER_POST,
    OidcProvider,
    SigningKey,
)

pytestmark = pytest.mark.slow


def jwt_provider(op: OidcProvider, **overrides: Any) -> ProviderSettings:
    """The provider validating the OP's JWT access tokens locally."""
    values: dict[str, Any] = {
        "type": "oidc",
        "issuer": op.issuer,
        "audience": (RESOURCE_JWT,),
        "access_token_type": ("at+jwt",),
        "service_accounts": {"api-client": "svc-api"},
    }
    return ProviderSettings("op", **{**values, **overrides})


def introspecting(op: OidcProvider, **overrides: Any) -> ProviderSettings:
    """The provider introspecting the OP's opaque tokens."""
    values: dict[str, Any] = {
        "type": "oidc",
        "issuer": op.issuer,
        "validation": "introspection",
        "client_id": RESOURCE_SERVER[0],
        "client_secret": RESOURCE_SERVER[1],
        "audience": (RESOURCE_OPAQUE,),
        "service_accounts": {"api-client": "svc-api"},
    }
    return ProviderSettings("opi", **{**values, **overrides})


def userinfo(op: OidcProvider, **overrides: Any) -> ProviderSettings:
    """The provider asking the OP's userinfo endpoint."""
    values: dict[str, Any] = {
        "type": "oidc",
        "issuer": op.issuer,
        "validation": "userinfo",
        "username_attribute": ("preferred_username",),
    }
    return ProviderSettings("opu", **{**values, **overrides})


def ask(client: Client, token: str) -> tuple[int, dict[str, Any]]:
    response = client.get("/", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, json.loads(response.get_data())


@pytest.fixture
def with_providers(settings: Settings, make_client: Callable[..., Client]) -> Callable[..., Client]:
    def build(*providers: ProviderSettings, **changes: Any) -> Client:
        changed = Settings(token_store=settings.token_store, providers=providers, **changes)
        return make_client(changed)

    return build


class Clock:
    """A clock the test moves, for every part of the decision that keeps
    time (the provider's tokens are checked by it too: it starts now)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked(settings: Settings) -> Callable[..., tuple[Client, Clock]]:
    """A client whose decision keeps the time of a clock the test moves."""

    def build(*providers: ProviderSettings, **changes: Any) -> tuple[Client, Clock]:
        changed = Settings(token_store=settings.token_store, providers=providers, **changes)
        clock = Clock()
        gatekeeper = Gatekeeper.from_settings(changed, clock=clock)
        return Client(RestAuthMiddleware(echo_app, changed, gatekeeper=gatekeeper)), clock

    return build


# -- each validation mode ------------------------------------------------------------


def test_jwt_user_token(oidc_provider: OidcProvider, with_providers: Callable[..., Client]) -> None:
    client = with_providers(jwt_provider(oidc_provider))
    token = oidc_provider.user_tokens("bob", resource=RESOURCE_JWT, scope="openid read write")
    status, seen = ask(client, token["access_token"])
    assert status == 200
    assert seen["remote_user"] == "bob"
    identity = seen["identity"]
    assert identity["method"] == "jwt"
    assert identity["provider"] == "op"
    assert identity["scopes"] == ["read", "write"]
    assert identity["expires_at"] == identity["claims"]["exp"]


def test_jwt_client_credentials_map_to_a_service_account(
    oidc_provider: OidcProvider, with_providers: Callable[..., Client]
) -> None:
    token = oidc_provider.client_credentials(RESOURCE_JWT)
    status, seen = ask(with_providers(jwt_provider(oidc_provider)), token)
    assert (status, seen["remote_user"]) == (200, "svc-api")
    unmapped = with_providers(jwt_provider(oidc_provider, service_accounts={}))
    status, body = ask(unmapped, token)
    assert (status, body["error"]) == (401, "invalid_token")


@pytest.mark.parametrize(
    ("auth", "client"),
    [
        pytest.param("client_secret_basic", RESOURCE_SERVER, id="client_secret_basic"),
        pytest.param("client_secret_post", RESOURCE_SERVER_POST, id="client_secret_post"),
    ],
)
def test_introspection(
    oidc_provider: OidcProvider,
    with_providers: Callable[..., Client],
    auth: str,
    client: tuple[str, str],
) -> None:
    web = with_providers(
        introspecting(
            oidc_provider, client_id=client[0], client_secret=client[1], introspection_auth=auth
        )
    )
    user = oidc_provider.user_tokens("alice", resource=RESOURCE_OPAQUE, scope="openid read")
    status, seen = ask(web, user["access_token"])
    assert (status, seen["remote_user"]) == (200, "alice")
    assert seen["identity"]["method"] == "introspection"
    assert seen["identity"]["scopes"] == ["read"]
    status, seen = ask(web, oidc_provider.client_credentials(RESOURCE_OPAQUE))
    assert (status, seen["remote_user"]) == (200, "svc-api")


def test_introspection_with_wrong_client_secret_is_503_not_401(
    oidc_provider: OidcProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(introspecting(oidc_provider, client_secret="wrong"))
    status, body = ask(web, oidc_provider.client_credentials(RESOURCE_OPAQUE))
    assert (status, body["error"]) == (503, "temporarily_unavailable")


def test_userinfo_user_token_with_groups(
    oidc_provider: OidcProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(userinfo(oidc_provider))
    status, seen = ask(web, oidc_provider.user_tokens("alice")["access_token"])
    assert (status, seen["remote_user"]) == (200, "alice")
    assert seen["identity"]["method"] == "userinfo"
    assert seen["identity"]["groups"] == ["admins", "engineering"]


@pytest.mark.parametrize(
    ("user", "overrides", "remote_user"),
    [
        pytest.param("alice", {"username_attribute": ("email",)}, "Alice@Example.com", id="email"),
        pytest.param(
            "alice",
            {"username_attribute": ("email",), "username_lowercase": True},
            "alice@example.com",
            id="lowercase",
        ),
        pytest.param(
            "alice",
            {"username_attribute": ("email",), "username_strip_domain": ("example.com",)},
            "Alice",
            id="strip-domain",
        ),
        pytest.param(
            "alice",
            {
                "username_attribute": ("email",),
                "username_regex": r"(?i)(?P<user>[^@]+)@example\.com",
                "username_replacement": r"corp\\\g<user>",
                "username_lowercase": True,
            },
            "corp\\alice",
            id="regex",
        ),
        pytest.param(
            "alice",
            {"username_attribute": ("email",), "username_regex": r".*@other\.org"},
            None,
            id="regex-no-match",
        ),
        pytest.param(
            "bob",
            {"username_attribute": ("email",), "require_verified_email": True},
            None,
            id="unverified-email",
        ),
        pytest.param("bob", {"username_attribute": ("email",)}, "bob@example.com", id="email-bob"),
        pytest.param("alice", {"username_attribute": ("nothing", "sub")}, "alice", id="fallback"),
    ],
)
def test_identity_mapping(
    oidc_provider: OidcProvider,
    with_providers: Callable[..., Client],
    user: str,
    overrides: dict[str, Any],
    remote_user: str | None,
) -> None:
    web = with_providers(userinfo(oidc_provider, **overrides))
    status, seen = ask(web, oidc_provider.user_tokens(user)["access_token"])
    if remote_user is None:
        assert (status, seen["error"]) == (401, "invalid_token")
    else:
        assert (status, seen["remote_user"]) == (200, remote_user)


def test_several_providers_each_take_their_tokens(
    oidc_provider: OidcProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(
        jwt_provider(oidc_provider), introspecting(oidc_provider), userinfo(oidc_provider)
    )
    jwt_token = oidc_provider.user_tokens("bob", resource=RESOURCE_JWT, scope="openid read")
    opaque = oidc_provider.user_tokens("alice", resource=RESOURCE_OPAQUE, scope="openid read")
    assert ask(web, jwt_token["access_token"])[1]["identity"]["provider"] == "op"
    assert ask(web, opaque["access_token"])[1]["identity"]["provider"] == "opi"


# -- provider life: rotation, revocation, outage ---------------------------------------------


def test_key_rotation_costs_one_refetch(
    own_oidc_provider: OidcProvider,
    fake_provider: FakeProvider,
    with_providers: Callable[..., Client],
) -> None:
    op = own_oidc_provider
    fake_provider.proxy_to = op.issuer  # counts the JWKS fetches
    # The default cooldown (60 s): a rotation right after the first (routine)
    # fetch is seen at once, because only fetches for unknown kids use it up.
    web = with_providers(jwt_provider(op, jwks_url=f"{fake_provider.url}/jwks"))
    old = op.client_credentials(RESOURCE_JWT)
    assert ask(web, old)[0] == 200
    assert fake_provider.calls["/jwks"] == 1

    op.rotate_keys()
    new = op.client_credentials(RESOURCE_JWT)
    assert ask(web, new)[0] == 200
    assert ask(web, old)[0] == 200, "the old key is still published"
    assert fake_provider.calls["/jwks"] == 2
    newer_kid = op.mint({}, {"kid": "not-yet-published"})
    assert ask(web, newer_kid)[0] == 401
    assert fake_provider.calls["/jwks"] == 2, "the cooldown holds later unknown kids"


def test_a_refusal_for_an_unknown_kid_is_not_remembered(
    own_oidc_provider: OidcProvider,
    fake_provider: FakeProvider,
    clocked: Callable[..., tuple[Client, Clock]],
) -> None:
    # A token signed with a key the provider has not published yet (a
    # rotation seen early by one client) is refused; the same token, asked
    # of the same middleware once the key is out and the cooldown is over,
    # is accepted: its refusal was not remembered (refusals are, for
    # RESTAUTH_NEGATIVE_CACHE_TTL, 10 s by default).
    op = own_oidc_provider
    fake_provider.proxy_to = op.issuer
    web, clock = clocked(jwt_provider(op, jwks_url=f"{fake_provider.url}/jwks"), jwks_cooldown=1)
    assert ask(web, op.client_credentials(RESOURCE_JWT))[0] == 200
    rotated = SigningKey("RS256")
    rotated.kid = "rotated-soon"
    rotated.jwk["kid"] = "rotated-soon"
    op.keys.insert(0, rotated)  # signs from now on; published at the restart
    early = op.mint({}, {"kid": "rotated-soon"})
    assert ask(web, early)[0] == 401, "not published yet: fetched once, still unknown"
    fetches = fake_provider.calls["/jwks"]
    op.stop()
    op.start()
    clock.now += 1.1  # past the 1 s cooldown between fetches
    assert ask(web, early)[0] == 200, "asked about again, not answered from memory"
    assert fake_provider.calls["/jwks"] == fetches + 1


def test_one_token_that_breaks_userinfo_does_not_take_the_provider_down(
    oidc_provider: OidcProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(userinfo(oidc_provider), upstream_backoff=30)
    poison = oidc_provider.user_tokens("explode", scope="openid profile")["access_token"]
    for _ in range(3):
        status, body = ask(web, poison)
        assert status == 503, body
    alice = oidc_provider.user_tokens("alice", scope="openid profile")["access_token"]
    assert ask(web, alice) == (200, ask(web, alice)[1])
    assert ask(web, alice)[1]["remote_user"] == "alice"


def test_revocation_is_seen_after_the_cache_ttl(
    oidc_provider: OidcProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(introspecting(oidc_provider, cache_ttl=1))
    token = oidc_provider.user_tokens("alice", resource=RESOURCE_OPAQUE, scope="openid read")
    assert ask(web, token["access_token"])[0] == 200
    oidc_provider.revoke(token["access_token"])
    assert ask(web, token["access_token"])[0] == 200, "still cached"
    # Real time, not an injected clock: the answer's time to live is the
    # shared cache's to keep (cachelib's, or Redis's own clock).
    time.sleep(1.2)
    assert ask(web, token["access_token"])[0] == 401


def test_provider_down_then_back(
    own_oidc_provider: OidcProvider, with_providers: Callable[..., Client]
) -> None:
    op = own_oidc_provider
    web = with_providers(jwt_provider(op), introspecting(op), upstream_backoff=0, http_timeout=2)
    seen_before = op.user_tokens("alice", resource=RESOURCE_OPAQUE, scope="openid read")
    never_seen = op.user_tokens("bob", resource=RESOURCE_OPAQUE, scope="openid read")
    assert ask(web, seen_before["access_token"])[0] == 200
    assert ask(web, op.client_credentials(RESOURCE_JWT))[0] == 200  # fetches the keys
    new_jwt = op.client_credentials(RESOURCE_JWT)

    op.stop()
    assert ask(web, seen_before["access_token"])[0] == 200, "served from the cache"
    assert ask(web, new_jwt)[0] == 200, "JWTs are checked locally with the kept keys"
    response = web.get("/", headers={"Authorization": f"Bearer {never_seen['access_token']}"})
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert json.loads(response.get_data())["error"] == "temporarily_unavailable"

    op.start()  # it forgot every opaque token it issued: ask for a new one
    fresh = op.user_tokens("bob", resource=RESOURCE_OPAQUE, scope="openid read")
    assert ask(web, fresh["access_token"])[0] == 200, "recovered without a restart"
    assert ask(web, never_seen["access_token"])[0] == 401, "forgotten by the provider"


def test_concurrent_first_uses_make_one_introspection_call(
    oidc_provider: OidcProvider,
    fake_provider: FakeProvider,
    with_providers: Callable[..., Client],
) -> None:
    fake_provider.proxy_to = oidc_provider.issuer
    web = with_providers(
        introspecting(oidc_provider, introspection_url=f"{fake_provider.url}/token/introspection")
    )
    token = oidc_provider.client_credentials(RESOURCE_OPAQUE)
    barrier = threading.Barrier(20)
    statuses: list[int] = []

    def first_use() -> None:
        barrier.wait()
        statuses.append(ask(web, token)[0])

    threads = [threading.Thread(target=first_use) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * 20
    assert fake_provider.calls["/token/introspection"] == 1
