"""The audit log (one JSON line per decision, no secret anywhere in it) and the
Prometheus metrics scraped from a running gunicorn with several workers."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.audit import AuditLog
from restauth_wsgi.decision import Gatekeeper
from restauth_wsgi.errors import ConfigurationError
from restauth_wsgi.metrics import Metrics
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.tokens.store import TokenRecord

from .fake_provider import FakeProvider, Reply
from .helpers import (
    RESTAUTH,
    ROOT,
    claims_token,
    cli_env,
    echo_app,
    free_port,
    gunicorn_command,
    serve_claims,
    server_process,
)

Issue = Callable[..., tuple[str, TokenRecord]]
FIELDS = {
    "time",
    "outcome",
    "status",
    "method",
    "path",
    "client",
    "username",
    "auth",
    "provider",
    "token",
    "error",
    "reason",
}


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def test_audit_lines_are_json_and_hold_no_secret(
    tmp_path: Path,
    store_url: str,
    issue: Issue,
    fake_provider: FakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_provider.route("/me", serve_claims)
    passwords = tmp_path / "htpasswd"
    passwords.write_text(f"svc:{bcrypt.hashpw(b'pw-123456', bcrypt.gensalt(rounds=4)).decode()}\n")
    settings = Settings(
        token_store=store_url,
        public_paths=("/health",),
        password_file=str(passwords),
        providers=(ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me"),),
        rules_file=None,
        lockout_threshold=0,
    )
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    token, record = issue("alice")
    provider_token = claims_token(sub="bob", scope="read")
    secrets = [
        token,
        token.split("_")[2],
        provider_token,
        "pw-123456",
        "wrong-password",
        "opaque-never-seen",
        token[:-4] + "AAAA",
    ]
    requests_made = [
        ("/api", {"Authorization": f"Bearer {token}"}),
        ("/api", {"Authorization": basic("alice", token)}),
        ("/api", {"Authorization": f"Bearer {provider_token}"}),
        ("/api", {"Authorization": basic("svc", "pw-123456")}),
        ("/api", {"Authorization": basic("svc", "wrong-password")}),
        ("/api", {"Authorization": "Bearer opaque-never-seen"}),
        ("/api", {"Authorization": f"Bearer {token[:-4]}AAAA"}),
        ("/api", {}),
        ("/health", {"Authorization": "Bearer opaque-never-seen"}),
    ]
    with caplog.at_level(logging.INFO, logger="restauth.audit"):
        for path, headers in requests_made:
            client.get(path, headers=headers, environ_overrides={"REMOTE_ADDR": "192.0.2.44"})
    lines = [r.getMessage() for r in caplog.records if r.name == "restauth.audit"]
    assert len(lines) == len(requests_made), "one line per decision"
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert set(entry) == FIELDS
        assert entry["client"] == "192.0.2.44"
        assert entry["method"] == "GET"
    outcomes = [(e["outcome"], e["username"], e["auth"], e["status"]) for e in entries]
    assert outcomes == [
        ("allowed", "alice", "api_token", None),
        ("allowed", "alice", "api_token", None),
        ("allowed", "bob", "userinfo", None),
        ("allowed", "svc", "password", None),
        ("refused", "svc", "password", 401),
        ("refused", None, None, 401),
        ("refused", None, None, 401),
        ("unauthenticated", None, None, 401),
        ("public", None, None, None),
    ]
    assert entries[0]["token"] == entries[1]["token"] == f"id:{record.token_id}"
    assert entries[2]["provider"] == "idp"
    assert entries[3]["token"] is None, "nothing derived from a password, not even a hash"
    assert entries[4]["token"] is None, "nothing derived from a password, not even a hash"
    assert entries[5]["provider"] == "idp", "the provider that refused the token"
    assert re.fullmatch(r"sha256:[0-9a-f]{12}", entries[5]["token"])
    assert entries[6]["error"] == "invalid_token"
    everything = "\n".join(lines) + caplog.text
    for secret in secrets:
        assert secret not in everything, "no secret in the audit log or any log"
    for password in ("pw-123456", "wrong-password"):
        digest = hashlib.sha256(password.encode()).hexdigest()
        assert digest[:12] not in everything, "not even a short hash of a password"


def test_refusal_logs_hold_no_password_derived_value(
    tmp_path: Path, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    passwords = tmp_path / "htpasswd"
    passwords.write_text(f"svc:{bcrypt.hashpw(b'pw-123456', bcrypt.gensalt(rounds=4)).decode()}\n")
    settings = Settings(token_store=store_url, password_file=str(passwords))
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    with caplog.at_level(logging.INFO):
        for password in ("guess-1", "Summer2026!"):
            assert (
                client.get("/", headers={"Authorization": basic("svc", password)}).status_code
                == 401
            )
    for password in ("guess-1", "Summer2026!"):
        digest = hashlib.sha256(password.encode()).hexdigest()
        for length in (8, 12):
            assert digest[:length] not in caplog.text
        assert password not in caplog.text


@pytest.mark.parametrize(
    ("user", "password", "shown"),
    [
        pytest.param(
            "ghp_S3cr3tPATabcdefghijklmnopqrstuvwxyz", "x-oauth-basic", "a token", id="gh"
        ),
        pytest.param("glpat-S3cr3tPATabcdefghijk", "anything", "a token", id="gitlab-any-pw"),
        pytest.param("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.S3cr3tSig", "x", "a token", id="jwt"),
        pytest.param("S3cr3tOpaqueTokenOfNoFamily", "", "no password", id="curl-u-token"),
        pytest.param("hunter2-in-the-user-field", "", "no password", id="password-as-user"),
        pytest.param("restauth_{issued}", "", "a token", id="ours"),
    ],
)
def test_a_token_sent_as_the_basic_user_reaches_no_log_cache_or_audit(
    tmp_path: Path,
    store_url: str,
    issue: Issue,
    caplog: pytest.LogCaptureFixture,
    user: str,
    password: str,
    shown: str,
) -> None:
    # curl -u "$TOKEN:", GitHub's <token>:x-oauth-basic: the user is a secret.
    passwords = tmp_path / "htpasswd"
    passwords.write_text(f"svc:{bcrypt.hashpw(b'pw-123456', bcrypt.gensalt(rounds=4)).decode()}\n")
    cache = f"file://{tmp_path}/cache"
    if "{issued}" in user:
        token, _ = issue(owner="alice")
        user, secret = token, token.split("_")[2]
    else:
        secret = user
    settings = Settings(
        token_store=store_url, password_file=str(passwords), cache=cache, lockout_user_threshold=2
    )
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    with caplog.at_level(logging.INFO):
        for n in range(3):  # from three addresses: the user's counter, not an address's
            response = client.get(
                "/",
                headers={"Authorization": basic(user, password)},
                environ_base={"REMOTE_ADDR": f"192.0.2.{n + 1}"},
            )
            assert response.status_code in (401, 429)
    assert secret not in caplog.text
    if shown == "no password":  # perhaps a password: not even a short hash of it
        assert hashlib.sha256(user.encode()).hexdigest()[:8] not in caplog.text
    audit = [json.loads(r.getMessage()) for r in caplog.records if r.name == "restauth.audit"]
    assert audit, "each refusal has its audit line"
    users = [line["username"] for line in audit if line["username"] is not None]
    assert users, audit
    assert all(user.startswith("<user not shown: ") and shown in user for user in users), audit
    listed = subprocess.run(
        [RESTAUTH, "lockout", "list", "--json"],
        env=cli_env(store_url, RESTAUTH_CACHE=cache),
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0, listed.stderr
    assert secret not in listed.stdout
    for kept in (tmp_path / "cache").rglob("*"):
        assert secret.encode() not in kept.read_bytes(), "nor the shared cache (lockout, answers)"


@pytest.mark.parametrize(
    "user",
    [
        "restauth_monitoring_bot",
        "EAAmir.Khan@example.com",
        "ghs_reporting_service_account",
        "xoxb-integration-user-01",
        "glpat-builds-for-team-alpha",
    ],
)
def test_names_that_begin_like_a_token_family_still_log_in(
    tmp_path: Path, store_url: str, user: str
) -> None:
    passwords = tmp_path / "htpasswd"
    passwords.write_text(
        f"{user}:{bcrypt.hashpw(b'pw-123456', bcrypt.gensalt(rounds=4)).decode()}\n"
    )
    settings = Settings(token_store=store_url, password_file=str(passwords))
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    answer = client.get("/", headers={"Authorization": basic(user, "pw-123456")})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert json.loads(answer.get_data())["remote_user"] == user


def test_a_password_file_user_that_looks_like_a_token_is_refused_at_start(
    tmp_path: Path, store_url: str
) -> None:
    passwords = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    token_like = "ghp_" + "Ab1" * 12
    passwords.write_text(f"{token_like}:{hashed}\n")
    with pytest.raises(ConfigurationError, match="looks like a token") as raised:
        RestAuthMiddleware(
            echo_app, settings=Settings(token_store=store_url, password_file=str(passwords))
        )
    assert token_like not in str(raised.value)


def test_a_password_file_user_cannot_take_a_hidden_users_name(
    tmp_path: Path, store_url: str
) -> None:
    passwords = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    passwords.write_text(f"<user not shown: a token, sha256:000000000000>:{hashed}\n")
    with pytest.raises(ConfigurationError, match="cannot begin with '<'"):
        RestAuthMiddleware(
            echo_app, settings=Settings(token_store=store_url, password_file=str(passwords))
        )


@pytest.mark.parametrize(
    ("header", "secret"),
    [
        pytest.param("ghp_S3cr3tPATabcdefghijklmnopqrstuvwx", "S3cr3tPAT", id="token-bare"),
        pytest.param(
            "Basic\t" + base64.b64encode(b"ci:hunter2-hunter2").decode(),
            base64.b64encode(b"ci:hunter2-hunter2").decode()[:8],
            id="basic-tab",
        ),
        pytest.param(
            base64.b64encode(b"ci:hunter2-hunter2").decode(),
            base64.b64encode(b"ci:hunter2-hunter2").decode()[:8],
            id="base64-bare",
        ),
    ],
)
def test_a_header_without_a_scheme_word_leaves_no_credential_in_the_logs(
    store_url: str, caplog: pytest.LogCaptureFixture, header: str, secret: str
) -> None:
    client = Client(RestAuthMiddleware(echo_app, settings=Settings(token_store=store_url)))
    with caplog.at_level(logging.INFO):
        response = client.get("/", headers={"Authorization": header})
    assert response.status_code == 401
    assert secret not in caplog.text
    assert "names no scheme" in caplog.text
    with caplog.at_level(logging.INFO):
        client.get("/", headers={"Authorization": "Digest username=alice"})
    assert "'Digest' scheme" in caplog.text, "a scheme's word is still named"


def test_a_providers_message_quoting_the_token_reaches_no_log_or_cache(
    tmp_path: Path, store_url: str, fake_provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    # Facebook's Graph API quotes a malformed token back: "Malformed access
    # token EAAG..." (code 190). Its message must not become a logged reason.
    def malformed(request: Any) -> Reply:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        error = {
            "message": f"Malformed access token {token}",
            "type": "OAuthException",
            "code": 190,
        }
        return Reply(400, {"error": error})

    fake_provider.route("/me", malformed)
    cache = tmp_path / "cache"
    settings = Settings(
        token_store=store_url,
        cache=f"file://{cache}",
        providers=(ProviderSettings("fb", type="facebook", url=fake_provider.url),),
    )
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    token = "EAAGsecretpartofthetokenX0123456789~"
    with caplog.at_level(logging.INFO):
        response = client.get("/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "Facebook error 190" in caplog.text
    assert "secretpartofthetoken" not in caplog.text
    cached = b"".join(path.read_bytes() for path in cache.rglob("*") if path.is_file())
    assert cached, "the refusal was remembered in the shared cache"
    assert b"secretpartofthetoken" not in cached


def test_a_403_says_who_was_refused(
    tmp_path: Path, store_url: str, fake_provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    fake_provider.route("/me", serve_claims)
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\npaths = ["/admin/*"]\nusers = ["root"]\n')
    settings = Settings(
        token_store=store_url,
        rules_file=str(rules),
        providers=(ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me"),),
    )
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    token = claims_token(sub="bob")
    with caplog.at_level(logging.INFO, logger="restauth.audit"):
        response = client.get("/admin/x", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "restauth.audit"]
    assert (line["outcome"], line["username"], line["auth"], line["provider"]) == (
        "forbidden",
        "bob",
        "userinfo",
        "idp",
    )


def test_a_method_cannot_forge_log_lines(store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    client = Client(RestAuthMiddleware(echo_app, settings=Settings(token_store=store_url)))
    forged = "GET\x1b[2K\rINFO refused nothing"
    with caplog.at_level(logging.INFO):
        response = client.open(
            "/", environ_overrides={"REQUEST_METHOD": forged, "PATH_INFO": "/a\nb"}
        )
    assert response.status_code == 400
    assert json.loads(response.get_data())["error"] == "invalid_request"
    for record in caplog.records:
        message = record.getMessage()
        assert "\x1b" not in message
        assert "\n" not in message
        assert "\r" not in message


def test_audit_log_setting_writes_a_file(tmp_path: Path, store_url: str) -> None:
    target = tmp_path / "audit.jsonl"
    logger = logging.getLogger("restauth.audit")
    before = (list(logger.handlers), logger.level, logger.propagate)
    middleware = RestAuthMiddleware(
        echo_app, settings=Settings(token_store=store_url, audit_log=str(target))
    )
    other = RestAuthMiddleware(echo_app, settings=Settings(token_store=store_url))
    try:
        Client(middleware).get("/", headers={"Authorization": "Bearer nope"})
        Client(other).get("/", headers={"Authorization": "Bearer other"})
        (line,) = target.read_text().splitlines()
        assert json.loads(line)["outcome"] == "refused"
        assert (list(logger.handlers), logger.level, logger.propagate) == before, (
            "the shared logger is left alone"
        )
    finally:
        middleware.close()
        other.close()


@pytest.mark.slow
def test_metrics_from_gunicorn_with_several_workers(
    tmp_path: Path,
    store_url: str,
    issue: Issue,
    fake_provider: FakeProvider,
) -> None:
    fake_provider.route("/me", serve_claims)
    prometheus_dir = tmp_path / "prometheus"
    prometheus_dir.mkdir()
    env = cli_env(
        store_url,
        RESTAUTH_METRICS="true",
        RESTAUTH_PUBLIC_PATHS="/metrics",
        RESTAUTH_PROVIDERS="idp",
        RESTAUTH_IDP_TYPE="oauth2",
        RESTAUTH_IDP_USERINFO_URL=f"{fake_provider.url}/me",
        PROMETHEUS_MULTIPROC_DIR=str(prometheus_dir),
    )
    token, _ = issue("alice")
    port = free_port()
    command = gunicorn_command("tests.apps:application", port, "--workers", "3")
    with server_process(command, port, env, cwd=ROOT) as url:
        for _ in range(9):
            assert (
                requests.get(
                    url, headers={"Authorization": f"Bearer {token}"}, timeout=10
                ).status_code
                == 200
            )
        for _ in range(4):
            requests.get(url, headers={"Authorization": "Bearer restauth_wrong"}, timeout=10)
        provider_token = claims_token(sub="bob")
        for _ in range(3):
            requests.get(url, headers={"Authorization": f"Bearer {provider_token}"}, timeout=10)
        text = requests.get(f"{url}/metrics", timeout=10).text

    def value(pattern: str) -> float:
        total = 0.0
        for line in text.splitlines():
            if re.match(pattern, line):
                total += float(line.rsplit(" ", 1)[1])
        return total

    assert value(r'restauth_decisions_total\{.*method="api_token".*outcome="allowed"') == 9
    assert value(r'restauth_decisions_total\{.*outcome="refused"') == 4
    assert value(r'restauth_decisions_total\{.*provider="idp"') == 3
    assert value(r'restauth_upstream_requests_total\{.*result="ok"') >= 1
    assert value(r"restauth_upstream_seconds_count") >= 1
    assert value(r'restauth_cache_requests_total\{.*cache="recent"') >= 3
    for secret in (token, provider_token):
        assert secret not in text


def test_two_middlewares_in_one_process_count_only_their_own(store_url: str, issue: Issue) -> None:
    """Building a middleware changes no process-wide state: one without
    metrics counts nothing into the Prometheus registry another one serves."""
    token, _ = issue("alice")
    counting = Client(
        RestAuthMiddleware(
            echo_app,
            Settings(token_store=store_url, metrics=True, public_paths=("/metrics",)),
        )
    )
    quiet = Client(RestAuthMiddleware(echo_app, Settings(token_store=store_url)))

    def counted() -> tuple[float, float]:
        text = counting.get("/metrics").get_data(as_text=True)

        def total(pattern: str) -> float:
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if re.match(pattern, line)
            )

        return (
            total(r'restauth_decisions_total\{.*method="api_token".*outcome="allowed"'),
            total(r'restauth_cache_requests_total\{.*cache="recent"'),
        )

    before = counted()
    for _ in range(3):
        assert quiet.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert counted() == before, "the middleware without metrics counted nothing"
    for _ in range(2):
        assert counting.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    decisions, lookups = counted()
    assert decisions == before[0] + 2
    assert lookups == before[1] + 2


def test_metrics_of_ones_own_are_called_for_every_lookup(store_url: str, issue: Issue) -> None:
    """The hot path skips the calls of metrics that count nothing; any class
    that counts cache lookups (not only Prometheus's) still gets every one."""

    class Counting(Metrics):
        def __init__(self) -> None:
            self.lookups: list[tuple[str, bool]] = []

        def cache(self, cache: str, hit: bool) -> None:
            self.lookups.append((cache, hit))

    token, _ = issue("alice")
    metrics = Counting()
    settings = Settings(token_store=store_url)
    gatekeeper = Gatekeeper.from_settings(settings, metrics=metrics)
    client = Client(RestAuthMiddleware(echo_app, settings=settings, gatekeeper=gatekeeper))
    for _ in range(3):
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert [cache for cache, _ in metrics.lookups] == ["recent"] * 3
    gatekeeper.close()


def test_an_audit_log_given_to_the_middleware_gets_its_lines(
    store_url: str, issue: Issue, tmp_path: Path
) -> None:
    # The decision's sinks are injected, the audit log among them: an
    # embedding application (or a test) gives its own, and keeps it open.
    token, _ = issue("alice")
    own = AuditLog(str(tmp_path / "own.jsonl"))
    elsewhere = tmp_path / "configured.jsonl"
    middleware = RestAuthMiddleware(
        echo_app, Settings(token_store=store_url, audit_log=str(elsewhere)), audit=own
    )
    client = Client(middleware)
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/").status_code == 401
    middleware.close()
    own.logger.info('{"after": "close"}')  # still open: the giver closes it
    own.close()
    lines = [json.loads(line) for line in (tmp_path / "own.jsonl").read_text().splitlines()]
    assert [line.get("outcome") for line in lines] == ["allowed", "unauthenticated", None]
    assert lines[0]["username"] == "alice"
    assert not elsewhere.exists(), "the configured log was not opened"
