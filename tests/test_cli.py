"""The ``restauth`` command: in-process for the table of cases, and as a user
runs it (a subprocess of the installed console script) for the lifecycle."""

from __future__ import annotations

import json
import os
import pwd
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.cli import build_parser, main
from restauth_wsgi.tokens.format import SCANNER_PATTERN

from .fake_provider import FakeProvider, Reply
from .helpers import RESTAUTH, cli_env, echo_app


def run(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RESTAUTH, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def env(store_url: str) -> dict[str, str]:
    return cli_env(store_url)


def test_token_lifecycle_as_a_user_types_it(env: dict[str, str], store_url: str) -> None:
    created = run("token", "create", "--user", "alice", "--name", "ci", "--expires", "30d", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    assert re.fullmatch(SCANNER_PATTERN, token), "the raw token alone on the last line"
    token_id = token.split("_")[1]

    listing = run("token", "list", env=env)
    assert listing.returncode == 0
    assert token_id in listing.stdout
    assert "alice" in listing.stdout
    assert "active" in listing.stdout
    assert token.split("_")[2][:10] not in listing.stdout, "no secret in the list"

    checked = run("check", "--bearer", token, env=env)
    assert checked.returncode == 0, checked.stdout
    assert "alice" in checked.stdout
    assert "api_token (Bearer)" in checked.stdout
    assert "expires" in checked.stdout
    from_stdin = run("check", "--basic", "-", env=env, stdin=f"alice:{token}\n")
    assert from_stdin.returncode == 0
    assert "api_token (Basic)" in from_stdin.stdout

    # The middleware agrees with the CLI about the store.
    client = Client(RestAuthMiddleware(echo_app, settings=Settings(token_store=store_url)))
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    revoked = run("token", "revoke", token_id, env=env)
    assert revoked.returncode == 0
    assert "Revoked" in revoked.stdout
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    refused = run("check", "--bearer", token, env=env)
    assert refused.returncode == 1
    assert "REFUSED" in refused.stdout
    assert "revoked" in refused.stdout
    assert "revoked" in run("token", "list", "--user", "alice", env=env).stdout

    again = run("token", "revoke", token, env=env)  # by the token itself, idempotent
    assert again.returncode == 0
    assert "already revoked" in again.stdout


def test_token_changes_made_here_are_audit_lines(
    env: dict[str, str], tmp_path: Path, store_url: str
) -> None:
    # Every creation and revocation is an audit line, by whom and for whom,
    # whether made through the self-service API or here; never the secret.
    audit = tmp_path / "audit.jsonl"
    # The actor is the account's name for the process's uid, whatever the
    # environment claims.
    env = {**env, "RESTAUTH_AUDIT_LOG": str(audit), "LOGNAME": "mallory", "USER": "mallory"}
    created = run("token", "create", "--user", "alice", "--name", "ci", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    token_id = token.split("_")[1]
    assert run("token", "revoke", token_id, env=env).returncode == 0
    assert run("token", "revoke", token_id, env=env).returncode == 0  # already: no change, no line
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(x["event"], x["owner"], x["token"], x["auth"]) for x in lines] == [
        ("token_created", "alice", f"id:{token_id}", "cli"),
        ("token_revoked", "alice", f"id:{token_id}", "cli"),
    ]
    account = pwd.getpwuid(os.getuid()).pw_name
    assert [x["actor"] for x in lines] == [account, account], "the account that ran the command"
    assert token.split("_")[2][:16] not in audit.read_text()

    # A line that cannot be written stops the change before it is made.
    blocked = {**env, "RESTAUTH_AUDIT_LOG": str(tmp_path / "no-such-dir" / "audit.jsonl")}
    refused = run("token", "create", "--user", "bob", env=blocked)
    assert refused.returncode != 0
    assert "RESTAUTH_AUDIT_LOG" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert "bob" not in run("token", "list", env=env).stdout, "no token was made"

    # Opened but not written (a full disk): a creation is undone, a
    # revocation stands; both commands fail, saying so.
    full = {**env, "RESTAUTH_AUDIT_LOG": "/dev/full"}
    undone = run("token", "create", "--user", "carol", env=full)
    assert undone.returncode != 0
    assert "revoked again" in undone.stderr, undone.stderr
    assert "Traceback" not in undone.stderr
    assert re.search(r"restauth_\w+_\w+", undone.stdout) is None, "the token is never shown"
    listing = run("token", "list", "--json", env=env).stdout.splitlines()
    carols = [json.loads(line) for line in listing if '"carol"' in line]
    assert len(carols) == 1
    assert carols[0]["revoked_at"] is not None
    made = run("token", "create", "--user", "dave", env=env).stdout.splitlines()[-1]
    stands = run("token", "revoke", made.split("_")[1], env=full)
    assert stands.returncode != 0
    assert "its audit line could not be written" in stands.stderr, stands.stderr
    client = Client(RestAuthMiddleware(echo_app, settings=Settings(token_store=store_url)))
    assert client.get("/", headers={"Authorization": f"Bearer {made}"}).status_code == 401


def test_default_store_location_is_shared_by_cli_and_middleware(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = cli_env("unused")
    del env["RESTAUTH_TOKEN_STORE"]
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    created = run("token", "create", "--user", "alice", env=env)
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "data" / "restauth" / "tokens.db").exists()

    monkeypatch.delenv("RESTAUTH_TOKEN_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    client = Client(RestAuthMiddleware(echo_app))
    token = created.stdout.splitlines()[-1]
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    ("argv", "environ", "code", "stream", "expected"),
    [
        pytest.param(["token", "create"], {}, 2, "err", "--user", id="missing-user"),
        pytest.param(
            ["token", "create", "--user", "a", "--expires", "soon"],
            {},
            2,
            "err",
            "not a duration",
            id="bad-duration",
        ),
        pytest.param(
            ["token", "create", "--user", "a", "--expires", "never"],
            {},
            1,
            "err",
            "RESTAUTH_TOKEN_ALLOW_NO_EXPIRY",
            id="never-not-allowed",
        ),
        pytest.param(
            ["token", "create", "--user", "a", "--expires", "never"],
            {"RESTAUTH_TOKEN_ALLOW_NO_EXPIRY": "true"},
            0,
            "out",
            "expires never",
            id="never-allowed",
        ),
        pytest.param(
            ["token", "create", "--user", "a", "--expires", "2y"],
            {},
            1,
            "err",
            "RESTAUTH_TOKEN_MAX_LIFETIME",
            id="too-long",
        ),
        pytest.param(
            ["token", "create", "--user", "a", "--expires", "90"],
            {},
            2,
            "err",
            "'90' has no unit; a lifetime needs one: write 90d for days",
            id="lifetime-without-unit",
        ),
        pytest.param(
            ["token", "create", "--user", "a", "--expires", "\u0663d"],
            {},
            2,
            "err",
            "--expires",
            id="lifetime-in-other-digits",
        ),
        pytest.param(
            ["token", "create", "--user", "a"],
            {"RESTAUTH_TOKEN_DEFAULT_LIFETIME": "90"},
            2,
            "err",
            "RESTAUTH_TOKEN_DEFAULT_LIFETIME: '90' has no unit",
            id="default-lifetime-without-unit",
        ),
        pytest.param(
            ["token", "create", "--user", "a"],
            {"RESTAUTH_TOKEN_DEFAULT_LIFETIME": "90d"},
            0,
            "out",
            "Created API token",
            id="default-lifetime-with-unit",
        ),
        pytest.param(
            ["token", "prune", "--older-than", "30"], {}, 2, "err", "has no unit", id="prune-age"
        ),
        pytest.param(["token", "create", "--user", "a:b"], {}, 2, "err", "colons", id="bad-user"),
        pytest.param(
            ["token", "list"],
            {"RESTAUTH_TOKEN_MAX_PER_USER": "ten"},
            2,
            "err",
            "RESTAUTH_TOKEN_MAX_PER_USER",
            id="invalid-setting",
        ),
        pytest.param(["token", "revoke", "AAAAAAAAAAAA"], {}, 1, "err", "no token", id="unknown"),
        pytest.param(["token", "revoke", "x y"], {}, 2, "err", "not a token id", id="not-id"),
        pytest.param(
            ["token", "revoke", "restauth_abc"], {}, 2, "err", "not a whole token", id="bad-token"
        ),
        pytest.param(["token", "prune"], {}, 1, "err", "no token store at", id="prune-no-store"),
        pytest.param(["check"], {}, 2, "err", "--bearer", id="check-needs-credential"),
        pytest.param(["check", "--basic", "nocolon"], {}, 2, "err", "USER:PASSWORD", id="basic"),
        pytest.param(["check", "--bearer", "junk"], {}, 1, "out", "invalid_token", id="junk"),
        pytest.param(
            ["check", "--bearer", "restauth_" + "A" * 51],
            {},
            1,
            "out",
            "malformed",
            id="malformed",
        ),
        pytest.param(
            ["check", "--bearer", "junk", "--json"],
            {},
            1,
            "out",
            '"outcome": "refused"',
            id="json",
        ),
        pytest.param(["config"], {}, 0, "out", "does not exist yet", id="config-no-store"),
        pytest.param(
            ["config"],
            {"RESTAUTH_ENABLED": "maybe", "RESTAUTH_REALM": '"'},
            2,
            "out",
            "RESTAUTH_REALM",
            id="config-invalid",
        ),
        pytest.param(
            ["config"], {"RESTAUTH_PUBLIC_PATH": "/x"}, 0, "out", "misspelt", id="config-typo"
        ),
        pytest.param(
            ["config"],
            {"RESTAUTH_ENABLED": "false"},
            0,
            "out",
            "every request passes",
            id="config-disabled",
        ),
        pytest.param(
            ["config"],
            {"RESTAUTH_ALLOW_PREFLIGHT": "true"},
            0,
            "out",
            "CORS preflights reach the application with no",
            id="config-preflights",
        ),
    ],
)
def test_commands_and_exit_codes(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    store_url: str,
    argv: list[str],
    environ: dict[str, str],
    code: int,
    stream: str,
    expected: str,
) -> None:
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", store_url)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    try:
        exit_code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        exit_code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert exit_code == code, out + err
    assert expected in (out if stream == "out" else err)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["token", "list"], id="list"),
        pytest.param(["token", "list", "--json"], id="list-json"),
        pytest.param(["token", "revoke", "AAAAAAAAAAAA"], id="revoke"),
        pytest.param(["token", "prune"], id="prune"),
        pytest.param(["store", "migrate", "--to", "sqlite:///{tmp}/copy.db"], id="migrate-source"),
    ],
)
def test_reading_commands_never_make_a_store(
    tmp_path: Path, argv: list[str], store_url: str
) -> None:
    mistyped = tmp_path / "tokenz" / "tokens.db"
    done = run(*(a.format(tmp=tmp_path) for a in argv), env=cli_env(f"sqlite://{mistyped}"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"there is no token store at sqlite://{mistyped}; is the path right?" in done.stderr
    assert not mistyped.parent.exists(), "no directory, no empty database"
    assert not (tmp_path / "copy.db").exists(), "nothing copied, so nothing made"


def test_check_never_makes_a_store(tmp_path: Path) -> None:
    mistyped = tmp_path / "tokenz" / "tokens.db"
    from restauth_wsgi.tokens.format import generate

    done = run("check", "--bearer", generate()[0], env=cli_env(f"sqlite://{mistyped}"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"there is no token store at sqlite://{mistyped}" in done.stdout
    assert not mistyped.parent.exists(), "no directory, no empty database"


def test_config_warns_of_a_store_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mistyped = tmp_path / "tokenz" / "tokens.db"
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", f"sqlite://{mistyped}")
    assert main(["config"]) == 0
    out = capsys.readouterr().out
    assert f"Warning: token store sqlite://{mistyped} does not exist yet" in out
    assert not mistyped.parent.exists()
    assert main(["token", "create", "--user", "alice"]) == 0
    capsys.readouterr()
    assert main(["config"]) == 0
    assert "No problems found" in capsys.readouterr().out


def test_every_token_command_names_its_store(env: dict[str, str], store_url: str) -> None:
    created = run("token", "create", "--user", "alice", env=env)
    assert created.stdout.splitlines()[0] == f"Token store: {store_url}"
    token_id = created.stdout.splitlines()[-1].split("_")[1]
    for argv in (["list"], ["revoke", token_id], ["prune"]):
        done = run("token", *argv, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == f"Token store: {store_url}", argv
    listed = run("token", "list", "--json", env=env)
    assert listed.stderr.strip() == f"Token store: {store_url}"
    assert json.loads(listed.stdout)["id"] == token_id, "standard output stays JSON"


def test_a_postgres_store_is_named_with_its_password_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 1: the name is printed before the store is used.
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", "postgresql://app:s3cret@127.0.0.1:1/tokens")
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE_TIMEOUT", "0.5")
    assert main(["token", "list"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "Token store: postgresql://app:****@127.0.0.1:1/tokens"
    assert "s3cret" not in out + err


def test_config_reports_every_invalid_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESTAUTH_ENABLED", "maybe")
    monkeypatch.setenv("RESTAUTH_TOKEN_MAX_LIFETIME", "forever")
    assert main(["config"]) == 2
    out = capsys.readouterr().out
    assert "RESTAUTH_ENABLED: 'maybe' is not a boolean" in out
    assert "RESTAUTH_TOKEN_MAX_LIFETIME: 'forever' is not a duration" in out


def test_config_masks_secrets_and_reports_an_unreachable_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A file that is there but is no database: a store that cannot be opened
    # (one that is not there at all is only a warning; see above).
    garbage = tmp_path / "tokens.db"
    garbage.write_bytes(b"not an SQLite database" * 100)
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", f"sqlite://{garbage}")
    assert main(["config"]) == 1
    assert "Problem: token store" in capsys.readouterr().out
    from restauth_wsgi.urls import mask_url

    assert mask_url("postgresql://app:s3cret@db/tokens") == "postgresql://app:****@db/tokens"


def test_check_says_unavailable_with_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", f"sqlite://{blocker}/tokens.db")
    from restauth_wsgi.tokens.format import generate

    assert main(["check", "--bearer", generate()[0], "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["outcome"] == "unavailable"


def test_limit_reached_is_exit_1_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", store_url)
    monkeypatch.setenv("RESTAUTH_TOKEN_MAX_PER_USER", "2")
    assert main(["token", "create", "--user", "alice"]) == 0
    assert main(["token", "create", "--user", "alice"]) == 0
    assert main(["token", "create", "--user", "alice"]) == 1
    assert "RESTAUTH_TOKEN_MAX_PER_USER" in capsys.readouterr().err


def test_list_all_shows_every_users_tokens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    """The admin's view, tokens users made themselves (the self-service API) included."""
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", store_url)
    for user in ("alice", "bob"):
        assert main(["token", "create", "--user", user]) == 0
    capsys.readouterr()
    assert main(["token", "list", "--all", "--json"]) == 0
    users = [json.loads(line)["user"] for line in capsys.readouterr().out.splitlines()]
    assert sorted(users) == ["alice", "bob"]
    assert main(["token", "list", "--all"]) == 0
    assert main(["token", "list"]) == 0
    every, default = capsys.readouterr().out.split("Token store:")[1:]
    assert every == default
    with pytest.raises(SystemExit) as raised:
        main(["token", "list", "--all", "--user", "alice"])
    assert raised.value.code == 2


def test_list_json_has_no_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    monkeypatch.setenv("RESTAUTH_TOKEN_STORE", store_url)
    main(["token", "create", "--user", "alice", "--name", "ci"])
    token = capsys.readouterr().out.splitlines()[-1]
    assert main(["token", "list", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    listed = json.loads(line)
    assert listed["user"] == "alice"
    assert listed["name"] == "ci"
    assert listed["status"] == "active"
    assert set(listed) == {
        "id",
        "user",
        "name",
        "status",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "restrictions",
    }
    assert token.split("_")[2] not in line


def _all_commands() -> list[list[str]]:
    parser = build_parser()
    found = [[]]
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in commands.items():
        found.append([name])
        if sub._subparsers is not None:
            for action in sub._subparsers._group_actions[0].choices:
                found.append([name, action])
    return found


@pytest.mark.parametrize("command", _all_commands(), ids=lambda c: " ".join(c) or "restauth")
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main([*command, "--help"])
    assert raised.value.code == 0
    assert "usage: restauth" in capsys.readouterr().out


# -- `check` decides exactly as the middleware does -----------------------------------------


def _basic(user: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


AGREEMENT = [
    pytest.param({}, "GET", "/api", None, "token", 200, id="token"),
    pytest.param(
        {"RESTAUTH_BLOCK_BASIC_PASSWORDS": "true"},
        "GET",
        "/api",
        None,
        "password",
        401,
        id="blocked-password",
    ),
    pytest.param(
        {"RESTAUTH_BLOCK_BASIC_PASSWORDS": "true", "RESTAUTH_BASIC_PASSWORD_PATHS": "/legacy/*"},
        "GET",
        "/legacy/x",
        None,
        "password",
        200,
        id="password-path",
    ),
    pytest.param(
        {"RESTAUTH_BLOCK_BASIC_PASSWORDS": "true", "RESTAUTH_BASIC_PASSWORD_PATHS": "/legacy/*"},
        "GET",
        "/legacy/../api",
        None,
        "password",
        401,
        id="password-path-spelling",
    ),
    pytest.param(
        {"RESTAUTH_ALLOWED_NETWORKS": "10.0.0.0/8"},
        "GET",
        "/api",
        "192.0.2.1",
        "token",
        403,
        id="network",
    ),
    pytest.param(
        {"RESTAUTH_PUBLIC_PATHS": "/health"},
        "GET",
        "/health",
        None,
        "garbage",
        200,
        id="public",
    ),
    pytest.param({"RESTAUTH_RULES": ""}, "DELETE", "/admin/x", None, "token", 403, id="rule"),
    pytest.param(
        {"RESTAUTH_RULES": ""}, "delete", "/admin//x", None, "token", 403, id="rule-spelling"
    ),
    pytest.param({}, "GET", "/api", None, "garbage", 401, id="garbage"),
]


@pytest.mark.parametrize(("changes", "method", "path", "client", "credential", "status"), AGREEMENT)
def test_check_agrees_with_the_middleware(
    store_url: str,
    tmp_path: Path,
    changes: dict[str, str],
    method: str,
    path: str,
    client: str | None,
    credential: str,
    status: int,
) -> None:
    import bcrypt

    passwords = tmp_path / "htpasswd"
    passwords.write_text(f"svc:{bcrypt.hashpw(b'pw-123456', bcrypt.gensalt(rounds=4)).decode()}\n")
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\npaths = ["/admin/*"]\nmethods = ["DELETE"]\nusers = ["root"]\n')
    values = {"RESTAUTH_PASSWORD_FILE": str(passwords), **changes}
    if values.pop("RESTAUTH_RULES", None) is not None:
        values["RESTAUTH_RULES_FILE"] = str(rules)
    env = cli_env(store_url, **values)
    token = run("token", "create", "--user", "alice", env=env).stdout.splitlines()[-1]
    header = {
        "token": f"Bearer {token}",
        "password": _basic("svc", "pw-123456"),
        "garbage": "Bearer garbage",
    }[credential]

    settings = Settings.from_mapping({k: v for k, v in env.items() if k.startswith("RESTAUTH_")})
    web = Client(RestAuthMiddleware(echo_app, settings=settings))
    answered = web.open(
        "/",
        headers={"Authorization": header},
        environ_overrides={
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "REMOTE_ADDR": client or "127.0.0.1",
        },
    )
    assert answered.status_code == status

    args = ["check", "--json", "--method", method, "--path", path]
    args += ["--client", client or "127.0.0.1"]
    if credential == "password":
        args += ["--basic", "svc:pw-123456"]
    else:
        args += ["--bearer", header.removeprefix("Bearer ")]
    checked = run(*args, env=env)
    outcome = json.loads(checked.stdout)
    assert checked.returncode == (0 if status == 200 else 1), checked.stdout
    assert outcome.get("status", 200) == status
    assert outcome["outcome"] in (
        ("accepted", "public") if status == 200 else ("refused", "forbidden")
    )


def test_check_says_what_to_fix(env: dict[str, str]) -> None:
    empty = run("check", "--bearer", "", env=env)
    assert empty.returncode == 2
    assert "empty" in empty.stderr
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0.c2ln"
    no_provider = run("check", "--bearer", jwt_like, env=env)
    assert "no provider is configured" in no_provider.stdout
    ghp = run("check", "--bearer", "ghp_" + "a" * 36, env=env)
    assert "no github provider is configured" in ghp.stdout
    bad_method = run("check", "--bearer", "x", "--method", "GE T", env=env)
    assert bad_method.returncode == 2


@pytest.mark.parametrize(
    "token", ["-Ab3_x9kLmNoPqRsTu", "--Zq-7kLmNoPqRsTuV", "-h9kLmNoPqRsTuVwX", "-5akLmNoPqRsTuVwX"]
)
def test_a_token_that_begins_with_a_dash_is_a_token(
    fake_provider: FakeProvider, store_url: str, token: str
) -> None:
    # base64url tokens begin with "-" one time in 64 (oidc-provider's opaque
    # ones did, in CI): argparse took them for options.
    seen: list[str] = []

    def me(request: object) -> Reply:
        seen.append(getattr(request, "headers", {}).get("Authorization", ""))
        return Reply(200, {"sub": "alice"})

    fake_provider.route("/me", me)
    env = cli_env(
        store_url,
        RESTAUTH_PROVIDERS="idp",
        RESTAUTH_IDP_TYPE="oauth2",
        RESTAUTH_IDP_USERINFO_URL=f"{fake_provider.url}/me",
    )
    checked = run("check", "--bearer", token, "--json", env=env)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["identity"]["username"] == "alice"
    shown = run("userinfo", token, "--provider", "idp", env=env)
    assert shown.returncode == 0, shown.stderr
    assert seen == [f"Bearer {token}"] * 2
    # A short value is left where it is: "--provider -gh" is an error, not a
    # provider named after the token (which the error would then print).
    swapped = run("userinfo", "--provider", "-gh", "Zq" * 20, env=env)
    assert swapped.returncode == 2
    assert "Zq" * 20 not in swapped.stderr
    # What looks like an option still is one: a forgotten token is a usage error.
    assert run("check", "--bearer", "--json", env=env).returncode == 2
    assert "expected one argument" in run("check", "--bearer", "--json", env=env).stderr


def test_check_says_when_the_middleware_is_off(env: dict[str, str]) -> None:
    done = run(
        "check",
        "--bearer",
        "restauth_wrong",
        "--path",
        "/rest/admin",
        env={**env, "RESTAUTH_ENABLED": "false"},
    )
    assert done.returncode == 0
    assert done.stdout.startswith("DISABLED")


def test_check_decodes_the_path_as_the_server_does(env: dict[str, str]) -> None:
    public = {**env, "RESTAUTH_PUBLIC_PATHS": "/données/*"}
    done = run("check", "--bearer", "x", "--path", "/donn%C3%A9es/a", env=public)
    assert done.stdout.startswith("PUBLIC"), done.stdout
    plain = run("check", "--bearer", "x", "--path", "/données/a", env=public)
    assert plain.stdout.startswith("PUBLIC"), plain.stdout


def test_token_list_never_prints_a_control_character(env: dict[str, str], store_url: str) -> None:
    # A row written by hand, or before names and globs were checked: what a
    # terminal would obey (erase the line, paint another) is shown escaped.
    token = run("token", "create", "--user", "alice", env=env).stdout.splitlines()[-1]
    path = store_url.removeprefix("sqlite://")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE tokens SET name = ? WHERE id = ?",
            ("ci\r\x1b[2Krevoked\x9b2K", token.split("_")[1]),
        )
    listed = run("token", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert not any(c in listed.stdout for c in "\r\x1b\x9b")
    assert "ci\\r\\x1b[2Krevoked\\x9b2K" in listed.stdout


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--allow", "GET /x\x1b[2K", "control character"),
        ("--allow", "OPTIONS /x", "judged as every method"),
        ("--scope", "read\x1b[2K", "control character"),
        ("--allow", "GET /x\u2028y", "line separator"),
        ("--allow", "GET /x\u202ey", "bidirectional override"),
        ("--user", "eve\x85admin", "control characters"),
        ("--user", "eve\u2028admin", "line separators"),
        ("--user", "nimda\u202eeve", "bidirectional overrides"),
        ("--user", "ad\u200bmin", "bidirectional overrides"),
        ("--user", "\ufeffadmin", "bidirectional overrides"),
        ("--name", "ci\u202e", "bidirectional overrides"),
        ("--network", "junk", "junk"),
    ],
)
def test_token_create_refuses_what_a_terminal_or_a_router_would_misread(
    env: dict[str, str], option: str, value: str, says: str
) -> None:
    made = run("token", "create", "--user", "alice", option, value, env=env)
    assert made.returncode == 2
    assert says in made.stderr
    assert "Traceback" not in made.stderr


@pytest.mark.parametrize("user", ["\udcff", "\udced\udca0\udc80", "a:b"])
@pytest.mark.parametrize("as_json", [False, True])
def test_token_list_of_a_user_no_one_can_be_is_a_usage_error(
    env: dict[str, str], user: str, as_json: bool
) -> None:
    # Bytes that are not UTF-8 (subprocess writes each \udcXX as the byte XX).
    listed = run("token", "list", "--user", user, *(["--json"] if as_json else []), env=env)
    assert listed.returncode == 2
    assert "--user" in listed.stderr
    assert "Traceback" not in listed.stderr
