"""Bearer tokens from a second real provider: django-oauth-toolkit on loopback.

DOT differs from oidc-provider where it matters to a resource server: its
introspection answers name the ``client_id`` but no ``aud`` (the middleware
then matches the AUDIENCE against the client id), only its RFC 8414
document lists the introspection endpoint, and its userinfo fails with a
500 for a token without a user.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from werkzeug.test import Client

from restauth_wsgi import Settings
from restauth_wsgi.providers.settings import ProviderSettings

from .dot_provider import (
    API_CLIENT,
    JWT_CLIENT,
    JWT_SERVICE,
    OTHER_CLIENT,
    SERVICE_CLIENT,
    DotProvider,
)

pytestmark = pytest.mark.slow


def introspecting(dot: DotProvider, **overrides: Any) -> ProviderSettings:
    """Introspection of DOT's opaque tokens, as the API client's resource server."""
    client_id, client_secret = dot.introspection_client
    values: dict[str, Any] = {
        "type": "oidc",
        "issuer": dot.issuer,
        "validation": "introspection",
        "client_id": client_id,
        "client_secret": client_secret,
        "audience": (API_CLIENT[0],),
        "introspection_url": dot.introspection_url,
    }
    return ProviderSettings("dot", **{**values, **overrides})


def jwt_validating(dot: DotProvider, **overrides: Any) -> ProviderSettings:
    """Local validation of DOT's JWT access tokens (keys from discovery's jwks_uri)."""
    values: dict[str, Any] = {
        "type": "oidc",
        "issuer": dot.issuer,
        "audience": (JWT_CLIENT[0],),
        "access_token_type": ("at+jwt",),
    }
    return ProviderSettings("dotjwt", **{**values, **overrides})


def userinfo(dot: DotProvider, **overrides: Any) -> ProviderSettings:
    """DOT's userinfo endpoint, found by discovery."""
    values: dict[str, Any] = {"type": "oidc", "issuer": dot.issuer, "validation": "userinfo"}
    return ProviderSettings("dotu", **{**values, **overrides})


def ask(client: Client, token: str) -> tuple[int, dict[str, Any]]:
    response = client.get("/", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, json.loads(response.get_data())


@pytest.fixture
def with_providers(settings: Settings, make_client: Callable[..., Client]) -> Callable[..., Client]:
    def build(*providers: ProviderSettings, **changes: Any) -> Client:
        changed = Settings(token_store=settings.token_store, providers=providers, **changes)
        return make_client(changed)

    return build


# -- what DOT itself does (the tests below rely on it) ---------------------------------------


def test_dot_lists_introspection_only_in_its_rfc8414_metadata(dot_provider: DotProvider) -> None:
    openid = requests.get(dot_provider.discovery_url, timeout=10).json()
    assert openid["issuer"] == dot_provider.issuer
    assert openid["jwks_uri"] == dot_provider.jwks_url
    assert "introspection_endpoint" not in openid
    rfc8414 = requests.get(dot_provider.metadata_url, timeout=10).json()
    assert rfc8414["issuer"] == dot_provider.issuer
    assert rfc8414["introspection_endpoint"] == dot_provider.introspection_url
    strict = f"{dot_provider.base_url}/.well-known/oauth-authorization-server/o"
    assert requests.get(strict, timeout=10).json() == rfc8414


def test_dot_introspection_names_the_client_not_an_audience(dot_provider: DotProvider) -> None:
    user = dot_provider.introspect(dot_provider.user_token("alice"))
    assert user["active"] is True
    assert (user["client_id"], user["username"], user["scope"]) == (API_CLIENT[0], "alice", "read")
    assert "aud" not in user
    assert "sub" not in user
    service = dot_provider.introspect(dot_provider.client_credentials())
    assert service["client_id"] == SERVICE_CLIENT[0]
    assert "username" not in service


def test_token_that_breaks_userinfo_gets_a_500(dot_provider: DotProvider) -> None:
    assert dot_provider.userinfo(dot_provider.token_that_breaks_userinfo()).status_code == 500
    user = dot_provider.userinfo(dot_provider.user_token("alice", scope="openid read"))
    assert (user.status_code, user.json()) == (200, {"sub": str(dot_provider.users["alice"])})


# -- introspection -----------------------------------------------------------------------------


def test_introspection_accepts_a_users_opaque_token(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(introspecting(dot_provider))
    status, seen = ask(web, dot_provider.user_token("alice", scope="read write"))
    assert (status, seen["remote_user"]) == (200, "alice")
    identity = seen["identity"]
    assert (identity["method"], identity["provider"]) == ("introspection", "dot")
    assert identity["scopes"] == ["read", "write"]


def test_introspection_refuses_a_revoked_token(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    token = dot_provider.user_token("bob")
    assert ask(with_providers(introspecting(dot_provider)), token)[0] == 200
    dot_provider.revoke(token)
    status, body = ask(with_providers(introspecting(dot_provider)), token)
    assert (status, body["error"]) == (401, "invalid_token")


def test_introspection_refuses_an_expired_token(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    token = dot_provider.user_token("bob")
    dot_provider.expire(token)
    status, body = ask(with_providers(introspecting(dot_provider)), token)
    assert (status, body["error"]) == (401, "invalid_token")


def test_introspection_refuses_another_clients_token(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(introspecting(dot_provider))
    status, body = ask(web, dot_provider.user_token("alice", client=OTHER_CLIENT))
    assert (status, body["error"]) == (401, "invalid_token")


def test_introspection_maps_client_credentials_to_a_service_account(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    token = dot_provider.client_credentials()
    refused = with_providers(introspecting(dot_provider))
    assert ask(refused, token)[0] == 401, "another client id than the audience"
    web = with_providers(
        introspecting(
            dot_provider,
            audience=(API_CLIENT[0], SERVICE_CLIENT[0]),
            service_accounts={SERVICE_CLIENT[0]: "svc-dot"},
        )
    )
    status, seen = ask(web, token)
    assert (status, seen["remote_user"]) == (200, "svc-dot")


def test_introspection_with_a_wrong_secret_is_503_not_401(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(introspecting(dot_provider, client_secret="wrong"))
    status, body = ask(web, dot_provider.user_token("alice"))
    assert (status, body["error"]) == (503, "temporarily_unavailable")


def test_introspection_endpoint_is_discovered_from_rfc8414_metadata(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(introspecting(dot_provider, introspection_url=None))
    status, seen = ask(web, dot_provider.user_token("alice"))
    assert status == 200, seen
    assert seen["remote_user"] == "alice"


# -- JWT access tokens ---------------------------------------------------------------------------


def test_jwt_access_tokens_are_validated_locally(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(jwt_validating(dot_provider))
    token = dot_provider.user_token("alice", client=JWT_CLIENT, scope="read write")
    status, seen = ask(web, token)
    assert (status, seen["remote_user"]) == (200, str(dot_provider.users["alice"]))
    identity = seen["identity"]
    assert (identity["method"], identity["provider"]) == ("jwt", "dotjwt")
    assert identity["scopes"] == ["read", "write"]
    assert identity["claims"]["client_id"] == JWT_CLIENT[0]
    assert identity["expires_at"] == identity["claims"]["exp"]


def test_jwt_of_another_client_is_refused_and_a_service_maps(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    service = dot_provider.client_credentials(JWT_SERVICE)
    status, body = ask(with_providers(jwt_validating(dot_provider)), service)
    assert (status, body["error"]) == (401, "invalid_token")
    web = with_providers(
        jwt_validating(
            dot_provider,
            audience=(JWT_SERVICE[0],),
            service_accounts={JWT_SERVICE[0]: "svc-jwt"},
        )
    )
    assert ask(web, service)[1]["remote_user"] == "svc-jwt"


def test_revoked_jwt_is_still_accepted_locally_but_not_by_introspection(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    token = dot_provider.user_token("bob", client=JWT_CLIENT)
    dot_provider.revoke(token, client=JWT_CLIENT)
    assert ask(with_providers(jwt_validating(dot_provider)), token)[0] == 200
    by_introspection = introspecting(dot_provider, audience=(JWT_CLIENT[0],))
    assert ask(with_providers(by_introspection), token)[0] == 401


# -- userinfo ------------------------------------------------------------------------------------


def test_userinfo_accepts_a_users_openid_token(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(userinfo(dot_provider))
    status, seen = ask(web, dot_provider.user_token("alice", scope="openid read"))
    assert (status, seen["remote_user"]) == (200, str(dot_provider.users["alice"]))
    assert seen["identity"]["method"] == "userinfo"
    status, body = ask(web, dot_provider.user_token("alice", scope="read"))
    assert (status, body["error"]) == (401, "invalid_token"), "DOT's userinfo needs openid"


def test_one_token_that_breaks_userinfo_does_not_stop_the_others(
    dot_provider: DotProvider, with_providers: Callable[..., Client]
) -> None:
    web = with_providers(userinfo(dot_provider))
    breaking = dot_provider.token_that_breaks_userinfo()
    for _ in range(3):
        assert ask(web, breaking)[0] != 200
    status, seen = ask(web, dot_provider.user_token("bob", scope="openid read"))
    assert status == 200, seen
    assert seen["remote_user"] == str(dot_provider.users["bob"])
