"""The embedded SQLite store: schema, migrations, files, and many processes at once."""

from __future__ import annotations

import base64
import contextlib
import multiprocessing
import sqlite3
import stat
from pathlib import Path

import pytest
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.authentication import Authentication
from restauth_wsgi.errors import TokenLimitExceeded
from restauth_wsgi.tokens.authenticator import ApiTokenAuthenticator
from restauth_wsgi.tokens.issuing import issue_token
from restauth_wsgi.tokens.sqlite import MIGRATIONS, SQLiteTokenStore
from restauth_wsgi.tokens.store import open_store, sqlite_path

from .helpers import echo_app


def test_wal_mode_and_private_file(tmp_path: Path) -> None:
    store = SQLiteTokenStore(str(tmp_path / "sub" / "tokens.db"))
    assert store.list() == []
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    assert stat.S_IMODE(Path(store.path).stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(store.path).parent.stat().st_mode) == 0o700


class _NextVersionStore(SQLiteTokenStore):
    """The store as a later release might have it: one more migration."""

    migrations = (*MIGRATIONS, ("ALTER TABLE tokens ADD COLUMN read_only INTEGER",))


def test_migration_adds_fields_without_losing_a_token(tmp_path: Path) -> None:
    path = str(tmp_path / "tokens.db")
    settings = Settings(token_store=f"sqlite://{path}")
    old = SQLiteTokenStore(path)
    tokens = [issue_token(old, settings.token_policy(), owner=f"u{i}")[0] for i in range(3)]
    old.close()

    new = _NextVersionStore(path)
    assert new.schema_version() == len(MIGRATIONS) + 1
    assert len(new.list()) == 3
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(tokens)")]
    assert "read_only" in columns
    new.close()

    # Tokens made before the upgrade still authenticate afterwards.
    authentication = Authentication([ApiTokenAuthenticator(_NextVersionStore(path))])
    for token in tokens:
        assert authentication.authenticate(f"Bearer {token}").username.startswith("u")


def test_an_older_release_keeps_working_on_a_migrated_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "tokens.db")
    settings = Settings(token_store=f"sqlite://{path}")
    _NextVersionStore(path).list()
    token, _ = issue_token(SQLiteTokenStore(path), settings.token_policy(), owner="alice")
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert "newer than this release" in caplog.text
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS) + 1,)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/restauth/tokens.db", "/var/lib/restauth/tokens.db"),
        ("sqlite:////var/lib/tokens.db", "//var/lib/tokens.db"),
        ("sqlite://localhost/srv/tokens.db", "/srv/tokens.db"),
        ("sqlite:tokens.db", "tokens.db"),
    ],
)
def test_store_urls(url: str, path: str) -> None:
    assert sqlite_path(url) == path
    assert open_store(url, timeout=1).path == path  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["sqlite://db.example/tokens.db", "sqlite:///", "sqlite:"])
def test_bad_store_urls_name_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match="RESTAUTH_TOKEN_STORE"):
        Settings(token_store=url)


# -- many processes at once ----------------------------------------------------------

WORKERS = 4
TOKENS_EACH = 12


def _worker(path: str, worker: int, start: multiprocessing.synchronize.Event) -> list[str]:
    """Create tokens, use each through the middleware, and race for a shared user's quota."""
    settings = Settings(token_store=f"sqlite://{path}", token_max_per_user=0)
    limited = Settings(token_store=f"sqlite://{path}", token_max_per_user=10).token_policy()
    store = SQLiteTokenStore(path)
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    start.wait()
    made = []
    for i in range(TOKENS_EACH):
        owner = f"worker{worker}"
        token, _ = issue_token(store, settings.token_policy(), owner=owner, name=str(i))
        made.append(token)
        for header in (
            f"Bearer {token}",
            "Basic " + base64.b64encode(f"{owner}:{token}".encode()).decode(),
        ):
            response = client.get("/", headers={"Authorization": header})
            assert response.status_code == 200, response.get_data(as_text=True)
        with contextlib.suppress(TokenLimitExceeded):
            issue_token(store, limited, owner="shared")
    return made


@pytest.mark.slow
def test_many_processes_share_one_file_without_losing_a_token(tmp_path: Path) -> None:
    path = str(tmp_path / "tokens.db")
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Event()
    with context.Pool(WORKERS) as pool:
        results = [pool.apply_async(_worker, (path, w, start)) for w in range(WORKERS)]
        start.set()
        made = [token for result in results for token in result.get(timeout=120)]

    assert len(made) == len(set(made)) == WORKERS * TOKENS_EACH
    store = SQLiteTokenStore(path)
    records = store.list()
    assert len([r for r in records if r.owner.startswith("worker")]) == WORKERS * TOKENS_EACH
    assert len([r for r in records if r.owner == "shared"]) == 10, "the limit held under races"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    client = Client(RestAuthMiddleware(echo_app, settings=Settings(token_store=f"sqlite://{path}")))
    for token in made:
        assert client.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
