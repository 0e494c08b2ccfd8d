"""Every preset, against a local server that answers as that provider documents.

The real services cannot be reached from here, so each preset's endpoints
are pointed at a fake provider serving the documented discovery, JWKS,
claim shapes and userinfo/check answers; JWTs are signed with the test's
own keys and carry the real issuers (Azure v1/v2 and ``ver``, Cognito
without ``aud``, Keycloak ``realm_access.roles``, GitHub ``login``, Slack
``"ok": false``...).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import Client

from restauth_wsgi import Settings
from restauth_wsgi.providers.presets import resolve
from restauth_wsgi.providers.settings import ProviderSettings

from .fake_provider import FakeProvider, Reply, Request
from .oidc_provider import SigningKey

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AZURE_V2 = f"https://login.microsoftonline.com/{TENANT}/v2.0"
AZURE_V1 = f"https://sts.windows.net/{TENANT}/"
B2C_ISSUER = f"https://contoso.b2clogin.com/{TENANT}/v2.0/"
OKTA = "https://dev-123456.okta.com/oauth2/default"
KEYCLOAK = "https://sso.example.com/realms/corp"
COGNITO = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
KEY = SigningKey("RS256")
EC_KEY = SigningKey("ES256")


def claims(**values: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iat": now, "nbf": now, "exp": now + 600}
    return {k: v for k, v in {**base, **values}.items() if v is not None}


# The access token of Microsoft's B2C docs (active-directory-b2c/access-tokens.md).
B2C_ACCESS = {
    "iss": B2C_ISSUER,
    "aud": "b2c-api",
    "oid": "1558f87f-452b-4757-bcd1-883",
    "sub": "1558f87f-452b-4757-bcd1-883",
    "name": "David",
    "tfp": "B2C_1_signin",
    "nonce": "anyRandomValue",
    "scp": "read",
    "azp": "38307aee-303c-4fff-8087-d8d2",
    "ver": "1.0",
}
# Microsoft's "Access token claims reference"
# (https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference).
AZURE_USER = {
    "iss": AZURE_V2,
    "aud": "api://orders",
    "ver": "2.0",
    "scp": "Orders.Read",
    "preferred_username": "Alice@contoso.com",
    "groups": ["g-finance"],
    "roles": ["Admin"],
    "azp": "spa-client",
}
AZURE_V1_USER = {
    "iss": AZURE_V1,
    "aud": "api://orders",
    "ver": "1.0",
    "scp": "Orders.Read",
    "upn": "alice@contoso.com",
    "appid": "spa-client",
}
# Okta's access token payload ("Validate access tokens",
# https://developer.okta.com/docs/guides/validate-access-tokens/): cid, scp, uid.
OKTA_USER = {
    "iss": OKTA,
    "aud": "api://default",
    "cid": "0oa1",
    "sub": "alice@example.com",
    "scp": ["orders.read"],
    "groups": ["Everyone"],
}
# A Keycloak access token as a realm issues it (typ Bearer, azp, realm_access; the
# "account" audience by default: https://www.keycloak.org/docs/latest/server_admin/#_audience).
KEYCLOAK_USER = {
    "iss": KEYCLOAK,
    "aud": ["orders-api", "account"],
    "typ": "Bearer",
    "azp": "web",
    "preferred_username": "alice",
    "realm_access": {"roles": ["offline_access", "orders-admin"]},
    "scope": "openid profile",
}
# Amazon Cognito's access token payload ("Understanding the access token",
# https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html).
COGNITO_USER = {
    "iss": COGNITO,
    "client_id": "app-client-1",
    "token_use": "access",
    "username": "alice",
    "cognito:groups": ["admins"],
    "scope": "aws.cognito.signin.user.admin",
    "sub": "5f6e-...",
}


def jwt_cases() -> list[Any]:
    def case(
        id: str,
        preset: dict[str, Any],
        body: dict[str, Any],
        status: int,
        user: str | None = None,
        groups: set[str] | None = None,
        header: dict[str, Any] | None = None,
        key: SigningKey = KEY,
    ) -> Any:
        return pytest.param(preset, body, header or {}, key, status, user, groups, id=id)

    azure = {"type": "azure", "tenant": TENANT, "audience": ("api://orders",)}
    return [
        case("azure-v2", azure, AZURE_USER, 200, "Alice@contoso.com", {"g-finance", "Admin"}),
        # Only names (strings, or a directory's numeric ids) are groups: a
        # boolean would become the group "True", an object its text.
        case(
            "azure-v2-groups-of-other-types",
            azure,
            {**AZURE_USER, "groups": ["g-finance", True, False, None, {"x": 1}, [], 7, ""]},
            200,
            "Alice@contoso.com",
            {"g-finance", "7", "Admin"},
        ),
        case("azure-v1-upn", azure, AZURE_V1_USER, 200, "alice@contoso.com"),
        case(
            "azure-v1-unique-name",
            azure,
            {**AZURE_V1_USER, "upn": None, "unique_name": "alice@live.com"},
            200,
            "alice@live.com",
        ),
        case("azure-v2-issuer-v1-ver", azure, {**AZURE_USER, "ver": "1.0"}, 401),
        case("azure-id-token", azure, {**AZURE_USER, "scp": None, "roles": None}, 401),
        case("azure-graph-nonce", azure, AZURE_USER, 401, header={"nonce": "abc"}),
        case("azure-version-2-only", {**azure, "version": "2"}, AZURE_V1_USER, 401),
        case(
            "azure-app-only-unmapped",
            azure,
            {**AZURE_USER, "preferred_username": None, "scp": None, "roles": ["Orders.All"]},
            401,
        ),
        case(
            "azure-app-only-mapped",
            {**azure, "service_accounts": {"spa-client": "svc-spa"}},
            {**AZURE_USER, "preferred_username": None, "scp": None, "roles": ["Orders.All"]},
            200,
            "svc-spa",
        ),
        case(
            "azure-wrong-tenant",
            azure,
            {**AZURE_USER, "iss": "https://login.microsoftonline.com/other/v2.0"},
            401,
        ),
        case(
            "azure-b2c",
            {
                "type": "azure-b2c",
                "tenant": "contoso",
                "tenant_id": TENANT,
                "policy": "B2C_1_signin",
                "audience": ("b2c-api",),
            },
            # Microsoft's B2C access token example (access-tokens.md): nonce and all.
            B2C_ACCESS,
            200,
            "1558f87f-452b-4757-bcd1-883",
        ),
        case(
            "okta",
            {"type": "okta", "domain": "dev-123456.okta.com"},
            OKTA_USER,
            200,
            "alice@example.com",
            {"Everyone"},
        ),
        case(
            "okta-es256",
            {"type": "okta", "domain": "dev-123456.okta.com"},
            OKTA_USER,
            200,
            "alice@example.com",
            key=EC_KEY,
        ),
        case(
            "okta-id-token",
            {"type": "okta", "domain": "dev-123456.okta.com"},
            {**OKTA_USER, "cid": None},
            401,
        ),
        case(
            "okta-other-audience",
            {"type": "okta", "domain": "dev-123456.okta.com"},
            {**OKTA_USER, "aud": "api://other"},
            401,
        ),
        case(
            "keycloak",
            {
                "type": "keycloak",
                "url": "https://sso.example.com",
                "realm": "corp",
                "audience": ("orders-api",),
            },
            KEYCLOAK_USER,
            200,
            "alice",
            {"offline_access", "orders-admin"},
        ),
        case(
            "keycloak-id-token",
            {
                "type": "keycloak",
                "url": "https://sso.example.com",
                "realm": "corp",
                "audience": ("orders-api",),
            },
            {**KEYCLOAK_USER, "typ": "ID"},
            401,
        ),
        case(
            "keycloak-account-only",
            {
                "type": "keycloak",
                "url": "https://sso.example.com",
                "realm": "corp",
                "audience": ("orders-api",),
            },
            {**KEYCLOAK_USER, "aud": "account"},
            401,
        ),
        case(
            "cognito",
            {
                "type": "cognito",
                "region": "eu-west-1",
                "user_pool_id": "eu-west-1_AbCdEf123",
                "client_id": "app-client-1",
            },
            COGNITO_USER,
            200,
            "alice",
            {"admins"},
        ),
        case(
            "cognito-id-token",
            {
                "type": "cognito",
                "region": "eu-west-1",
                "user_pool_id": "eu-west-1_AbCdEf123",
                "client_id": "app-client-1",
            },
            {**COGNITO_USER, "token_use": "id"},
            401,
        ),
        case(
            "cognito-other-client",
            {
                "type": "cognito",
                "region": "eu-west-1",
                "user_pool_id": "eu-west-1_AbCdEf123",
                "client_id": "app-client-1",
            },
            {**COGNITO_USER, "client_id": "someone-else"},
            401,
        ),
    ]


def client_for(
    fake: FakeProvider, settings: Settings, make_client: Callable[..., Client], **provider: Any
) -> Client:
    name = provider.pop("name", "idp")
    return make_client(
        Settings(token_store=settings.token_store, providers=(ProviderSettings(name, **provider),))
    )


@pytest.mark.parametrize(
    ("preset", "body", "header", "key", "status", "user", "groups"), jwt_cases()
)
def test_jwt_presets(
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
    preset: dict[str, Any],
    body: dict[str, Any],
    header: dict[str, Any],
    key: SigningKey,
    status: int,
    user: str | None,
    groups: set[str] | None,
) -> None:
    fake_provider.json("/keys", {"keys": [KEY.public_jwk(), EC_KEY.public_jwk()]})
    client = client_for(
        fake_provider, settings, make_client, jwks_url=f"{fake_provider.url}/keys", **preset
    )
    token = key.sign(claims(**body), header)
    response = client.get("/", headers={"Authorization": f"Bearer {token}"})
    seen = json.loads(response.get_data())
    assert response.status_code == status, seen
    if status == 200:
        assert seen["remote_user"] == user
        if groups is not None:
            assert set(seen["identity"]["groups"]) == groups


# -- opaque-token presets --------------------------------------------------------------


def _basic(request: Request) -> tuple[str, str]:
    user, _, password = (
        base64.b64decode(request.headers["Authorization"].split(" ", 1)[1]).decode().partition(":")
    )
    return user, password


def github_check(request: Request) -> Reply:
    # GitHub's "Check a token" (https://docs.github.com/en/rest/apps/oauth-applications#check-a-token):
    # Basic auth with the app's client id and secret; 200 with the authorization, 404 for a
    # token the app does not know, 422 "Validation failed, or the endpoint has been spammed".
    if _basic(request) != ("gh-client", "gh-secret"):
        return Reply(401, {"message": "Bad credentials"})
    token = request.json()["access_token"]
    if token == "gho_unprocessable":
        return Reply(
            422,
            {
                "message": "Validation Failed",
                "documentation_url": "https://docs.github.com/rest",
            },
        )
    if token != "gho_valid":
        return Reply(404, {"message": "Not Found"})
    return Reply(
        200,
        {
            "token": token,
            "hashed_token": "x",
            "scopes": ["repo", "read:org"],
            "expires_at": None,
            "app": {"client_id": "gh-client"},
            "user": {"login": "octocat", "id": 1},
        },
    )


def bearer_of(request: Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


def opaque_cases() -> list[Any]:
    def case(
        id: str,
        preset: dict[str, Any],
        token: str,
        status: int,
        user: str | None = None,
        scopes: set[str] | None = None,
    ) -> Any:
        return pytest.param(preset, token, status, user, scopes, id=id)

    google = {"type": "google", "client_id": "g-client.apps.googleusercontent.com"}
    github = {"type": "github", "client_id": "gh-client", "client_secret": "gh-secret"}
    gitlab = {"type": "gitlab", "client_id": "gl-app"}
    slack = {"type": "slack", "any_client": True, "team": ("T0R7GR",)}
    facebook = {"type": "facebook", "client_id": "123", "client_secret": "fb-secret"}
    return [
        case("google-check", google, "ya29.valid", 200, "alice@gmail.com", {"openid", "email"}),
        case("google-other-client", google, "ya29.other-client", 401),
        case("google-unverified-email", google, "ya29.unverified", 401),
        # 1 == True in Python: a number is no "true".
        case("google-email-verified-one", google, "ya29.verified-one", 401),
        case("google-unknown", google, "ya29.unknown", 401),
        case("google-not-a-google-token", google, "gho_valid", 401),
        case(
            "google-userinfo",
            {"type": "google", "validation": "userinfo"},
            "ya29.valid",
            200,
            "alice@gmail.com",
        ),
        case("github-check", github, "gho_valid", 200, "octocat", {"repo", "read:org"}),
        case("github-check-unknown", github, "gho_unknown", 401),
        case("github-check-422", github, "gho_unprocessable", 401),
        case("github-check-bad-app-secret", {**github, "client_secret": "wrong"}, "gho_valid", 503),
        case("github-userinfo", {"type": "github"}, "gho_valid", 200, "octocat", {"repo", "user"}),
        case("github-userinfo-unknown", {"type": "github"}, "ghp_unknown", 401),
        case("github-not-a-github-token", {"type": "github"}, "ya29.valid", 401),
        case("slack", slack, "xoxp-valid", 200, "alice@example.com"),
        case("slack-invalid-auth", slack, "xoxp-revoked", 401),
        case("slack-other-team", slack, "xoxp-other-team", 401),
        case("slack-ratelimited", slack, "xoxp-ratelimited", 503),
        case("gitlab-check", gitlab, "glpat-valid", 200, "alice", {"api", "openid"}),
        case("gitlab-other-app", gitlab, "glpat-other-app", 401),
        case("gitlab-userinfo", {"type": "gitlab"}, "glpat-valid", 200, "alice"),
        case("facebook-check", facebook, "EAAvalid", 200, "alice@example.com", {"email"}),
        case("facebook-invalid", facebook, "EAAinvalid", 401),
        case("facebook-other-app", facebook, "EAAother-app", 401),
        case("facebook-userinfo", {"type": "facebook"}, "EAAvalid", 200, "alice@example.com"),
    ]


def serve_opaque_presets(fake: FakeProvider) -> None:
    now = int(time.time())

    def tokeninfo(request: Request) -> Reply:
        # Google's tokeninfo endpoint (oauth2.googleapis.com/tokeninfo; "Authenticate with a
        # backend server", https://developers.google.com/identity/sign-in/web/backend-auth):
        # strings for numbers and booleans, 400 "Invalid Value" for an unknown token.
        token = request.query.get("access_token")
        answers = {
            "ya29.valid": {"aud": "g-client.apps.googleusercontent.com", "email_verified": "true"},
            "ya29.other-client": {
                "aud": "someone-else",
                "azp": "someone-else",
                "email_verified": "true",
            },
            "ya29.unverified": {
                "aud": "g-client.apps.googleusercontent.com",
                "email_verified": "false",
            },
            "ya29.verified-one": {
                "aud": "g-client.apps.googleusercontent.com",
                "email_verified": 1,
            },
        }
        if token not in answers:
            return Reply(400, {"error_description": "Invalid Value"})
        return Reply(
            200,
            {
                "email": "alice@gmail.com",
                "scope": "openid email",
                "exp": str(now + 300),
                "expires_in": "300",
                **answers[token],
            },
        )

    fake.route("/tokeninfo", tokeninfo)
    fake.route(
        "/v1/userinfo",
        lambda r: (
            Reply(200, {"email": "alice@gmail.com", "email_verified": True, "sub": "1"})
            if bearer_of(r) == "ya29.valid"
            else Reply(401, {"error": "invalid_token"})
        ),
    )
    fake.route("/applications/gh-client/token", github_check, method="POST")
    fake.route(
        "/user",
        lambda r: (
            Reply(200, {"login": "octocat", "id": 1}, {"X-OAuth-Scopes": "repo, user"})
            if bearer_of(r) == "gho_valid"
            else Reply(401, {"message": "Bad credentials"})
        ),
    )
    fake.route(
        "/api/openid.connect.userInfo",
        lambda r: Reply(
            200,
            {
                # Slack's documented openid.connect.userInfo answer, for alice
                # (https://api.slack.com/methods/openid.connect.userInfo).
                "xoxp-valid": {
                    "ok": True,
                    "sub": "U0R7JM",
                    "https://slack.com/user_id": "U0R7JM",
                    "https://slack.com/team_id": "T0R7GR",
                    "email": "alice@example.com",
                    "email_verified": True,
                    "name": "alice",
                    "https://slack.com/team_name": "kraneflannel",
                },
                "xoxp-other-team": {
                    "ok": True,
                    "sub": "U999",
                    "https://slack.com/team_id": "T_OTHER",
                    "email": "mallory@example.com",
                    "email_verified": True,
                },
                "xoxp-revoked": {"ok": False, "error": "invalid_auth"},
            }.get(bearer_of(r), {"ok": False, "error": "ratelimited"}),
        ),
    )
    # GitLab's "Retrieve the token information"
    # (https://docs.gitlab.com/api/oauth2/#retrieve-the-token-information).
    fake.route(
        "/oauth/token/info",
        lambda r: Reply(
            200,
            {
                "application": {"uid": "gl-app" if bearer_of(r) == "glpat-valid" else "other"},
                "expires_in": 7200,
                "scope": ["api", "openid"],
                "resource_owner_id": 7,
            },
        ),
    )
    fake.route(
        "/oauth/userinfo",
        lambda r: Reply(200, {"nickname": "alice", "sub": "7", "groups": ["corp/dev"]}),
    )

    # Facebook's debug_token (https://developers.facebook.com/docs/graph-api/reference/debug_token/):
    # the app's access token as access_token, the user's as input_token; data.is_valid, app_id.
    def debug_token(request: Request) -> Reply:
        if request.query.get("access_token") != "123|fb-secret":
            return Reply(400, {"error": {"type": "OAuthException"}})
        token = request.query.get("input_token")
        data = {
            "app_id": "123",
            "is_valid": True,
            "expires_at": now + 3600,
            "scopes": ["email"],
            "user_id": "9",
        }
        if token == "EAAinvalid":
            data = {"is_valid": False}
        elif token == "EAAother-app":
            data["app_id"] = "456"
        return Reply(200, {"data": data})

    fake.route("/debug_token", debug_token)
    fake.route(
        "/me", lambda r: Reply(200, {"id": "9", "name": "Alice", "email": "alice@example.com"})
    )


@pytest.mark.parametrize(("preset", "token", "status", "user", "scopes"), opaque_cases())
def test_opaque_presets(
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
    preset: dict[str, Any],
    token: str,
    status: int,
    user: str | None,
    scopes: set[str] | None,
) -> None:
    serve_opaque_presets(fake_provider)
    url = fake_provider.url
    endpoints: dict[str, Any] = {
        "google": {"url": url, "userinfo_url": f"{url}/v1/userinfo"},
        "github": {"url": url},
        "slack": {"userinfo_url": f"{url}/api/openid.connect.userInfo"},
        "gitlab": {"url": url},
        "facebook": {"url": url},
    }[preset["type"]]
    client = client_for(fake_provider, settings, make_client, **preset, **endpoints)
    response = client.get("/", headers={"Authorization": f"Bearer {token}"})
    seen = json.loads(response.get_data())
    assert response.status_code == status, seen
    if status == 200:
        assert seen["remote_user"] == user
        if scopes is not None:
            assert set(seen["identity"]["scopes"]) == scopes
        assert token not in json.dumps(seen["identity"]), "no token kept in the claims"


def test_prefixed_tokens_are_only_sent_to_their_provider(
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
) -> None:
    serve_opaque_presets(fake_provider)
    client = client_for(fake_provider, settings, make_client, type="github", url=fake_provider.url)
    response = client.get("/", headers={"Authorization": "Bearer ya29.a-google-token"})
    assert response.status_code == 401
    assert sum(fake_provider.calls.values()) == 0


# -- generic providers ----------------------------------------------------------------------


def test_oidc_by_discovery(
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
) -> None:
    issuer = fake_provider.url
    fake_provider.json(
        "/.well-known/openid-configuration", {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}
    )
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk()]})
    client = client_for(
        fake_provider, settings, make_client, type="oidc", issuer=issuer, audience=("my-api",)
    )
    token = KEY.sign(claims(iss=issuer, aud="my-api", sub="u-1"))
    response = client.get("/", headers={"Authorization": f"Bearer {token}"})
    assert json.loads(response.get_data())["remote_user"] == "u-1"
    assert fake_provider.calls["/.well-known/openid-configuration"] == 1


def test_discovery_naming_another_issuer_is_refused(
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
) -> None:
    issuer = fake_provider.url
    fake_provider.json(
        "/.well-known/openid-configuration",
        {"issuer": "https://evil.example", "jwks_uri": f"{issuer}/jwks"},
    )
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk()]})
    client = client_for(
        fake_provider, settings, make_client, type="oidc", issuer=issuer, audience=("my-api",)
    )
    token = KEY.sign(claims(iss=issuer, aud="my-api", sub="u-1"))
    response = client.get("/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert fake_provider.calls["/jwks"] == 0


def test_oauth2_userinfo(
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
) -> None:
    fake_provider.route(
        "/me",
        lambda r: (
            Reply(200, {"sub": "u-7", "login": "seven"})
            if bearer_of(r) == "opaque-1"
            else Reply(401, {})
        ),
    )
    client = client_for(
        fake_provider,
        settings,
        make_client,
        type="oauth2",
        userinfo_url=f"{fake_provider.url}/me",
        username_attribute=("login",),
    )
    ok = client.get("/", headers={"Authorization": "Bearer opaque-1"})
    assert json.loads(ok.get_data())["remote_user"] == "seven"
    assert client.get("/", headers={"Authorization": "Bearer opaque-2"}).status_code == 401


@pytest.mark.parametrize(
    ("preset", "answer", "user"),
    [
        pytest.param(
            {
                "type": "okta",
                "domain": "dev-1.okta.com",
                "auth_server": "org",
                "allowed_clients": ("spa",),
            },
            {
                "active": True,
                "username": "alice@example.com",
                "sub": "00u1",
                "aud": "https://dev-1.okta.com",
                "client_id": "spa",
            },
            "alice@example.com",
            id="okta-org",
        ),
        pytest.param(
            {
                "type": "keycloak",
                "url": "https://sso.example.com",
                "realm": "corp",
                "validation": "introspection",
                # The audience mapper puts the API's client in aud (docs/providers.md).
                "audience": ("rs",),
            },
            {
                "active": True,
                "aud": ["rs", "account"],
                "preferred_username": "alice",
                "username": "alice",
                "typ": "Bearer",
                "realm_access": {"roles": ["r1"]},
            },
            "alice",
            id="keycloak-introspection",
        ),
    ],
)
def test_introspection_presets(
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
    preset: dict[str, Any],
    answer: dict[str, Any],
    user: str,
) -> None:
    def introspect(request: Request) -> Reply:
        if _basic(request) != ("rs", "rs-secret"):
            return Reply(401, {"error": "invalid_client"})
        active = request.form["token"] == "opaque-ok"
        return Reply(
            200, {**answer, "exp": int(time.time()) + 300} if active else {"active": False}
        )

    fake_provider.route("/introspect", introspect, method="POST")
    client = client_for(
        fake_provider,
        settings,
        make_client,
        client_id="rs",
        client_secret="rs-secret",
        introspection_url=f"{fake_provider.url}/introspect",
        **preset,
    )
    ok = client.get("/", headers={"Authorization": "Bearer opaque-ok"})
    assert json.loads(ok.get_data())["remote_user"] == user
    assert client.get("/", headers={"Authorization": "Bearer opaque-no"}).status_code == 401


# -- what each preset resolves to, with no I/O ------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "validation", "issuers", "jwks_url"),
    [
        pytest.param(
            {"type": "azure", "tenant": TENANT, "audience": ("a",)},
            "jwt",
            (AZURE_V2, AZURE_V1),
            f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys",
            id="azure",
        ),
        pytest.param(
            {"type": "azure", "tenant": TENANT, "audience": ("a",), "version": "1"},
            "jwt",
            (AZURE_V1,),
            None,
            id="azure-v1",
        ),
        pytest.param(
            {
                "type": "azure-b2c",
                "tenant": "contoso",
                "tenant_id": TENANT,
                "policy": "B2C_1_x",
                "audience": ("a",),
            },
            "jwt",
            (B2C_ISSUER, f"https://contoso.b2clogin.com/tfp/{TENANT}/B2C_1_x/v2.0/"),
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_x/discovery/v2.0/keys",
            id="azure-b2c",
        ),
        pytest.param(
            {"type": "okta", "domain": "https://dev-123456.okta.com/"},
            "jwt",
            (OKTA,),
            f"{OKTA}/v1/keys",
            id="okta-default",
        ),
        pytest.param(
            {
                "type": "okta",
                "domain": "dev-1.okta.com",
                "auth_server": "org",
                "client_id": "c",
                "client_secret": "s",
                "any_client": True,
            },
            "introspection",
            ("https://dev-1.okta.com",),
            None,
            id="okta-org",
        ),
        pytest.param(
            {
                "type": "keycloak",
                "url": "https://sso.example.com/",
                "realm": "corp",
                "audience": ("a",),
            },
            "jwt",
            (KEYCLOAK,),
            f"{KEYCLOAK}/protocol/openid-connect/certs",
            id="keycloak",
        ),
        pytest.param(
            {
                "type": "cognito",
                "region": "eu-west-1",
                "user_pool_id": "eu-west-1_AbCdEf123",
                "client_id": "c",
            },
            "jwt",
            (COGNITO,),
            f"{COGNITO}/.well-known/jwks.json",
            id="cognito",
        ),
        pytest.param({"type": "google"}, "userinfo", (), None, id="google-no-client"),
        pytest.param({"type": "google", "client_id": "c"}, "check", (), None, id="google"),
        pytest.param({"type": "github"}, "userinfo", (), None, id="github-no-client"),
        pytest.param(
            {"type": "github", "client_id": "c", "client_secret": "s"},
            "check",
            (),
            None,
            id="github",
        ),
        pytest.param({"type": "slack", "any_client": True}, "userinfo", (), None, id="slack"),
        pytest.param(
            {"type": "gitlab", "url": "https://git.example.com"},
            "userinfo",
            ("https://git.example.com",),
            None,
            id="gitlab-self-managed",
        ),
        pytest.param({"type": "facebook"}, "userinfo", (), None, id="facebook"),
    ],
)
def test_what_presets_resolve_to(
    preset: dict[str, Any],
    validation: str,
    issuers: tuple[str, ...],
    jwks_url: str | None,
) -> None:
    config = resolve(ProviderSettings("idp", **preset), allow_http=False)
    assert config.validation == validation
    assert config.issuers == issuers
    if jwks_url is not None:
        assert config.jwks_url == jwks_url


def test_a_token_no_provider_knows_gets_an_invalid_token_challenge(
    fake_provider: FakeProvider,
    settings: Settings,
    make_client: Callable[..., Client],
) -> None:
    fake_provider.json("/me", {}, status=401)
    client = client_for(
        fake_provider, settings, make_client, type="oauth2", userinfo_url=f"{fake_provider.url}/me"
    )
    for _ in range(2):  # asked, then remembered
        response = client.get("/", headers={"Authorization": "Bearer unknown-to-everyone"})
        assert response.status_code == 401
        bearer = response.headers.getlist("WWW-Authenticate")[0]
        assert bearer.startswith('Bearer realm="api", error="invalid_token"')
