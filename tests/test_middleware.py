"""What the middleware does around authentication: the environ it hands on,
what it strips, what passes unauthenticated, and its own answers."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from restauth_wsgi import ConfigurationError, RestAuthMiddleware, Settings
from restauth_wsgi.authentication import Authentication
from restauth_wsgi.cache.recent import RecentAnswers
from restauth_wsgi.errors import InvalidToken
from restauth_wsgi.identity import Identity
from restauth_wsgi.tokens.store import TokenRecord

from .helpers import echo_app

Issue = Callable[..., tuple[str, TokenRecord]]


def seen(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    data: dict[str, Any] = json.loads(response.get_data())
    return data


def test_bearer_sets_remote_user_auth_type_and_identity(client: Client, issue: Issue) -> None:
    token, record = issue("alice", name="ci")
    app_saw = seen(client.get("/", headers={"Authorization": f"Bearer {token}"}))
    assert app_saw["remote_user"] == "alice"
    assert app_saw["auth_type"] == "Bearer"
    identity = app_saw["identity"]
    assert identity["username"] == "alice"
    assert identity["method"] == "api_token"
    assert identity["token_id"] == record.token_id
    assert identity["expires_at"] == record.expires_at


def test_basic_sets_auth_type_basic(client: Client, issue: Issue) -> None:
    token, _ = issue("alice@example.com")
    basic = base64.b64encode(f"alice@example.com:{token}".encode()).decode()
    app_saw = seen(client.get("/", headers={"Authorization": f"Basic {basic}"}))
    assert app_saw["remote_user"] == "alice@example.com"
    assert app_saw["auth_type"] == "Basic"


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"REMOTE_USER": "admin"}, id="remote-user"),
        pytest.param({"REMOTE_USER": "admin", "AUTH_TYPE": "Negotiate"}, id="with-auth-type"),
        pytest.param({"HTTP_REMOTE_USER": "admin"}, id="remote-user-header"),
        pytest.param({"restauth.identity": "forged"}, id="identity-key"),
    ],
)
def test_spoofed_identity_never_reaches_the_app(
    client: Client, issue: Issue, environ: dict[str, str]
) -> None:
    assert client.get("/", environ_overrides=environ).status_code == 401
    token, _ = issue("alice")
    app_saw = seen(
        client.get("/", headers={"Authorization": f"Bearer {token}"}, environ_overrides=environ)
    )
    assert app_saw["remote_user"] == "alice"
    assert app_saw["auth_type"] == "Bearer"
    assert app_saw["identity"]["username"] == "alice"


def test_spoofed_remote_user_is_dropped_on_public_paths(
    settings: Settings, make_client: Callable[..., Client]
) -> None:
    client = make_client(dataclasses.replace(settings, public_paths=("/health",)))
    app_saw = seen(client.get("/health", environ_overrides={"REMOTE_USER": "admin"}))
    assert app_saw["remote_user"] is None
    assert app_saw["auth_type"] is None
    assert app_saw["untrusted"] == "admin", "kept aside under a namespaced key"


@pytest.mark.parametrize(
    "header",
    [
        "X-Remote-User",
        "X-Forwarded-User",
        "X-Forwarded-Email",
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "X-Auth-Request-Preferred-Username",
        "X-Auth-Request-Groups",
        "X-Auth-Request-Access-Token",
        "X-Forwarded-Preferred-Username",
        "X-Forwarded-Groups",
        "X-Forwarded-Access-Token",
        "X-Remote-Group",
        "X-Remote-Groups",
        "OIDC-Claim-sub",
        "OIDC-Claim-groups",
        "OIDC_CLAIM_email",
        "OIDC-Access-Token",
        "OIDC_id_token",
        "X-Amzn-Oidc-Identity",
        "X-Amzn-Oidc-Data",
        "X-Goog-Authenticated-User-Email",
        "X-Goog-Iap-Jwt-Assertion",
        "X-Ms-Client-Principal-Name",
        "X-Ms-Token-Aad-Access-Token",
        "Cf-Access-Authenticated-User-Email",
        "X-WEBAUTH-USER",
        "X-Consumer-Username",
        "X-Credential-Identifier",
        "X-Userinfo",
        "X-Forwarded-Client-Cert",
        "X-Ssl-Client-Dn",
        "Ssl-Client-S-Dn",
        "X-Client-Cert",
        "X-Authenticated-User",
        "X-Authenticated-Groups",
        "X-Proxy-User",
        "X-Forwarded-Login",
        "X-Auth-Username",
        "X-Remote-Roles",
        "X-Id-Token",
        "X-Access-Token",
        "X-Forwarded-Id-Token",
    ],
)
def test_proxy_identity_headers_are_stripped(
    settings: Settings, make_client: Callable[..., Client], issue: Issue, header: str
) -> None:
    client = make_client(dataclasses.replace(settings, public_paths=("/health",)))
    token, _ = issue("alice")
    forged = {header: "admin", "X-Request-Id": "7", "X-Forwarded-For": "192.0.2.1"}
    app_saw = seen(client.get("/", headers={"Authorization": f"Bearer {token}", **forged}))
    kept = {"HTTP_X_REQUEST_ID": "7", "HTTP_X_FORWARDED_FOR": "192.0.2.1"}
    key = "HTTP_" + header.upper().replace("-", "_")
    assert app_saw["spoofable"] == kept
    assert key not in app_saw["all"]
    public = seen(client.get("/health", headers=forged))
    assert public["spoofable"] == kept, "public paths too"
    assert key not in public["all"]


def test_trusted_remote_user_from_the_server_in_front(
    settings: Settings, make_client: Callable[..., Client]
) -> None:
    client = make_client(dataclasses.replace(settings, trust_remote_user=True))
    app_saw = seen(
        client.get("/", environ_overrides={"REMOTE_USER": "bob", "AUTH_TYPE": "Negotiate"})
    )
    assert app_saw["remote_user"] == "bob"
    assert app_saw["auth_type"] == "Negotiate"
    assert app_saw["identity"]["method"] == "remote_user"
    # Without one, authentication happens as usual.
    assert client.get("/").status_code == 401


def test_a_trusted_remote_user_is_still_subject_to_every_check(
    settings: Settings, make_client: Callable[..., Client], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\npaths = ["/admin/*"]\nusers = ["root"]\n')
    client = make_client(
        dataclasses.replace(
            settings,
            trust_remote_user=True,
            rules_file=str(rules),
            allowed_networks=("10.0.0.0/8",),
            public_paths=("/health",),
        )
    )

    def get(path: str, user: str, remote: str = "10.0.0.5", method: str = "GET") -> int:
        environ = {"REMOTE_USER": user, "REMOTE_ADDR": remote}
        return client.open(path, method=method, environ_overrides=environ).status_code

    assert get("/admin/x", "root") == 200
    assert get("/admin/x", "bob") == 403, "rules"
    assert get("/admin//x", "bob") == 403, "every spelling"
    assert get("/api", "bob", remote="192.0.2.1") == 403, "networks"
    assert get("/health", "bob", remote="192.0.2.1") == 403, "networks, public paths too"
    assert (
        seen(
            client.get(
                "/health", environ_overrides={"REMOTE_USER": "bob", "REMOTE_ADDR": "10.0.0.5"}
            )
        )["remote_user"]
        is None
    ), "public: nobody is authenticated"


def test_disabled_passes_everything_untouched(
    settings: Settings, make_client: Callable[..., Client]
) -> None:
    client = make_client(dataclasses.replace(settings, enabled=False))
    app_saw = seen(client.get("/", environ_overrides={"REMOTE_USER": "upstream"}))
    assert app_saw["remote_user"] == "upstream"
    assert seen(client.get("/", headers={"Authorization": "Bearer garbage"}))["identity"] is None


@pytest.mark.parametrize(
    ("path", "public"),
    [
        pytest.param("/health", True, id="exact"),
        pytest.param("/static/app.css", True, id="glob"),
        pytest.param("/static/img/logo.png", True, id="glob-nested"),
        pytest.param("/healthz", False, id="longer"),
        pytest.param("/api/health", False, id="suffix"),
        pytest.param("/static/../admin", False, id="dot-dot"),
        pytest.param("/static/./x", False, id="dot"),
        pytest.param("//health", False, id="double-slash"),
        pytest.param("/", False, id="root"),
    ],
)
def test_public_paths(
    settings: Settings, make_client: Callable[..., Client], path: str, public: bool
) -> None:
    client = make_client(dataclasses.replace(settings, public_paths=("/health", "/static/*")))
    response = client.get(path)
    assert response.status_code == (200 if public else 401)


PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}


def test_preflights_are_off_by_default() -> None:
    assert Settings().allow_preflight is False


@pytest.mark.parametrize(
    ("allow", "method", "headers", "status"),
    [
        pytest.param(True, "OPTIONS", PREFLIGHT, 200, id="preflight"),
        pytest.param(True, "OPTIONS", {"Origin": "https://app.example"}, 401, id="no-acrm"),
        pytest.param(True, "OPTIONS", {}, 401, id="plain-options"),
        pytest.param(True, "GET", PREFLIGHT, 401, id="not-options"),
        pytest.param(False, "OPTIONS", PREFLIGHT, 401, id="preflight-disallowed"),
    ],
)
def test_cors_preflight(
    settings: Settings,
    make_client: Callable[..., Client],
    allow: bool,
    method: str,
    headers: dict[str, str],
    status: int,
) -> None:
    client = make_client(dataclasses.replace(settings, allow_preflight=allow))
    assert client.open("/api", method=method, headers=headers).status_code == status


def test_realm_setting_appears_in_every_challenge(
    settings: Settings, make_client: Callable[..., Client]
) -> None:
    client = make_client(dataclasses.replace(settings, realm="Jira facade"))
    assert client.get("/").headers.getlist("WWW-Authenticate") == [
        'Bearer realm="Jira facade"',
        'Basic realm="Jira facade", charset="UTF-8"',
    ]


def test_token_store_outage_is_503_not_401(
    tmp_path: Path, make_client: Callable[..., Client], issue: Issue
) -> None:
    token, _ = issue("alice")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    client = make_client(Settings(token_store=f"sqlite://{blocker}/tokens.db"))
    response = client.get("/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "WWW-Authenticate" not in response.headers
    assert json.loads(response.get_data())["error"] == "temporarily_unavailable"
    # Credentials the store is not needed for are still answered normally.
    assert client.get("/", headers={"Authorization": "Bearer other"}).status_code == 401


def test_construction_does_no_io(tmp_path: Path) -> None:
    target = tmp_path / "later" / "tokens.db"
    middleware = RestAuthMiddleware(echo_app, settings=Settings(token_store=f"sqlite://{target}"))
    assert not target.parent.exists()
    Client(middleware).get("/", headers={"Authorization": "Bearer restauth_" + "a" * 51})
    assert not target.parent.exists(), "a malformed token is refused without a lookup"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RESTAUTH_ENABLED", "maybe"),
        ("RESTAUTH_TOKEN_MAX_PER_USER", "ten"),
        ("RESTAUTH_TOKEN_MAX_LIFETIME", "a year"),
        ("RESTAUTH_TOKEN_DEFAULT_LIFETIME", "90"),  # 90 what? a lifetime needs a unit
        ("RESTAUTH_PUBLIC_PATHS", "health"),
        ("RESTAUTH_TOKEN_STORE", "mysql://db/tokens"),
        ("RESTAUTH_REALM", 'say "hi"'),
    ],
)
def test_invalid_environment_fails_at_construction_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=f"^{variable}: ") as raised:
        RestAuthMiddleware(echo_app)
    assert raised.value.variable == variable


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, store_url: str) -> None:
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", store_url)
    monkeypatch.setenv("RESTAUTH_PUBLIC_PATHS", " /health , /static/* ,")
    middleware = RestAuthMiddleware(echo_app)
    assert middleware.settings.public_paths == ("/health", "/static/*")
    assert Client(middleware).get("/static/x").status_code == 200


def test_misspelt_variable_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, store_url: str
) -> None:
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", store_url)
    monkeypatch.setenv("RESTAUTH_PUBLIC_PATH", "/health")
    with caplog.at_level(logging.WARNING, logger="restauth_wsgi"):
        RestAuthMiddleware(echo_app)
    assert "RESTAUTH_PUBLIC_PATH is not a restauth-wsgi setting" in caplog.text


def test_logs_never_hold_a_token(
    client: Client, issue: Issue, caplog: pytest.LogCaptureFixture
) -> None:
    token, _ = issue("alice")
    wrong = token[:-8] + "AAAAAAAA"
    with caplog.at_level(logging.DEBUG):
        for header in (f"Bearer {token}", f"Bearer {wrong}", "Bearer opaque-secret-value"):
            client.get("/", headers={"Authorization": header})
        client.get("/", headers={"Authorization": "Basic " + base64.b64encode(b"a:pw").decode()})
    assert caplog.text, "refusals are logged"
    for secret in (token, wrong, token[len("restauth_") + 13 :], "opaque-secret-value", "pw"):
        assert secret not in caplog.text
    assert "credentials=sha256:" in caplog.text


def test_the_mod_wsgi_hint_needs_evidence(
    settings: Settings, make_client: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    under_mod_wsgi = {"mod_wsgi.version": (5, 0, 0)}

    def hints() -> int:
        return sum("WSGIPassAuthorization" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.WARNING, logger="restauth_wsgi"):
        client = make_client(dataclasses.replace(settings, public_paths=("/health",)))
        for _ in range(50):
            client.get("/health", environ_overrides=under_mod_wsgi)
        assert hints() == 0, "public paths are no evidence"
        for _ in range(19):
            client.get("/api", environ_overrides=under_mod_wsgi)
        assert hints() == 0, "a few anonymous probes are no evidence"
        for _ in range(10):
            client.get("/api", environ_overrides=under_mod_wsgi)
        assert hints() == 1, "many protected requests and never a header: said once"

        working = make_client(settings)
        working.get("/api", headers={"Authorization": "Bearer x"}, environ_overrides=under_mod_wsgi)
        for _ in range(50):
            working.get("/api", environ_overrides=under_mod_wsgi)
        assert hints() == 1, "one request with the header proves the directive is on"


def test_more_identity_headers_can_be_named(
    settings: Settings, make_client: Callable[..., Client], issue: Issue
) -> None:
    client = make_client(
        dataclasses.replace(settings, strip_headers=("X-Corp-User", "X-Corp-Sso-*"))
    )
    token, _ = issue("alice")
    forged = {"X-Corp-User": "root", "X-Corp-Sso-Groups": "admins", "X-Corp-Other": "kept"}
    app_saw = seen(client.get("/", headers={"Authorization": f"Bearer {token}", **forged}))
    assert app_saw["spoofable"] == {"HTTP_X_CORP_OTHER": "kept"}
    with pytest.raises(ConfigurationError, match="RESTAUTH_STRIP_HEADERS"):
        Settings(strip_headers=("X Corp",))


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        pytest.param("", 401, id="empty-is-nobody"),
        pytest.param("   ", 401, id="blank-is-nobody"),
        pytest.param("root\n", 400, id="control-character"),
        pytest.param("r\x00oot", 400, id="nul"),
        pytest.param("x" * 256, 400, id="too-long"),
        pytest.param("bob", 200, id="a-user"),
    ],
)
def test_a_trusted_remote_user_must_be_a_username(
    settings: Settings, make_client: Callable[..., Client], upstream: str, expected: int
) -> None:
    client = make_client(dataclasses.replace(settings, trust_remote_user=True))
    assert client.get("/", environ_overrides={"REMOTE_USER": upstream}).status_code == expected


class _Provider:
    """A provider's authenticator that accepts one token (until it is
    revoked) and counts its checks."""

    schemes = frozenset({"Bearer"})
    remembers = True

    def __init__(self, expires_at: float | None = None) -> None:
        self.checks = 0
        self.revoked = False
        self.expires_at = expires_at

    def authenticate(self, credentials: Any, guard: Any) -> Identity | None:
        self.checks += 1
        if credentials.secret != "good":
            return None
        if self.revoked:
            # Not remembered: as an unknown key id's refusal, or any refusal
            # with RESTAUTH_NEGATIVE_CACHE_TTL=0.
            error = InvalidToken("The access token is invalid.", reason="revoked")
            error.remember = False
            raise error
        return Identity("alice", "jwt", "Bearer", provider="p", expires_at=self.expires_at)

    def close(self) -> None:
        """Nothing held."""


def _remembering(
    provider: _Provider,
    ttl: float,
    *,
    negative_ttl: float = 0,
    clock: Callable[[], float] | None = None,
) -> tuple[list[float], Authentication]:
    """The provider behind an authentication that remembers its answers for
    ``ttl`` seconds, on a clock the test moves (``now[0]``), or on ``clock``."""
    now = [1000.0]
    read = clock or (lambda: now[0])
    authentication = Authentication(
        [provider],
        recent=RecentAnswers(100, read),
        cache_ttls={"p": ttl},
        negative_ttl=negative_ttl,
        clock=read,
    )
    return now, authentication


def test_a_remembered_answer_ends_at_its_time_to_the_tick() -> None:
    """The recall reads the map's entries itself, with one clock read for
    the entry's expiry: an answer kept for 10 s stands at 9.999 s and not
    at 10 s (then the provider is asked again), and the map and the
    authentication cannot be given two clocks."""
    provider = _Provider()
    now, authentication = _remembering(provider, 10)
    assert authentication.authenticate("Bearer good").username == "alice"
    assert provider.checks == 1
    now[0] += 9.999
    assert isinstance(authentication.recall("Bearer good"), Identity)
    assert authentication.authenticate("Bearer good").username == "alice"
    assert provider.checks == 1, "answered from memory"
    now[0] = 1010.0
    assert not isinstance(authentication.recall("Bearer good"), Identity)
    assert authentication.authenticate("Bearer good").username == "alice"
    assert provider.checks == 2, "asked again once the answer ended"
    assert not isinstance(authentication.recall("Bearer other"), Identity)

    with pytest.raises(ValueError, match="clock"):
        Authentication([provider], recent=RecentAnswers(100), clock=lambda: now[0])


def test_an_ended_answer_stays_ended_when_the_clock_steps_back() -> None:
    """Found by an attack review: an answer found ended was left in memory,
    so after the provider refused the token (a refusal not remembered) a
    wall clock stepped back (NTP, a VM resumed) made the revoked token's
    old answer stand again."""
    provider = _Provider()
    now, authentication = _remembering(provider, 10)
    assert authentication.authenticate("Bearer good").username == "alice"
    provider.revoked = True
    now[0] = 1011.0
    with pytest.raises(InvalidToken):
        authentication.authenticate("Bearer good")
    now[0] = 1008.0  # the clock steps back
    assert not isinstance(authentication.recall("Bearer good"), Identity)
    with pytest.raises(InvalidToken):
        authentication.authenticate("Bearer good")


def test_a_remembered_answer_never_outlives_the_token_however_the_clock_ticks() -> None:
    """Found by an attack review: the end of an answer limited by the token's
    own expiry was the time left, read on one clock read and added to
    another, so it overran the expiry by the time between them; it is now
    the expiry itself."""
    now = [1000.0]
    tick = [0.001]

    def clock() -> float:
        now[0] += tick[0]  # every read a millisecond later (a thread switch between reads)
        return now[0]

    _, authentication = _remembering(_Provider(expires_at=1005.0), 60, clock=clock)
    assert authentication.authenticate("Bearer good").username == "alice"
    tick[0] = 0.0
    now[0] = 1004.999
    assert isinstance(authentication.recall("Bearer good"), Identity)
    now[0] = 1005.0
    assert not isinstance(authentication.recall("Bearer good"), Identity)

    _, expired = _remembering(_Provider(expires_at=900.0), 60, clock=clock)
    expired.authenticate("Bearer good")
    assert len(expired._recent or ()) == 0, "an answer already past its token's expiry is not kept"


def test_a_remembered_refusal_ends_at_the_negative_cache_ttl() -> None:
    """A refusal is answered from memory for RESTAUTH_NEGATIVE_CACHE_TTL and
    no longer: the provider is asked again once it has ended (a token
    refused during an outage of its keys is not refused for ever)."""

    class Refusing(_Provider):
        def authenticate(self, credentials: Any, guard: Any) -> Identity | None:
            self.checks += 1
            raise InvalidToken("The access token is invalid.", reason="refused")

    provider = Refusing()
    now, authentication = _remembering(provider, 60, negative_ttl=5)
    for at in (1000.0, 1004.999):
        now[0] = at
        with pytest.raises(InvalidToken, match="remembered" if at > 1000 else "refused"):
            authentication.authenticate("Bearer good")
    assert provider.checks == 1
    now[0] = 1005.0
    with pytest.raises(InvalidToken):
        authentication.authenticate("Bearer good")
    assert provider.checks == 2, "asked again once the refusal ended"
