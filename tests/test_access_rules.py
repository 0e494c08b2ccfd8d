"""Access rules through the WSGI interface: path levels, networks, read-only
groups, per-path rules from a TOML file, per-token restrictions, and
blocking Basic passwords while API tokens keep working."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from werkzeug.test import Client

from restauth_wsgi import ConfigurationError, RestAuthMiddleware, Settings
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.tokens.restrictions import TokenRestrictions
from restauth_wsgi.tokens.store import TokenRecord

from .fake_provider import FakeProvider
from .helpers import claims_token, echo_app, run_restauth, serve_claims

Issue = Callable[..., tuple[str, TokenRecord]]


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


@pytest.fixture
def web(fake_provider: FakeProvider, store_url: str, tmp_path: Path) -> Callable[..., Client]:
    """A client on settings with a claims-echoing provider, plus the given changes."""
    fake_provider.route("/me", serve_claims)
    provider = ProviderSettings(
        "idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me", cache_ttl=0
    )

    def build(rules: str | None = None, **changes: Any) -> Client:
        if rules is not None:
            (tmp_path / "rules.toml").write_text(rules)
            changes["rules_file"] = str(tmp_path / "rules.toml")
        settings = Settings(token_store=store_url, providers=(provider,), **changes)
        return Client(RestAuthMiddleware(echo_app, settings=settings))

    return build


def status(
    client: Client,
    path: str = "/api/x",
    method: str = "GET",
    token: str | None = None,
    remote: str = "127.0.0.1",
    **headers: str,
) -> int:
    if token is not None:
        headers["Authorization"] = token if token.startswith("Basic ") else f"Bearer {token}"
    # PATH_INFO is set directly: the test client would read "//x" as a host.
    response = client.open(
        "/",
        method=method,
        headers=headers,
        environ_overrides={"REMOTE_ADDR": remote, "PATH_INFO": path},
    )
    return response.status_code


ALICE = claims_token(sub="alice", groups=["engineering"], scope="read write")
READER = claims_token(sub="rita", groups=["auditors"], scope="read")


@pytest.mark.parametrize(
    ("changes", "path", "token", "expected"),
    [
        pytest.param({}, "/api/x", None, 401, id="required-by-default"),
        pytest.param({"public_paths": ("/api/*",)}, "/api/x", None, 200, id="public"),
        pytest.param(
            {"public_paths": ("/api/*",)}, "/api/x", "garbage", 200, id="public-ignores-credentials"
        ),
        pytest.param({"optional_paths": ("/api/*",)}, "/api/x", None, 200, id="optional-anonymous"),
        pytest.param(
            {"optional_paths": ("/api/*",)}, "/api/x", "garbage", 401, id="optional-bad-credentials"
        ),
        pytest.param({"optional_paths": ("/api/*",)}, "/api/x", ALICE, 200, id="optional-user"),
        pytest.param(
            {"default_access": "public", "protected_paths": ("/api/admin*",)},
            "/api/admin/users",
            None,
            401,
            id="protected",
        ),
        pytest.param(
            {"default_access": "public", "protected_paths": ("/api/admin*",)},
            "/api/x/../admin/users",
            None,
            401,
            id="protected-dot-dot",
        ),
        pytest.param(
            {"default_access": "public", "protected_paths": ("/api/admin",)},
            "//api/admin/",
            None,
            401,
            id="protected-other-spelling",
        ),
        pytest.param(
            {"default_access": "public", "protected_paths": ("/api/admin*",)},
            "/api/other",
            None,
            200,
            id="unprotected",
        ),
        pytest.param(
            {"default_access": "optional", "public_paths": ("/health",)},
            "/health",
            "garbage",
            200,
            id="public-over-optional",
        ),
    ],
)
def test_access_levels(
    web: Callable[..., Client], changes: dict[str, Any], path: str, token: str | None, expected: int
) -> None:
    assert status(web(**changes), path, token=token) == expected


def test_optional_paths_pass_anonymous_requests_without_remote_user(
    web: Callable[..., Client],
) -> None:
    client = web(optional_paths=("/api/*",))
    anonymous = json.loads(client.get("/api/x").get_data())
    assert anonymous["remote_user"] is None
    user = json.loads(client.get("/api/x", headers={"Authorization": f"Bearer {ALICE}"}).get_data())
    assert user["remote_user"] == "alice"


@pytest.mark.parametrize(
    ("changes", "remote", "forwarded", "expected"),
    [
        pytest.param({"allowed_networks": ("10.0.0.0/8",)}, "10.1.2.3", None, 200, id="inside"),
        pytest.param({"allowed_networks": ("10.0.0.0/8",)}, "192.0.2.1", None, 403, id="outside"),
        pytest.param(
            {"allowed_networks": ("10.0.0.0/8",)},
            "192.0.2.1",
            "10.1.2.3",
            403,
            id="forwarded-for-not-trusted",
        ),
        pytest.param(
            {"allowed_networks": ("10.0.0.0/8",), "trusted_proxies": 1},
            "192.0.2.1",
            "10.1.2.3",
            200,
            id="one-trusted-proxy",
        ),
        pytest.param(
            {"allowed_networks": ("10.0.0.0/8",), "trusted_proxies": 1},
            "10.0.0.9",
            "10.1.2.3, 192.0.2.1",
            403,
            id="client-prepends-a-fake",
        ),
        pytest.param(
            {"allowed_networks": ("10.0.0.0/8",), "trusted_proxies": 2},
            "192.0.2.9",
            "10.1.2.3, 192.0.2.1",
            200,
            id="two-trusted-proxies",
        ),
        pytest.param(
            {"allowed_networks": ("10.0.0.0/8",), "trusted_proxies": 1},
            "10.0.0.2",
            "203.0.113.7:51234",
            403,
            id="entry-with-a-port-is-that-address",
        ),
        pytest.param(
            {"allowed_networks": ("10.0.0.0/8",), "trusted_proxies": 1},
            "10.0.0.2",
            "10.1.2.3:51234",
            200,
            id="inside-with-a-port",
        ),
        pytest.param(
            {"allowed_networks": ("10.0.0.0/8",), "trusted_proxies": 1},
            "10.0.0.2",
            "[2001:db8::7]:443",
            403,
            id="bracketed-v6-with-a-port",
        ),
        pytest.param(
            {"allowed_networks": ("10.0.0.0/8",), "trusted_proxies": 1},
            "10.0.0.2",
            "unknown",
            403,
            id="not-an-address-is-never-the-proxy",
        ),
        pytest.param(
            {"allowed_networks": ("10.0.0.0/8",), "trusted_proxies": 1},
            "10.0.0.2",
            "203.0.113.007",
            403,
            id="leading-zeros",
        ),
        pytest.param({"allowed_networks": ("2001:db8::/32",)}, "2001:db8::1", None, 200, id="ipv6"),
        pytest.param(
            {"allowed_networks": ("127.0.0.1",)}, "::ffff:127.0.0.1", None, 200, id="ipv4-mapped"
        ),
    ],
)
def test_network_allow_list(
    web: Callable[..., Client],
    changes: dict[str, Any],
    remote: str,
    forwarded: str | None,
    expected: int,
) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert status(web(**changes), token=ALICE, remote=remote, **headers) == expected


def test_outside_the_network_is_refused_before_credentials_are_looked_at(
    web: Callable[..., Client],
    fake_provider: FakeProvider,
) -> None:
    client = web(allowed_networks=("10.0.0.0/8",))
    response = client.get(
        "/",
        headers={"Authorization": f"Bearer {ALICE}"},
        environ_overrides={"REMOTE_ADDR": "192.0.2.1"},
    )
    assert response.status_code == 403
    assert json.loads(response.get_data())["error"] == "forbidden"
    assert "WWW-Authenticate" not in response.headers
    assert fake_provider.calls["/me"] == 0


@pytest.mark.parametrize(
    ("method", "expected"),
    # OPTIONS (not a preflight) and methods beyond the routed ones are judged
    # as every method: a view may run any of its code for them.
    [
        ("GET", 200),
        ("HEAD", 200),
        ("OPTIONS", 403),
        ("FOO", 403),
        ("POST", 403),
        ("DELETE", 403),
    ],
)
def test_read_only_groups(web: Callable[..., Client], method: str, expected: int) -> None:
    client = web(read_only_groups=("auditors",))
    assert status(client, method=method, token=READER) == expected
    assert status(client, method=method, token=ALICE) == 200


RULES = """
[[rule]]
paths = ["/rest/api/2/issue", "/rest/api/2/issue/*"]
methods = ["POST", "PUT", "DELETE"]
scopes = ["write"]

[[rule]]
paths = ["/rest/admin/*"]
groups = ["admins"]
users = ["root"]

[[rule]]
paths = ["/rest/internal/*"]
networks = ["10.0.0.0/8"]
"""


@pytest.mark.parametrize(
    ("method", "path", "claims", "remote", "expected"),
    [
        pytest.param(
            "GET",
            "/rest/api/2/issue/1",
            {"scope": "read"},
            "127.0.0.1",
            200,
            id="read-needs-no-scope",
        ),
        pytest.param(
            "POST",
            "/rest/api/2/issue",
            {"scope": "read write"},
            "127.0.0.1",
            200,
            id="write-with-scope",
        ),
        pytest.param(
            "POST",
            "/rest/api/2/issue",
            {"scope": "read"},
            "127.0.0.1",
            403,
            id="write-without-scope",
        ),
        pytest.param(
            "DELETE",
            "/rest/api/2/issue/../issue/1",
            {"scope": "read"},
            "127.0.0.1",
            403,
            id="scope-rule-other-spelling",
        ),
        pytest.param(
            "GET", "/rest/admin/users", {"groups": ["admins"]}, "127.0.0.1", 200, id="admin-group"
        ),
        pytest.param(
            "GET", "/rest/admin/users", {"sub": "root"}, "127.0.0.1", 200, id="admin-user"
        ),
        pytest.param(
            "GET",
            "/rest/admin/users",
            {"groups": ["engineering"]},
            "127.0.0.1",
            403,
            id="not-admin",
        ),
        pytest.param("GET", "/rest/internal/x", {}, "10.9.9.9", 200, id="internal-inside"),
        pytest.param("GET", "/rest/internal/x", {}, "192.0.2.1", 403, id="internal-outside"),
    ],
)
def test_rules_file(
    web: Callable[..., Client],
    method: str,
    path: str,
    claims: dict[str, Any],
    remote: str,
    expected: int,
) -> None:
    client = web(rules=RULES)
    token = claims_token(**{"sub": "alice", **claims})
    assert status(client, path, method, token, remote) == expected


def test_insufficient_scope_answer(web: Callable[..., Client]) -> None:
    client = web(rules=RULES)
    response = client.post(
        "/rest/api/2/issue",
        headers={"Authorization": f"Bearer {claims_token(sub='a', scope='read')}"},
    )
    assert response.status_code == 403
    assert json.loads(response.get_data())["error"] == "insufficient_scope"
    assert response.headers.getlist("WWW-Authenticate") == [
        'Bearer realm="api", error="insufficient_scope",'
        ' error_description="The token lacks the scope this needs: write.", scope="write"'
    ]


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        pytest.param("[[rule]\npaths = ", "not valid TOML", id="toml"),
        pytest.param('[[rule]]\npaths = ["/x"]\ngroup = ["a"]', "unknown key 'group'", id="key"),
        pytest.param('[[rule]]\nscopes = ["a"]', "paths must be", id="no-paths"),
        pytest.param('[[rule]]\npaths = ["x"]\nscopes = ["a"]', "paths must be", id="relative"),
        pytest.param('[[rule]]\npaths = ["/x"]', "says nothing to check", id="empty-rule"),
        pytest.param(
            '[[rule]]\npaths = ["/x"]\nnetworks = ["10.0.0.0/33"]', "not a network", id="network"
        ),
        pytest.param('[[rule]]\npaths = "/x"\nusers = ["a"]', "list of strings", id="type"),
        pytest.param('[access]\npublic = ["/x"]', "unknown table 'access'", id="table"),
    ],
)
def test_rules_file_errors_name_the_setting(
    web: Callable[..., Client], rules: str, words: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        web(rules=rules)
    assert raised.value.variable == "RESTAUTH_RULES_FILE"
    assert words in str(raised.value)


# -- per-token restrictions, set from the CLI ----------------------------------------------


def cli_token(store_url: str, *options: str) -> str:
    done = run_restauth(store_url, "token", "create", "--user", "ci", *options)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


@pytest.mark.parametrize(
    ("options", "method", "path", "remote", "expected"),
    [
        pytest.param(["--read-only"], "GET", "/api/x", "127.0.0.1", 200, id="read-only-get"),
        pytest.param(["--read-only"], "PUT", "/api/x", "127.0.0.1", 403, id="read-only-put"),
        pytest.param(["--allow", "GET /api/*"], "GET", "/api/x", "127.0.0.1", 200, id="allowed"),
        pytest.param(["--allow", "GET /api/*"], "GET", "/other", "127.0.0.1", 403, id="other-path"),
        pytest.param(
            ["--allow", "GET /api/*"], "POST", "/api/x", "127.0.0.1", 403, id="other-method"
        ),
        pytest.param(
            ["--allow", "* /api/*", "--allow", "GET /health"],
            "DELETE",
            "/api/x",
            "127.0.0.1",
            200,
            id="any-method",
        ),
        pytest.param(
            ["--network", "10.0.0.0/8"], "GET", "/api/x", "10.1.1.1", 200, id="network-inside"
        ),
        pytest.param(
            ["--network", "10.0.0.0/8"], "GET", "/api/x", "192.0.2.1", 403, id="network-outside"
        ),
    ],
)
def test_token_restrictions_from_the_cli(
    store_url: str,
    web: Callable[..., Client],
    options: list[str],
    method: str,
    path: str,
    remote: str,
    expected: int,
) -> None:
    token = cli_token(store_url, *options)
    assert status(web(), path, method, token, remote) == expected


def test_token_scopes_satisfy_rules(store_url: str, web: Callable[..., Client]) -> None:
    client = web(rules=RULES)
    writer = cli_token(store_url, "--scope", "write")
    reader = cli_token(store_url, "--scope", "read")
    assert status(client, "/rest/api/2/issue", "POST", writer) == 200
    assert status(client, "/rest/api/2/issue", "POST", reader) == 403
    done = run_restauth(store_url, "token", "list")
    assert done.returncode == 0, done.stderr
    listed = done.stdout
    assert "scope write" in listed
    assert "scope read" in listed


def test_restrictions_survive_the_store(issue: Issue, store: Any) -> None:
    restrictions = TokenRestrictions(
        read_only=True, allow=(("GET", "/a/*"),), networks=("10.0.0.0/8",), scopes=("read",)
    )
    _, record = issue("alice", restrictions=restrictions)
    assert store.get(record.token_id).restrictions == restrictions


def test_bad_restrictions_are_refused_by_the_cli(store_url: str) -> None:
    for options in (["--allow", "/x"], ["--allow", "GET x"], ["--network", "10.0.0.0/33"]):
        done = run_restauth(store_url, "token", "create", "--user", "ci", *options)
        assert done.returncode == 2, options
    forgot_the_method = run_restauth(
        store_url, "token", "create", "--user", "ci", "--allow", "/rest/*"
    )
    assert "write 'GET /rest/*' for one method or '* /rest/*' for any" in forgot_the_method.stderr
    head = run_restauth(store_url, "token", "create", "--user", "ci", "--allow", "HEAD /x")
    assert head.returncode == 2
    assert "write GET" in head.stderr


# -- passwords, and blocking them ----------------------------------------------------------------


@pytest.fixture
def password_file(tmp_path: Path) -> str:
    path = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(b"s3cret-pw", bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"# service accounts\njenkins:{hashed}\ndeploy:{hashed}\n")
    return str(path)


@pytest.mark.parametrize(
    ("changes", "user", "path", "expected"),
    [
        pytest.param({}, "jenkins", "/api/x", 200, id="password"),
        pytest.param({"block_basic_passwords": True}, "jenkins", "/api/x", 401, id="blocked"),
        pytest.param(
            {"block_basic_passwords": True, "basic_password_users": ("jenkins",)},
            "jenkins",
            "/api/x",
            200,
            id="allowed-user",
        ),
        pytest.param(
            {"block_basic_passwords": True, "basic_password_paths": ("/legacy/*",)},
            "deploy",
            "/legacy/x",
            200,
            id="allowed-path",
        ),
        pytest.param(
            {"block_basic_passwords": True, "basic_password_paths": ("/legacy/*",)},
            "deploy",
            "/api/x",
            401,
            id="other-path",
        ),
    ],
)
def test_blocking_basic_passwords(
    web: Callable[..., Client],
    password_file: str,
    changes: dict[str, Any],
    user: str,
    path: str,
    expected: int,
) -> None:
    client = web(password_file=password_file, **changes)
    assert status(client, path, token=basic(user, "s3cret-pw")) == expected


def test_blocked_passwords_leave_api_tokens_working(
    web: Callable[..., Client],
    password_file: str,
    issue: Issue,
) -> None:
    client = web(password_file=password_file, block_basic_passwords=True)
    token, _ = issue("jenkins")
    assert status(client, token=basic("jenkins", token)) == 200
    response = client.get("/", headers={"Authorization": basic("jenkins", "s3cret-pw")})
    assert "use an API token" in json.loads(response.get_data())["error_description"]


@pytest.mark.parametrize(("user", "password"), [("jenkins", "wrong"), ("nobody", "s3cret-pw")])
def test_wrong_passwords(
    web: Callable[..., Client], password_file: str, user: str, password: str
) -> None:
    response = web(password_file=password_file).get(
        "/", headers={"Authorization": basic(user, password)}
    )
    assert response.status_code == 401
    assert json.loads(response.get_data())["error_description"] == (
        "The username or password is invalid."
    )


@pytest.mark.parametrize(
    "line",
    ["jenkins:$apr1$abc$def", "jenkins:{SHA}abcdef", "jenkins:plain", "no-colon-here"],
)
def test_weak_or_broken_password_files_are_refused(
    web: Callable[..., Client],
    tmp_path: Path,
    line: str,
) -> None:
    bad = tmp_path / "weak"
    bad.write_text(line + "\n")
    with pytest.raises(ConfigurationError, match="RESTAUTH_PASSWORD_FILE"):
        web(password_file=str(bad))


@pytest.mark.parametrize(
    "path", ["/api/x", "/legacy/../api/x", "//legacy/x", "/legacy/./x", "/legacy/%2e%2e/api"]
)
def test_blocked_passwords_are_no_oracle(
    web: Callable[..., Client], password_file: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = web(
        password_file=password_file,
        block_basic_passwords=True,
        basic_password_paths=("/legacy/*",),
    )
    right = client.get(
        "/",
        headers={"Authorization": basic("jenkins", "s3cret-pw")},
        environ_overrides={"PATH_INFO": path},
    )
    wrong = client.get(
        "/",
        headers={"Authorization": basic("jenkins", "guess")},
        environ_overrides={"PATH_INFO": path},
    )
    assert right.status_code == wrong.status_code == 401
    assert right.get_data() == wrong.get_data(), "the answer says nothing about the password"
    assert "use an API token" in json.loads(right.get_data())["error_description"]


def test_the_allowed_network_applies_to_every_request(web: Callable[..., Client]) -> None:
    client = web(allowed_networks=("10.0.0.0/8",), public_paths=("/health",), allow_preflight=True)
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    assert status(client, "/health", remote="192.0.2.1") == 403, "public paths"
    assert status(client, "/api/x", "OPTIONS", remote="192.0.2.1", **preflight) == 403
    assert status(client, "/health", remote="10.1.1.1") == 200
    assert status(client, "/api/x", "OPTIONS", remote="10.1.1.1", **preflight) == 200
    # The load balancer's own network, for its health checks:
    balanced = web(allowed_networks=("10.0.0.0/8", "172.16.0.0/12"), public_paths=("/health",))
    assert status(balanced, "/health", remote="172.16.0.4") == 200


def test_metrics_are_served_to_an_authenticated_scraper(
    web: Callable[..., Client], issue: Issue
) -> None:
    client = web(metrics=True)
    token, _ = issue("prometheus")
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert scraped.status_code == 200
    assert b"restauth_decisions_total" in scraped.get_data()
    assert scraped.content_type.startswith("text/plain")
    assert status(client, "/metrics") == 401, "not to anyone"
    other = client.get("/metricsx", headers={"Authorization": f"Bearer {token}"})
    assert b"restauth_decisions_total" not in other.get_data(), "the app answers other paths"


def test_metrics_follow_the_access_rules(
    web: Callable[..., Client], issue: Issue, tmp_path: Path
) -> None:
    client = web(metrics=True, rules='[[rule]]\npaths = ["/metrics"]\nusers = ["prometheus"]\n')
    scraper, _ = issue("prometheus")
    other, _ = issue("alice")
    assert status(client, "/metrics", token=scraper) == 200
    assert status(client, "/metrics", token=other) == 403
