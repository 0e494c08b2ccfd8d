"""Nobody answers for somebody else, and one person has one name.

A shared cache's answers (and lockout counters) belong to the configuration
that produced them; a token goes only to a provider that could have issued
it; introspection needs an audience; an ID token is not an access token;
username transforms and several providers never merge two people; the
identity an application gets is read-only. Against the real OpenID provider
and real Redis where the attack needs them, provider-shaped fakes elsewhere.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.test import Client

from restauth_wsgi import ConfigurationError, RestAuthMiddleware, Settings
from restauth_wsgi.providers.settings import ProviderSettings

from .fake_provider import FakeProvider, Reply
from .helpers import RESTAUTH, claims_token, cli_env, echo_app, serve_claims
from .oidc_provider import (
    CLIENT,
    RESOURCE_JWT,
    RESOURCE_OPAQUE,
    RESOURCE_OTHER,
    RESOURCE_SERVER,
    OidcProvider,
)
from .services import redis_server


def ask(client: Client, token: str, remote: str = "127.0.0.1") -> tuple[int, dict[str, Any]]:
    response = client.get(
        "/", headers={"Authorization": f"Bearer {token}"}, environ_overrides={"REMOTE_ADDR": remote}
    )
    return response.status_code, json.loads(response.get_data())


def introspecting(op: OidcProvider, audience: str, name: str = "okta") -> ProviderSettings:
    return ProviderSettings(
        name,
        type="oidc",
        issuer=op.issuer,
        validation="introspection",
        client_id=RESOURCE_SERVER[0],
        client_secret=RESOURCE_SERVER[1],
        audience=(audience,),
    )


# -- 8: two services sharing one Redis --------------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield f"redis://127.0.0.1:{server.port}/0"


@pytest.mark.slow
def test_services_sharing_a_cache_share_no_answers(
    oidc_provider: OidcProvider, redis_url: str, tmp_path: Any
) -> None:
    def service(audience: str, store: str) -> Client:
        settings = Settings(
            token_store=f"sqlite://{tmp_path}/{store}.db",
            cache=redis_url,
            providers=(introspecting(oidc_provider, audience),),
        )
        return Client(RestAuthMiddleware(echo_app, settings=settings))

    a, b = service(RESOURCE_OPAQUE, "a"), service(RESOURCE_OTHER, "b")
    for_a = oidc_provider.user_tokens("alice", resource=RESOURCE_OPAQUE, scope="openid read")
    assert ask(a, for_a["access_token"])[0] == 200
    assert ask(b, for_a["access_token"])[0] == 401, "B never takes A's answer"
    for_b = oidc_provider.user_tokens("bob", resource=RESOURCE_OTHER, scope="openid read")
    assert ask(a, for_b["access_token"])[0] == 401, "A's refusal first..."
    assert ask(b, for_b["access_token"])[0] == 200, "...is not B's"


@pytest.mark.slow
def test_lockout_counters_are_per_service_unless_named_alike(
    redis_url: str, tmp_path: Any, fake_provider: FakeProvider
) -> None:
    fake_provider.route("/me", serve_claims)

    def service(store: str, **changes: Any) -> Client:
        settings = Settings(
            token_store=f"sqlite://{tmp_path}/{store}.db",
            cache=redis_url,
            lockout_threshold=3,
            providers=(
                ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me"),
            ),
            **changes,
        )
        return Client(RestAuthMiddleware(echo_app, settings=settings))

    a, b = service("a"), service("b")
    for _ in range(3):
        assert ask(a, "restauth_wrong", "192.0.2.5")[0] == 401
    assert ask(a, claims_token(sub="x1"), "192.0.2.5")[0] == 429
    assert ask(b, claims_token(sub="x2"), "192.0.2.5")[0] == 200, "another service"
    c, d = service("c", cache_namespace="corp"), service("d", cache_namespace="corp")
    for _ in range(3):
        assert ask(c, "restauth_wrong", "192.0.2.6")[0] == 401
    assert ask(d, claims_token(sub="x3"), "192.0.2.6")[0] == 429, "named alike: shared"


def test_a_changed_configuration_does_not_reuse_old_answers(
    fake_provider: FakeProvider, store_url: str, tmp_path: Any
) -> None:
    def introspect(request: Any) -> Reply:
        return Reply(200, {"active": True, "sub": "alice", "aud": "api-a", "exp": 2**31})

    fake_provider.route("/introspect", introspect, method="POST")
    cache = f"file://{tmp_path}/cache"

    def service(audience: str) -> Client:
        provider = ProviderSettings(
            "idp",
            type="oauth2",
            introspection_url=f"{fake_provider.url}/introspect",
            client_id="rs",
            client_secret="s",
            audience=(audience,),
        )
        settings = Settings(token_store=store_url, cache=cache, providers=(provider,))
        return Client(RestAuthMiddleware(echo_app, settings=settings))

    assert ask(service("api-a"), "opaque-1")[0] == 200
    assert ask(service("api-b"), "opaque-1")[0] == 401
    assert fake_provider.calls["/introspect"] == 2, "asked again, not answered from the cache"


# -- 9: tokens go only to providers that could have issued them ---------------------------------


@pytest.fixture
def corp_and_families(fake_provider: FakeProvider, store_url: str) -> Callable[..., Client]:
    fake_provider.route("/corp/me", lambda r: Reply(401, {"error": "invalid_token"}))
    fake_provider.route(
        "/github/user",
        lambda r: Reply(200, {"login": "octocat", "id": 1}, {"X-OAuth-Scopes": "read:user"}),
    )
    fake_provider.route("/gitlab/oauth/token/info", lambda r: Reply(401, {}))

    def build(*names: str, **changes: Any) -> Client:
        available = {
            "corp": ProviderSettings(
                "corp", type="oauth2", userinfo_url=f"{fake_provider.url}/corp/me"
            ),
            "github": ProviderSettings(
                "github", url=f"{fake_provider.url}/github", username_prefix="gh:"
            ),
            "gitlab": ProviderSettings(
                "gitlab", url=f"{fake_provider.url}/gitlab", client_id="app", username_prefix="gl:"
            ),
        }
        providers = tuple(available[n] for n in names)
        settings = Settings(token_store=store_url, providers=providers, **changes)
        return Client(RestAuthMiddleware(echo_app, settings=settings))

    return build


@pytest.mark.parametrize(
    ("names", "token", "expected", "asked"),
    [
        pytest.param(("corp", "github"), "gho_" + "a" * 36, 200, "/github/user", id="github"),
        pytest.param(("corp",), "ghp_" + "a" * 36, 401, None, id="github-without-github"),
        pytest.param(("corp", "github"), "glpat-" + "a" * 20, 401, None, id="gitlab-elsewhere"),
        pytest.param(
            ("corp", "gitlab"), "glpat-" + "a" * 20, 401, "/gitlab/oauth/token/info", id="gitlab"
        ),
        pytest.param(("corp",), "ya29." + "a" * 40, 401, None, id="google-without-google"),
        pytest.param(("corp",), "xoxp-1-2-3-abc", 401, None, id="slack-without-slack"),
        # Slack's browser-session and other xox* credentials: Slack's too.
        pytest.param(("corp",), "xoxc-1-2-3-abc", 401, None, id="slack-xoxc-without-slack"),
        pytest.param(("corp",), "xoxd-abcdef", 401, None, id="slack-xoxd-without-slack"),
        pytest.param(("corp",), "xoxs-1-2-3-abc", 401, None, id="slack-xoxs-without-slack"),
        pytest.param(("corp",), "EAA" + "b" * 40, 401, None, id="facebook-without-facebook"),
        pytest.param(("corp", "github"), "opaque-123", 401, "/corp/me", id="no-prefix-to-corp"),
    ],
)
def test_a_token_goes_only_to_its_family(
    corp_and_families: Callable[..., Client],
    fake_provider: FakeProvider,
    names: tuple[str, ...],
    token: str,
    expected: int,
    asked: str | None,
) -> None:
    status, _ = ask(corp_and_families(*names), token)
    assert status == expected
    called = {path for path, count in fake_provider.calls.items() if count}
    assert called == ({asked} if asked else set())


def test_our_own_tokens_go_to_no_provider(
    corp_and_families: Callable[..., Client], fake_provider: FakeProvider
) -> None:
    client = corp_and_families("corp", api_tokens=False)
    assert ask(client, "restauth_" + "A" * 51)[0] == 401
    assert not any(fake_provider.calls.values())


# -- 10: introspection needs an audience --------------------------------------------------------


def test_introspection_without_an_audience_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="RESTAUTH_IDP_AUDIENCE"):
        Settings(
            providers=(
                ProviderSettings(
                    "idp",
                    type="oidc",
                    issuer="https://idp.example.com",
                    validation="introspection",
                    client_id="c",
                    client_secret="s",
                ),
            )
        )


@pytest.mark.slow
def test_introspection_refuses_another_apis_token(
    oidc_provider: OidcProvider, store_url: str
) -> None:
    settings = Settings(
        token_store=store_url, providers=(introspecting(oidc_provider, RESOURCE_OPAQUE),)
    )
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    ours = oidc_provider.user_tokens("alice", resource=RESOURCE_OPAQUE, scope="openid read")
    other = oidc_provider.user_tokens("alice", resource=RESOURCE_OTHER, scope="openid read")
    assert ask(client, ours["access_token"])[0] == 200
    status, body = ask(client, other["access_token"])
    assert (status, body["error"]) == (401, "invalid_token")


def test_any_audience_is_explicit_and_warned_about(store_url: str) -> None:
    env = cli_env(
        store_url,
        RESTAUTH_PROVIDERS="idp",
        RESTAUTH_IDP_TYPE="oauth2",
        RESTAUTH_IDP_INTROSPECTION_URL="http://127.0.0.1:9/introspect",
        RESTAUTH_IDP_CLIENT_ID="c",
        RESTAUTH_IDP_CLIENT_SECRET="s",
        RESTAUTH_IDP_AUDIENCE="*",
    )
    done = subprocess.run([RESTAUTH, "config"], env=env, capture_output=True, text=True)
    assert "RESTAUTH_IDP_AUDIENCE is '*'" in done.stdout
    with pytest.raises(ConfigurationError, match="only possible with introspection"):
        Settings(
            providers=(
                ProviderSettings(
                    "idp", type="oidc", issuer="https://idp.example.com", audience=("*",)
                ),
            )
        )


# -- 11: an ID token is not an access token --------------------------------------------------


@pytest.mark.slow
def test_an_id_token_is_refused_where_its_audience_would_pass(
    oidc_provider: OidcProvider, store_url: str
) -> None:
    provider = ProviderSettings(
        "op", type="oidc", issuer=oidc_provider.issuer, audience=(RESOURCE_JWT, CLIENT[0])
    )
    settings = Settings(token_store=store_url, providers=(provider,))
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    tokens = oidc_provider.user_tokens("alice", resource=RESOURCE_JWT, scope="openid read")
    assert ask(client, tokens["access_token"])[0] == 200
    status, body = ask(client, tokens["id_token"])
    assert (status, body["error"]) == (401, "invalid_token")
    forged_nonce = oidc_provider.mint({"aud": CLIENT[0], "nonce": "n-1"}, {"typ": "JWT"})
    assert ask(client, forged_nonce)[0] == 401


# -- 12, 13: one person, one name -------------------------------------------------------------


@pytest.fixture
def claims_provider(fake_provider: FakeProvider, store_url: str) -> Callable[..., Client]:
    fake_provider.route("/me", serve_claims)

    def build(**mapping: Any) -> Client:
        provider = ProviderSettings(
            "idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me", cache_ttl=0, **mapping
        )
        settings = Settings(token_store=store_url, providers=(provider,))
        return Client(RestAuthMiddleware(echo_app, settings=settings))

    return build


@pytest.mark.parametrize(
    ("mapping", "sub", "user"),
    [
        pytest.param(
            {"username_strip_domain": ("corp.example",)},
            "alice@corp.example",
            "alice",
            id="listed-domain",
        ),
        pytest.param(
            {"username_strip_domain": ("corp.example",)},
            "alice@CORP.example",
            "alice",
            id="listed-domain-any-case",
        ),
        pytest.param(
            {"username_strip_domain": ("corp.example",)},
            "alice@attacker.example",
            "alice@attacker.example",
            id="other-domain-kept",
        ),
        pytest.param({"username_lowercase": True}, "\u212aelly", "\u212aelly", id="kelvin-sign"),
        pytest.param({"username_lowercase": True}, "KELLY", "kelly", id="ascii"),
        pytest.param({"username_lowercase": True}, "ÉLODIE", "élodie", id="non-ascii-letters"),
        pytest.param({"username_lowercase": True}, "\u0130nci", "\u0130nci", id="dotted-capital-i"),
        pytest.param({"username_lowercase": True}, "\u212bsa", "\u212bsa", id="angstrom-sign"),
        pytest.param({"username_lowercase": True}, "\u00c5sa", "\u00e5sa", id="a-with-ring"),
        pytest.param({"username_lowercase": True}, "\u2126", "\u2126", id="ohm-sign"),
        pytest.param({"username_lowercase": True}, "\u03f4", "\u03f4", id="theta-symbol"),
        pytest.param({"username_prefix": "gh:"}, "alice", "gh:alice", id="prefix"),
    ],
)
def test_transforms_never_merge_two_people(
    claims_provider: Callable[..., Client], mapping: dict[str, Any], sub: str, user: str
) -> None:
    status, seen = ask(claims_provider(**mapping), claims_token(sub=sub))
    assert (status, seen["remote_user"]) == (200, user)


def test_stripping_any_domain_is_no_longer_possible() -> None:
    with pytest.raises(ConfigurationError, match="RESTAUTH_IDP_USERNAME_STRIP_DOMAIN"):
        ProviderSettings.from_mapping(
            "idp",
            {"RESTAUTH_IDP_TYPE": "oauth2", "RESTAUTH_IDP_USERNAME_STRIP_DOMAIN": "true"},
        )


def clashes(*providers: ProviderSettings) -> list[str]:
    from restauth_wsgi.provider_chain import Providers

    return Providers(Settings(providers=providers)).username_clashes()


def oauth2(name: str, **more: Any) -> ProviderSettings:
    return ProviderSettings(name, type="oauth2", userinfo_url="http://127.0.0.1:9/me", **more)


@pytest.mark.parametrize(
    ("providers", "clash"),
    [
        pytest.param((oauth2("corp"), oauth2("ptr")), True, id="both-unprefixed"),
        pytest.param(
            (oauth2("corp"), oauth2("ptr", username_prefix="gh:")), True, id="one-unprefixed"
        ),
        pytest.param(
            (oauth2("corp", username_prefix="corp-"), oauth2("ptr", username_prefix="corp-x")),
            True,
            id="one-prefix-begins-the-other",
        ),
        pytest.param(
            (oauth2("corp", username_prefix="corp:"), oauth2("ptr", username_prefix="ptr:")),
            False,
            id="distinct",
        ),
        pytest.param(
            (
                oauth2("corp", username_prefix="corp:", service_accounts={"ci": "deploy"}),
                oauth2("ptr", username_prefix=""),
            ),
            True,
            id="service-account-in-another-namespace",
        ),
        pytest.param(
            (
                oauth2("corp", username_prefix="corp:", service_accounts={"ci": "svc:deploy"}),
                oauth2("ptr", username_prefix="ptr:"),
            ),
            False,
            id="service-account-apart",
        ),
    ],
)
def test_providers_sharing_a_namespace_are_named(
    providers: tuple[ProviderSettings, ...], clash: bool
) -> None:
    assert bool(clashes(*providers)) == clash


def test_a_shared_namespace_is_warned_about_at_start_up_and_by_config(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = cli_env(
        store_url,
        RESTAUTH_PROVIDERS="corp,github",
        RESTAUTH_CORP_TYPE="oauth2",
        RESTAUTH_CORP_USERINFO_URL="http://127.0.0.1:9/me",
        RESTAUTH_GITHUB_URL="http://127.0.0.1:9/github",
        RESTAUTH_GITHUB_USERNAME_PREFIX="gh:",
    )
    done = subprocess.run([RESTAUTH, "config"], env=env, capture_output=True, text=True)
    assert "corp and github can map different people to the same REMOTE_USER" in done.stdout
    with caplog.at_level(logging.WARNING, logger="restauth_wsgi"):
        RestAuthMiddleware(
            echo_app,
            settings=Settings(
                token_store=store_url,
                providers=(oauth2("corp"), ProviderSettings("github", url="http://127.0.0.1:9/gh")),
            ),
        )
    assert [r for r in caplog.records if "same REMOTE_USER" in r.getMessage()]


# -- 14: the identity an application gets is read-only ------------------------------------------


def test_an_application_cannot_change_the_next_requests_identity(
    fake_provider: FakeProvider, store_url: str
) -> None:
    fake_provider.route("/me", serve_claims)
    attempts: list[str] = []

    def meddling(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        claims = environ["restauth.identity"].claims
        for change in (
            lambda: claims.__setitem__("sub", "root"),
            lambda: claims["groups"].append("admins"),
            lambda: claims["realm_access"].__setitem__("roles", ["admin"]),
        ):
            try:
                change()
                attempts.append("changed")
            except (TypeError, AttributeError):
                attempts.append("refused")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(dict(claims), default=list).encode()]

    provider = ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me")
    client = Client(
        RestAuthMiddleware(
            meddling, settings=Settings(token_store=store_url, providers=(provider,))
        )
    )
    token = claims_token(sub="alice", groups=["staff"], realm_access={"roles": ["user"]})
    first = json.loads(client.get("/", headers={"Authorization": f"Bearer {token}"}).get_data())
    second = json.loads(client.get("/", headers={"Authorization": f"Bearer {token}"}).get_data())
    assert attempts == ["refused"] * 6
    assert first == second
    assert second["sub"] == "alice"
    assert second["groups"] == ["staff"]


# -- a second attack review ------------------------------------------------------------------


def test_a_jwt_naming_another_issuer_is_shown_to_no_provider(
    fake_provider: FakeProvider, store_url: str
) -> None:
    fake_provider.route("/me", serve_claims)
    partner = ProviderSettings("ptr", type="oauth2", userinfo_url=f"{fake_provider.url}/me")
    client = Client(
        RestAuthMiddleware(echo_app, settings=Settings(token_store=store_url, providers=(partner,)))
    )
    google_id_token = (
        "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ."
        "eyJpc3MiOiJodHRwczovL2FjY291bnRzLmdvb2dsZS5jb20iLCJzdWIiOiIxIn0.c2ln"
    )
    assert ask(client, google_id_token)[0] == 401
    assert fake_provider.calls["/me"] == 0, "never shown to the partner"


def test_providers_sharing_an_issuer_each_get_their_tokens(
    fake_provider: FakeProvider, store_url: str
) -> None:
    from .oidc_provider import SigningKey

    key = SigningKey("RS256")
    fake_provider.json("/keys", {"keys": [key.public_jwk()]})
    issuer = "https://idp.shared.test"

    def api(name: str, audience: str) -> ProviderSettings:
        return ProviderSettings(
            name,
            type="oidc",
            issuer=issuer,
            audience=(audience,),
            jwks_url=f"{fake_provider.url}/keys",
            username_prefix=f"{name}:",
        )

    settings = Settings(
        token_store=store_url, providers=(api("staff", "staff-api"), api("ptr", "partner-api"))
    )
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    now = int(time.time())
    for audience, user in (("staff-api", "staff:alice"), ("partner-api", "ptr:alice")):
        token = key.sign({"iss": issuer, "aud": audience, "sub": "alice", "exp": now + 60})
        status, seen = ask(client, token)
        assert (status, seen["remote_user"]) == (200, user)


def test_an_answer_nested_too_deep_is_refused_not_a_500(
    fake_provider: FakeProvider, store_url: str
) -> None:
    nested = '{"sub": "alice", "x": ' + "[" * 500 + "]" * 500 + "}"
    fake_provider.route("/me", lambda r: Reply(200, nested.encode()))
    provider = ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me")
    client = Client(
        RestAuthMiddleware(
            echo_app, settings=Settings(token_store=store_url, providers=(provider,))
        )
    )
    for _ in range(2):
        assert ask(client, "opaque-deep")[0] == 401


@pytest.mark.slow
def test_a_redis_miss_leaves_the_applications_logging_alone(
    fake_provider: FakeProvider, store_url: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake_provider.route("/me", serve_claims)
    provider = ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me")
    settings = Settings(token_store=store_url, cache=redis_url, providers=(provider,))
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    with caplog.at_level(logging.DEBUG):
        assert ask(client, claims_token(sub="alice"))[0] == 200
    # cachelib reports a miss with logging.warning() on the root logger, which
    # configures the application's logging on first use.
    assert not [r for r in caplog.records if r.name == "root"]


# -- a third attack review --------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub",
    [
        pytest.param("alice\x85admin", id="next-line"),
        pytest.param("alice\u2028admin", id="line-separator"),
        pytest.param("alice\u2029admin", id="paragraph-separator"),
        pytest.param("alice\x9b2Kadmin", id="c1-csi"),
        pytest.param("alice\u202eadmin", id="bidi-override"),
        pytest.param("alice\u2066admin", id="bidi-isolate"),
        pytest.param("alice\u200badmin", id="zero-width-space"),
        pytest.param("\ufeffalice", id="byte-order-mark"),
    ],
)
def test_a_username_with_an_invisible_or_line_breaking_character_is_refused(
    claims_provider: Callable[..., Client], sub: str
) -> None:
    # str.splitlines() splits on NEL and U+2028: one log line would be two,
    # and a name shown reversed or with an invisible part is another name.
    status, _ = ask(claims_provider(), claims_token(sub=sub))
    assert status == 401


@pytest.mark.parametrize("user", ["alice\x85admin", "alice\u2028x", "alice\u202ex"])
def test_a_trusted_remote_user_with_such_a_character_is_refused(store_url: str, user: str) -> None:
    settings = Settings(token_store=store_url, trust_remote_user=True)
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    response = client.get("/", environ_overrides={"REMOTE_USER": user})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "expiry",
    [
        pytest.param({"exp": "\u00b2"}, id="superscript-two"),
        pytest.param({"exp": "\u0661\u0662"}, id="arabic-indic-digits"),
        pytest.param({"exp": "\uff11"}, id="fullwidth-one"),
    ],
)
def test_an_expiry_in_other_digits_is_no_expiry_not_a_500(
    fake_provider: FakeProvider, store_url: str, expiry: dict[str, str]
) -> None:
    # "²".isdigit() is true and int("²") raises: such an answer crashed the request.
    fake_provider.route(
        "/introspect",
        lambda r: Reply(200, {"active": True, "sub": "alice", "aud": "api", **expiry}),
        method="POST",
    )
    provider = ProviderSettings(
        "idp",
        type="oauth2",
        validation="introspection",
        introspection_url=f"{fake_provider.url}/introspect",
        client_id="app",
        client_secret="s",
        audience=("api",),
    )
    settings = Settings(token_store=store_url, providers=(provider,))
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    status, seen = ask(client, "opaque-with-odd-digits")
    assert (status, seen["remote_user"]) == (200, "alice")


def test_a_padded_jwt_is_shown_to_no_other_provider(
    fake_provider: FakeProvider, store_url: str
) -> None:
    # RFC 6750 allows '=' at a bearer token's end; a JWT with one added failed
    # the strict parse and went, as an opaque token, to the partner's userinfo.
    from .oidc_provider import SigningKey

    key = SigningKey("RS256")
    fake_provider.json("/keys", {"keys": [key.public_jwk()]})
    fake_provider.route("/partner/me", serve_claims)
    issuer = "https://corp.example"
    corp = ProviderSettings(
        "corp",
        type="oidc",
        issuer=issuer,
        audience=("api",),
        jwks_url=f"{fake_provider.url}/keys",
        username_prefix="corp:",
    )
    partner = ProviderSettings(
        "ptr", type="oauth2", userinfo_url=f"{fake_provider.url}/partner/me", username_prefix="p:"
    )
    settings = Settings(token_store=store_url, providers=(corp, partner))
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    token = key.sign({"iss": issuer, "aud": "api", "sub": "alice", "exp": int(time.time()) + 60})
    assert ask(client, token)[1]["remote_user"] == "corp:alice"
    # The signature's 342 characters take "==" as padding (the strict parse
    # accepts a segment padded right); "=" or "===" are no JWT of anyone's.
    status, seen = ask(client, token + "==")
    assert (status, seen["remote_user"]) == (200, "corp:alice")
    for padding in ("=", "===", "===="):
        assert ask(client, token + padding)[0] == 401
    head, body, signature = token.split(".")
    for mangled in (
        token + ".",
        token + "~",
        "." + token,
        f"{head}..{body}.{signature}",
        token.replace("-", "+").replace("_", "/"),
    ):
        assert ask(client, mangled)[0] == 401, mangled
    assert fake_provider.calls["/partner/me"] == 0, "never shown to the partner"
    # A JWE (Auth0 issues its opaque tokens so) is no JWS: the partner may see it.
    jwe_header = base64.urlsafe_b64encode(b'{"alg":"dir","enc":"A256GCM"}').decode().rstrip("=")
    ask(client, f"{jwe_header}..aXY.Y2lwaGVy.dGFn")
    assert fake_provider.calls["/partner/me"] == 1
