"""Providers as the real ones behave (issue 10): each case is a loopback server
answering exactly as the provider's documentation shows (same fields, status
codes and error bodies; the page is named beside each fixture), driven
through the middleware.

What must hold: a token is accepted only when the provider's own marks say it
is an access token issued to this app (Azure app-only and ID tokens, B2C user
flows, Slack teams, Okta's org server, Keycloak service accounts); throttling
and our own misconfiguration are 503s, never a user's refusal; GitLab users
need no openid scope; metadata from RFC 8414; and the messages name the fix.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import Client

from restauth_wsgi import ConfigurationError, RestAuthMiddleware, Settings
from restauth_wsgi.providers.settings import ProviderSettings

from .fake_provider import FakeProvider, Reply, Request
from .helpers import RESTAUTH, cli_env, echo_app
from .oidc_provider import SigningKey

KEY = SigningKey("RS256")
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AZURE_V2 = f"https://login.microsoftonline.com/{TENANT}/v2.0"
AZURE_V1 = f"https://sts.windows.net/{TENANT}/"
KEYCLOAK = "https://sso.example.com/realms/corp"


def now_claims(**values: Any) -> dict[str, Any]:
    now = int(time.time())
    merged = {"iat": now, "nbf": now, "exp": now + 600, **values}
    return {k: v for k, v in merged.items() if v is not None}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def web(fake_provider: FakeProvider, store_url: str) -> Callable[..., Client]:
    """A client for one provider whose keys (and JWKS URL) are the fake's."""
    fake_provider.json("/keys", {"keys": [KEY.public_jwk()]})

    def build(name: str = "idp", **provider: Any) -> Client:
        settings = Settings(
            token_store=store_url,
            providers=(ProviderSettings(name, **provider),),
            upstream_backoff=0,
        )
        return Client(RestAuthMiddleware(echo_app, settings=settings))

    return build


def outcome(client: Client, token: str) -> tuple[int, str | None]:
    response = client.get("/", headers=bearer(token))
    body = json.loads(response.get_data())
    return response.status_code, body.get("remote_user") if response.status_code == 200 else None


# -- Azure AD / Entra ID ----------------------------------------------------------------------
# Claims from Microsoft's "Access token claims reference", "ID token claims reference",
# "Secure applications and APIs by validating claims" (claims-validation), and the
# sample tokens of "Access tokens in the Microsoft identity platform".

AZURE_V2_USER = {  # the v2.0 sample access token
    "iss": AZURE_V2,
    "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
    "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
    "azpacr": "0",
    "name": "Abe Lincoln",
    "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
    "preferred_username": "abeli@microsoft.com",
    "scp": "access_as_user",
    "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
    "tid": TENANT,
    "ver": "2.0",
}
AZURE_V1_USER = {  # the v1.0 sample access token
    "iss": AZURE_V1,
    "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
    "appid": "75dbe77f-10a3-4e59-85fd-8c127544f17c",
    "appidacr": "0",
    "oid": "02223b6b-aa1d-42d4-9ec0-1b2bb9194438",
    "scp": "user_impersonation",
    "sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA",
    "tid": TENANT,
    "unique_name": "abeli@microsoft.com",
    "ver": "1.0",
}


def azure(fake: FakeProvider, **more: Any) -> dict[str, Any]:
    return {
        "type": "azure",
        "tenant": TENANT,
        "audience": ("6e74172b-be56-4843-9ff4-e66a39bb12e3",),
        "jwks_url": f"{fake.url}/keys",
        "service_accounts": {
            "6e74172b-be56-4843-9ff4-e66a39bb12e3": "svc-web",
            "75dbe77f-10a3-4e59-85fd-8c127544f17c": "svc-daemon",
        },
        **more,
    }


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param(AZURE_V2_USER, (200, "abeli@microsoft.com"), id="v2-user"),
        pytest.param(AZURE_V1_USER, (200, "abeli@microsoft.com"), id="v1-user"),
        pytest.param(
            # A v2 user token requested without the profile scope: no
            # preferred_username, no oid; still a user's (scp), never the client's.
            {**AZURE_V2_USER, "preferred_username": None, "name": None, "oid": None},
            (401, None),
            id="v2-user-without-profile-is-no-service-account",
        ),
        pytest.param(
            {**AZURE_V2_USER, "preferred_username": None, "idtyp": "user"},
            (401, None),
            id="user-marked-by-idtyp",
        ),
        pytest.param(
            # App-only (client credentials), idtyp optional claim on: roles, no scp.
            {
                **AZURE_V2_USER,
                "preferred_username": None,
                "scp": None,
                "name": None,
                "idtyp": "app",
                "roles": ["access_as_application"],
            },
            (200, "svc-web"),
            id="v2-app-only-idtyp",
        ),
        pytest.param(
            # The role-less app-only token Microsoft's client-credentials page describes.
            {**AZURE_V1_USER, "unique_name": None, "scp": None},
            (200, "svc-daemon"),
            id="v1-app-only-without-roles",
        ),
        pytest.param(
            # An ID token of the same app: aud is its client id, and it carries
            # roles, but no azp/appid (the ID token claims reference).
            {
                "iss": AZURE_V2,
                "aud": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
                "ver": "2.0",
                "roles": ["Admin"],
                "preferred_username": "abeli@microsoft.com",
                "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474",
                "sub": "x",
                "tid": TENANT,
            },
            (401, None),
            id="id-token-with-roles",
        ),
        pytest.param(
            {**AZURE_V2_USER, "nonce": "n-1"},
            (401, None),
            id="id-token-marks",
        ),
    ],
)
def test_azure_tells_users_apps_and_id_tokens_apart(
    web: Callable[..., Client],
    fake_provider: FakeProvider,
    claims: dict[str, Any],
    expected: tuple[int, str | None],
) -> None:
    client = web(**azure(fake_provider))
    assert outcome(client, KEY.sign(now_claims(**claims))) == expected


def test_azure_offers_the_stable_oid(
    web: Callable[..., Client], fake_provider: FakeProvider
) -> None:
    client = web(**azure(fake_provider, username_attribute=("oid",)))
    token = KEY.sign(now_claims(**AZURE_V2_USER))
    assert outcome(client, token) == (200, "690222be-ff1a-4d56-abd1-7e4f7d38e474")


# -- Azure AD B2C (tokens-overview.md, access-tokens.md, configure-tokens.md) ------------------

B2C_ISSUER = f"https://contoso.b2clogin.com/{TENANT}/v2.0/"
B2C_ACCESS = {  # Microsoft's B2C access token example, nonce and all
    "iss": B2C_ISSUER,
    "aud": "b2c-api",
    "oid": "1558f87f-452b-4757-bcd1-883",
    "sub": "Not supported currently. Use oid claim.",
    "name": "David",
    "tfp": "B2C_1_signupsignin1",
    "nonce": "anyRandomValue",
    "scp": "read",
    "azp": "38307aee-303c-4fff-8087-d8d2",
    "ver": "1.0",
}


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param(B2C_ACCESS, (200, "1558f87f-452b-4757-bcd1-883"), id="access-token-oid"),
        pytest.param(
            {**B2C_ACCESS, "tfp": "b2c_1_signupsignin1"},
            (200, "1558f87f-452b-4757-bcd1-883"),
            id="policy-any-case",
        ),
        pytest.param(
            {**B2C_ACCESS, "tfp": None, "acr": "B2C_1_signupsignin1"},
            (200, "1558f87f-452b-4757-bcd1-883"),
            id="older-acr",
        ),
        pytest.param({**B2C_ACCESS, "tfp": "B2C_1_passwordreset"}, (401, None), id="another-flow"),
        pytest.param({**B2C_ACCESS, "tfp": None}, (401, None), id="no-flow"),
        pytest.param(
            # The legacy ID token of Microsoft's reference: no scp.
            {
                "iss": B2C_ISSUER,
                "aud": "b2c-api",
                "ver": "1.0",
                "acr": "B2C_1_signupsignin1",
                "sub": "Not supported currently. Use oid claim.",
                "oid": "u-1",
                "auth_time": 1,
            },
            (401, None),
            id="id-token",
        ),
    ],
)
def test_b2c_takes_only_its_user_flows_access_tokens(
    web: Callable[..., Client],
    fake_provider: FakeProvider,
    claims: dict[str, Any],
    expected: tuple[int, str | None],
) -> None:
    client = web(
        "b2c",
        type="azure-b2c",
        tenant="contoso",
        tenant_id=TENANT,
        policy="B2C_1_signupsignin1",
        audience=("b2c-api",),
        jwks_url=f"{fake_provider.url}/keys",
    )
    assert outcome(client, KEY.sign(now_claims(**claims))) == expected


# -- Keycloak (server_admin: service accounts; ServiceAccountConstants) -------------------------


@pytest.mark.parametrize(
    ("claims", "accounts", "expected"),
    [
        pytest.param({"preferred_username": "alice", "azp": "web"}, {}, (200, "alice"), id="user"),
        pytest.param(
            {"preferred_username": "service-account-ci", "azp": "ci", "client_id": "ci"},
            {},
            (401, None),
            id="client-credentials-unmapped",
        ),
        pytest.param(
            {"preferred_username": "service-account-ci", "azp": "ci", "clientId": "ci"},
            {"ci": "svc-ci"},
            (200, "svc-ci"),
            id="client-credentials-mapped",
        ),
        pytest.param(
            {"preferred_username": "service-account-ci", "azp": "web"},
            {"ci": "svc-ci", "web": "svc-web"},
            (401, None),
            id="user-posing-as-a-service-account",
        ),
    ],
)
def test_keycloak_client_tokens_are_client_tokens(
    web: Callable[..., Client],
    fake_provider: FakeProvider,
    claims: dict[str, Any],
    accounts: dict[str, str],
    expected: tuple[int, str | None],
) -> None:
    client = web(
        "keycloak",
        url="https://sso.example.com",
        realm="corp",
        audience=("orders",),
        jwks_url=f"{fake_provider.url}/keys",
        service_accounts=accounts,
    )
    token = KEY.sign(now_claims(iss=KEYCLOAK, aud="orders", typ="Bearer", sub="u-1", **claims))
    assert outcome(client, token) == expected


# -- Keycloak introspection (securing_apps "Token introspection endpoint"; the 26.6.2 release
# notes: introspection answers active: false unless the introspecting client is in aud) ------


def _keycloak_introspection(since_26_6_2: bool) -> Callable[[Request], Reply]:
    """Keycloak's introspection answer: the token's claims plus "active".
    Before 26.6.2 any realm client's token is active, whatever its aud."""

    def introspect(request: Request) -> Reply:
        token = request.form["token"]
        audiences = {"for-us": ["orders-api", "account"], "for-others": ["account"]}
        if token not in audiences:
            return Reply(200, {"active": False})
        if since_26_6_2 and "orders-api" not in audiences[token]:
            return Reply(200, {"active": False})
        return Reply(
            200,
            {
                "exp": int(time.time()) + 300,
                "iat": int(time.time()),
                "jti": "onrtac:7b6b3a2c",
                "iss": KEYCLOAK,
                "aud": audiences[token],
                "sub": "4f6e-u1",
                "typ": "Bearer",
                "azp": "web" if token == "for-us" else "someone-elses-app",
                "preferred_username": "alice",
                "scope": "openid profile",
                "client_id": "web" if token == "for-us" else "someone-elses-app",
                "username": "alice",
                "token_type": "Bearer",
                "active": True,
            },
        )

    return introspect


@pytest.mark.parametrize("since_26_6_2", [False, True], ids=["before-26.6.2", "26.6.2-on"])
def test_keycloak_introspection_takes_only_tokens_for_this_api(
    web: Callable[..., Client], fake_provider: FakeProvider, since_26_6_2: bool
) -> None:
    # Before 26.6.2 Keycloak reports any realm client's token active: only
    # the audience check tells a token for another API from one for us.
    fake_provider.route("/introspect", _keycloak_introspection(since_26_6_2), method="POST")
    client = web(
        "keycloak",
        url="https://sso.example.com",
        realm="corp",
        validation="introspection",
        client_id="orders-api",
        client_secret="s",
        audience=("orders-api",),
        introspection_url=f"{fake_provider.url}/introspect",
    )
    assert outcome(client, "for-us") == (200, "alice")
    assert outcome(client, "for-others") == (401, None)
    assert outcome(client, "unknown") == (401, None)


# -- the app a token was issued to: Slack, Okta's org server ------------------------------------


@pytest.mark.parametrize(
    ("preset", "variable"),
    [
        pytest.param({"type": "slack"}, "RESTAUTH_IDP_ANY_CLIENT", id="slack"),
        pytest.param(
            {"type": "okta", "domain": "dev-1.okta.com", "auth_server": "org"},
            "RESTAUTH_IDP_ANY_CLIENT",
            id="okta-org-userinfo",
        ),
        pytest.param(
            {
                "type": "okta",
                "domain": "dev-1.okta.com",
                "auth_server": "org",
                "client_id": "rs",
                "client_secret": "s",
            },
            "RESTAUTH_IDP_ALLOWED_CLIENTS",
            id="okta-org-introspection",
        ),
        pytest.param(
            {"type": "oauth2", "userinfo_url": "https://idp.example/me", "allowed_clients": ("a",)},
            "RESTAUTH_IDP_ALLOWED_CLIENTS",
            id="allowed-clients-with-userinfo",
        ),
    ],
)
def test_providers_that_cannot_tell_the_app_refuse_to_start(
    preset: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings(providers=(ProviderSettings("idp", **preset),))


def test_okta_org_introspection_takes_only_listed_clients(
    web: Callable[..., Client], fake_provider: FakeProvider
) -> None:
    def introspect(request: Request) -> Reply:
        # Okta's documented /introspect answer (reference/api/oidc).
        client = {"opaque-spa": "0oa-spa", "opaque-other": "0oa-other"}.get(request.form["token"])
        if client is None:
            return Reply(200, {"active": False})
        return Reply(
            200,
            {
                "active": True,
                "token_type": "Bearer",
                "scope": "openid profile",
                "client_id": client,
                "username": "john.doe@example.com",
                "exp": int(time.time()) + 300,
                "sub": "john.doe@example.com",
                "aud": "https://dev-1.okta.com",
                "iss": "https://dev-1.okta.com",
                "uid": "00uid4BxXw6I6TV4m0g3",
            },
        )

    fake_provider.route("/introspect", introspect, method="POST")
    client = web(
        type="okta",
        domain="dev-1.okta.com",
        auth_server="org",
        client_id="rs",
        client_secret="s",
        allowed_clients=("0oa-spa",),
        introspection_url=f"{fake_provider.url}/introspect",
    )
    assert outcome(client, "opaque-spa") == (200, "john.doe@example.com")
    assert outcome(client, "opaque-other") == (401, None)


def test_config_warns_about_every_mode_that_cannot_tell_the_app(store_url: str) -> None:
    env = cli_env(
        store_url,
        RESTAUTH_PROVIDERS="corp,slack,org",
        RESTAUTH_CORP_TYPE="oidc",
        RESTAUTH_CORP_ISSUER="http://127.0.0.1:9",
        RESTAUTH_CORP_VALIDATION="userinfo",
        RESTAUTH_CORP_USERINFO_URL="http://127.0.0.1:9/me",
        RESTAUTH_CORP_USERNAME_PREFIX="c:",
        RESTAUTH_SLACK_ANY_CLIENT="true",
        RESTAUTH_SLACK_USERNAME_PREFIX="s:",
        RESTAUTH_ORG_TYPE="okta",
        RESTAUTH_ORG_DOMAIN="dev-1.okta.com",
        RESTAUTH_ORG_AUTH_SERVER="org",
        RESTAUTH_ORG_CLIENT_ID="rs",
        RESTAUTH_ORG_CLIENT_SECRET="s",
        RESTAUTH_ORG_ANY_CLIENT="true",
    )
    out = subprocess.run([RESTAUTH, "config"], env=env, capture_output=True, text=True).stdout
    assert "corp validates by userinfo, which cannot tell" in out
    assert "slack validates by userinfo, which cannot tell" in out
    assert "at least set RESTAUTH_SLACK_TEAM" in out
    assert "RESTAUTH_ORG_ANY_CLIENT is true" in out


# -- rate limits and our own misconfiguration are 503s, never a user's refusal --------------


def test_github_rate_limits_are_503_with_the_providers_wait(
    web: Callable[..., Client], fake_provider: FakeProvider
) -> None:
    reset = int(time.time()) + 120
    # GitHub's documented primary rate-limit answer ("Rate limits for the REST API").
    fake_provider.route(
        "/user",
        lambda r: Reply(
            403,
            {
                "message": "API rate limit exceeded for user ID 1.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            },
            {
                "X-RateLimit-Limit": "5000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            },
        ),
    )
    client = web(type="github", url=fake_provider.url)
    answer = client.get("/", headers=bearer("gho_" + "a" * 36))
    assert answer.status_code == 503
    assert 100 <= int(answer.headers["Retry-After"]) <= 121

    # A secondary rate limit with Retry-After, on the check endpoint.
    fake_provider.route(
        "/applications/app/token",
        lambda r: Reply(
            403, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "42"}
        ),
        method="POST",
    )
    checked = web(type="github", url=fake_provider.url, client_id="app", client_secret="s")
    answer = checked.get("/", headers=bearer("gho_" + "b" * 36))
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "42")

    # A plain 403 is still our client credentials' problem: 503 too, never a 401.
    fake_provider.route(
        "/applications/app/token",
        lambda r: Reply(403, {"message": "Resource not accessible by integration"}),
        method="POST",
    )
    assert checked.get("/", headers=bearer("gho_" + "c" * 36)).status_code == 503


def facebook_error(code: int, message: str, subcode: int | None = None) -> dict[str, Any]:
    # The Graph API's error body ("Handling Errors").
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "E"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(400, facebook_error(4, "Application request limit reached"), 503, id="4"),
        pytest.param(
            403, facebook_error(4, "Application request limit reached"), 503, id="4-as-403"
        ),
        pytest.param(400, facebook_error(17, "User request limit reached"), 503, id="17"),
        pytest.param(400, facebook_error(32, "Page request limit reached"), 503, id="32"),
        pytest.param(
            400,
            facebook_error(613, "Calls to this api have exceeded the rate limit"),
            503,
            id="613",
        ),
        pytest.param(
            400,
            facebook_error(190, "Invalid OAuth access token signature."),
            503,
            id="190-our-app-token",
        ),
        pytest.param(
            200,
            {
                "data": {
                    "app_id": "123",
                    "type": "USER",
                    "is_valid": False,
                    "error": {"code": 190, "message": "expired", "subcode": 463},
                    "scopes": [],
                }
            },
            401,
            id="invalid-input-token",
        ),
        pytest.param(
            200,
            {
                "data": {
                    "app_id": "999",
                    "type": "USER",
                    "is_valid": True,
                    "user_id": "1",
                    "scopes": [],
                }
            },
            401,
            id="another-app",
        ),
    ],
)
def test_facebook_debug_token_by_error_code(
    web: Callable[..., Client],
    fake_provider: FakeProvider,
    status: int,
    body: dict[str, Any],
    expected: int,
) -> None:
    fake_provider.route("/debug_token", lambda r: Reply(status, body))
    fake_provider.route("/me", lambda r: Reply(200, {"id": "1", "email": "a@example.com"}))
    client = web(type="facebook", url=fake_provider.url, client_id="123", client_secret="s")
    assert client.get("/", headers=bearer("EAA" + "x" * 40)).status_code == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(facebook_error(190, "Session has expired", 463), 401, id="expired"),
        pytest.param(facebook_error(4, "Application request limit reached"), 503, id="throttled"),
        # A code that is no number is no throttling (and no 500): a list is
        # unhashable, and True and 4.0 equal the throttling codes 1 and 4.
        *[
            pytest.param({"error": {"code": code, "message": "x"}}, 401, id=f"code-{name}")
            for name, code in (
                ("list", []),
                ("object", {"a": 1}),
                ("true", True),
                ("float", 4.0),
                ("string", "4"),
                ("null", None),
            )
        ],
    ],
)
def test_facebook_userinfo_by_error_code(
    web: Callable[..., Client], fake_provider: FakeProvider, body: dict[str, Any], expected: int
) -> None:
    fake_provider.route("/me", lambda r: Reply(400, body))
    client = web(type="facebook", url=fake_provider.url)
    assert client.get("/", headers=bearer("EAA" + "y" * 40)).status_code == expected


# -- GitLab: the user without the openid scope (doc/api/oauth2.md, users.md) ------------------


def test_gitlab_users_need_no_openid_scope(
    web: Callable[..., Client], fake_provider: FakeProvider
) -> None:
    scopes = {
        "tok-read-user": ["read_user"],
        "tok-openid": ["openid"],
        "tok-repo": ["read_repository"],
    }

    def token_info(request: Request) -> Reply:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        return Reply(
            200,
            {
                "resource_owner_id": 1,
                "scope": scopes[token],
                "expires_in": None,
                "application": {"uid": "gl-app"},
                "created_at": 1575890427,
            },
        )

    def userinfo(request: Request) -> Reply:
        if request.headers["Authorization"].endswith("tok-openid"):
            return Reply(200, {"sub": "1", "nickname": "alice", "groups": ["dev"]})
        # Doorkeeper's answer without openid: 403 and an empty body.
        return Reply(403, b"", {"WWW-Authenticate": 'Bearer error="insufficient_scope"'})

    fake_provider.route("/oauth/token/info", token_info)
    fake_provider.route("/oauth/userinfo", userinfo)
    fake_provider.route(
        "/api/v4/user",
        lambda r: Reply(200, {"id": 1, "username": "alice", "name": "Alice", "state": "active"}),
    )
    client = web(type="gitlab", url=fake_provider.url, client_id="gl-app")
    assert outcome(client, "tok-read-user") == (200, "alice")
    assert outcome(client, "tok-openid") == (200, "alice")
    refused = client.get("/", headers=bearer("tok-repo"))
    assert refused.status_code == 401


# -- RFC 8414 metadata, redirects, and messages that name the fix ------------------------------


@pytest.mark.parametrize("place", ["appended", "inserted"])
def test_the_introspection_endpoint_from_rfc8414_metadata(
    web: Callable[..., Client], fake_provider: FakeProvider, place: str
) -> None:
    issuer = f"{fake_provider.url}/o"
    # django-oauth-toolkit 3.4: no introspection_endpoint in openid-configuration.
    fake_provider.json(
        "/o/.well-known/openid-configuration",
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize/",
            "token_endpoint": f"{issuer}/token/",
            "userinfo_endpoint": f"{issuer}/userinfo/",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
        },
    )
    metadata = {
        "issuer": issuer,
        "introspection_endpoint": f"{issuer}/introspect/",
        "token_endpoint": f"{issuer}/token/",
    }
    path = {
        "appended": "/o/.well-known/oauth-authorization-server",
        "inserted": "/.well-known/oauth-authorization-server/o",
    }[place]
    fake_provider.json(path, metadata)
    fake_provider.route(
        "/o/introspect/",
        lambda r: Reply(
            200,
            {
                "active": True,
                "scope": "read",
                "exp": int(time.time()) + 60,
                "client_id": "app",
                "username": "alice",
            },
        ),
        method="POST",
    )
    client = web(
        type="oidc",
        issuer=issuer,
        validation="introspection",
        client_id="rs",
        client_secret="s",
        audience=("app",),
    )
    assert outcome(client, "opaque-1") == (200, "alice")


def test_without_the_endpoint_anywhere_the_reason_names_the_setting(
    fake_provider: FakeProvider, store_url: str
) -> None:
    issuer = f"{fake_provider.url}/o"
    fake_provider.json("/o/.well-known/openid-configuration", {"issuer": issuer})
    env = cli_env(
        store_url,
        RESTAUTH_PROVIDERS="dot",
        RESTAUTH_DOT_TYPE="oidc",
        RESTAUTH_DOT_ISSUER=issuer,
        RESTAUTH_DOT_VALIDATION="introspection",
        RESTAUTH_DOT_CLIENT_ID="rs",
        RESTAUTH_DOT_CLIENT_SECRET="s",
        RESTAUTH_DOT_AUDIENCE="app",
    )
    checked = subprocess.run(
        [RESTAUTH, "check", "--bearer", "opaque-1"], env=env, capture_output=True, text=True
    )
    assert checked.returncode == 3
    assert "RESTAUTH_DOT_INTROSPECTION_URL" in checked.stdout
    config = subprocess.run([RESTAUTH, "config"], env=env, capture_output=True, text=True)
    assert "RESTAUTH_DOT_INTROSPECTION_URL" in config.stdout


def test_a_redirect_shows_where_it_points(
    web: Callable[..., Client], fake_provider: FakeProvider, store_url: str
) -> None:
    # Django's APPEND_SLASH answers /o/introspect with 301 to /o/introspect/.
    fake_provider.route(
        "/o/introspect",
        lambda r: Reply(301, b"", {"Location": f"{fake_provider.url}/o/introspect/?x=secret"}),
        method="POST",
    )
    env = cli_env(
        store_url,
        RESTAUTH_PROVIDERS="dot",
        RESTAUTH_DOT_TYPE="oauth2",
        RESTAUTH_DOT_INTROSPECTION_URL=f"{fake_provider.url}/o/introspect",
        RESTAUTH_DOT_CLIENT_ID="rs",
        RESTAUTH_DOT_CLIENT_SECRET="s",
        RESTAUTH_DOT_AUDIENCE="app",
    )
    checked = subprocess.run(
        [RESTAUTH, "check", "--bearer", "opaque-1"], env=env, capture_output=True, text=True
    )
    assert f"redirect to {fake_provider.url}/o/introspect/," in checked.stdout
    assert "secret" not in checked.stdout


def test_userinfo_refusals_say_that_userinfo_needs_openid(
    fake_provider: FakeProvider, store_url: str
) -> None:
    # oidc-provider's answer to a token without openid (lib/actions/userinfo.js).
    fake_provider.route(
        "/me",
        lambda r: Reply(
            403,
            {
                "error": "insufficient_scope",
                "error_description": "access token missing openid scope",
                "scope": "openid",
            },
        ),
    )
    env = cli_env(
        store_url,
        RESTAUTH_PROVIDERS="idp",
        RESTAUTH_IDP_TYPE="oauth2",
        RESTAUTH_IDP_USERINFO_URL=f"{fake_provider.url}/me",
    )
    checked = subprocess.run(
        [RESTAUTH, "check", "--bearer", "opaque-1"], env=env, capture_output=True, text=True
    )
    assert checked.returncode == 1
    assert "openid scope" in checked.stdout


def test_an_unknown_issuer_is_named_beside_the_configured_ones(
    fake_provider: FakeProvider, store_url: str
) -> None:
    env = cli_env(
        store_url,
        RESTAUTH_PROVIDERS="idp",
        RESTAUTH_IDP_TYPE="oidc",
        RESTAUTH_IDP_ISSUER="http://127.0.0.1:8080/realms/corp",
        RESTAUTH_IDP_AUDIENCE="api",
        RESTAUTH_IDP_JWKS_URL=f"{fake_provider.url}/keys",
    )
    token = KEY.sign(now_claims(iss="http://localhost:8080/realms/corp/", aud="api", sub="a"))
    checked = subprocess.run(
        [RESTAUTH, "check", "--bearer", token], env=env, capture_output=True, text=True
    )
    assert "'http://localhost:8080/realms/corp/'" in checked.stdout
    assert "'http://127.0.0.1:8080/realms/corp'" in checked.stdout


def test_config_head_has_no_broken_pipe_traceback(store_url: str) -> None:
    # `restauth config | head -1`: the reader goes away after one line.
    config = subprocess.Popen(
        [RESTAUTH, "config"],
        env=cli_env(store_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert config.stdout is not None
    first = config.stdout.readline()
    config.stdout.close()
    _, errors = config.communicate(timeout=60)
    assert first.startswith(b"Settings")
    assert b"Traceback" not in errors
    assert b"BrokenPipeError" not in errors


def test_userinfo_command_shows_stable_and_readable_names_and_no_scopes_as_groups(
    fake_provider: FakeProvider, store_url: str
) -> None:
    fake_provider.route(
        "/me",
        lambda r: Reply(
            200,
            {
                "sub": "u-1",
                "oid": "690222be",
                "preferred_username": "abeli@microsoft.com",
                "scope": "read write",
                "groups": ["g1"],
            },
        ),
    )
    env = cli_env(
        store_url,
        RESTAUTH_PROVIDERS="idp",
        RESTAUTH_IDP_TYPE="oauth2",
        RESTAUTH_IDP_USERINFO_URL=f"{fake_provider.url}/me",
    )
    out = subprocess.run(
        [RESTAUTH, "userinfo", "--provider", "idp", "opaque-1"],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert "oid                  stable" in out
    assert "preferred_username   readable" in out
    groups = next(line for line in out.splitlines() if line.startswith("Group attributes"))
    assert "scope" not in groups


def test_check_reads_expiries_as_a_person_would() -> None:
    from restauth_wsgi.cli.check import expiry
    from restauth_wsgi.identity import Identity

    now = 1_000_000.0

    def shown(method: str, expires_at: float | None) -> str:
        return expiry(Identity("a", method, "Bearer", expires_at=expires_at), now=now)

    assert shown("userinfo", None).startswith("unknown")
    assert shown("api_token", None) == "never"
    assert shown("jwt", now + 3 * 3600).endswith("(in 3.0 hours)")
    assert shown("jwt", now + 600).endswith("(in 10 minutes)")
    assert shown("jwt", now + 5 * 86400).endswith("(in 5.0 days)")
    assert "accepted within the leeway" in shown("jwt", now - 30)
