"""What a fault review found in the parts behind the middleware: a provider's
URLs that do not parse, the shared cache holding entries no release writes
or answering a byte at a time, and a PostgreSQL store that is damaged,
read-only, short of privileges or locked. Each must be a 503 (or the right
answer), never a 500, never a hang past its timeout, never an expired
answer accepted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.cache.backends import open_backend
from restauth_wsgi.cache.redis_backend import CutOff
from restauth_wsgi.cache.shared import open_shared_cache
from restauth_wsgi.providers.presets import resolve
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.tokens.issuing import issue_token

from .fake_provider import FakeProvider, Reply
from .helpers import echo_app, run_restauth
from .oidc_provider import SigningKey
from .services import TcpProxy, memcached_server, postgres_database, redis_server

KEY = SigningKey("RS256")


def ask(client: Client, token: str) -> Any:
    return client.get("/", headers={"Authorization": f"Bearer {token}"})


# -- a provider's URLs ---------------------------------------------------------------


@pytest.mark.parametrize("location", ["http://[::1/x", "http://[abc]/"])
def test_a_redirect_to_a_url_that_does_not_parse_is_503(
    fake_provider: FakeProvider, tmp_path: Path, location: str
) -> None:
    fake_provider.route("/me", lambda request: Reply(302, b"", {"Location": location}))
    provider = ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me")
    settings = Settings(
        token_store=f"sqlite://{tmp_path}/t.db", providers=(provider,), upstream_backoff=0
    )
    answer = ask(Client(RestAuthMiddleware(echo_app, settings=settings)), "opaque")
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert int(answer.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("field", "validation"),
    [
        ("jwks_uri", "jwt"),
        ("introspection_endpoint", "introspection"),
        ("userinfo_endpoint", "userinfo"),
    ],
)
def test_a_discovered_endpoint_that_does_not_parse_is_503(
    fake_provider: FakeProvider, tmp_path: Path, field: str, validation: str
) -> None:
    issuer = fake_provider.url
    document = {"issuer": issuer, "jwks_uri": f"{issuer}/jwks", field: "http://[::1/endpoint"}
    fake_provider.json("/.well-known/openid-configuration", document)
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk()]})
    provider = ProviderSettings(
        "idp",
        type="oidc",
        issuer=issuer,
        audience=("api",),
        validation=validation,
        client_id="c",
        client_secret="s",
    )
    settings = Settings(
        token_store=f"sqlite://{tmp_path}/t.db",
        providers=(provider,),
        upstream_backoff=0,
        allow_http=True,
    )
    claims = {"iss": issuer, "aud": "api", "sub": "bob", "exp": int(time.time()) + 300}
    token = KEY.sign(claims) if validation == "jwt" else "opaque"
    answer = ask(Client(RestAuthMiddleware(echo_app, settings=settings)), token)
    assert answer.status_code == 503, answer.get_data(as_text=True)


# -- the shared cache, as another release or anyone with access to it wrote it ------


@pytest.mark.parametrize(
    "entry",
    [
        {"fetched_at": 10**400, "jwks": {"keys": []}},
        {"fetched_at": 1.0, "kid_fetch_at": 10**400, "jwks": {}},
        {"fetched_at": True, "jwks": {"keys": []}},
        # Fetched "later" than now: it would stay fresh for ever, its keys never rotated.
        {"fetched_at": time.time() + 10**6, "jwks": {"keys": []}},
    ],
    ids=["huge-fetched-at", "huge-kid-fetch-at", "boolean", "from-the-future"],
)
def test_a_key_set_entry_no_release_writes_is_no_key_set(
    fake_provider: FakeProvider, tmp_path: Path, entry: dict[str, Any]
) -> None:
    issuer = fake_provider.url
    fake_provider.json(
        "/.well-known/openid-configuration", {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}
    )
    fake_provider.json("/jwks", {"keys": [KEY.public_jwk()]})
    cache = f"file://{tmp_path}/cache"
    provider = ProviderSettings("idp", type="oidc", issuer=issuer, audience=("api",))
    settings = Settings(
        token_store=f"sqlite://{tmp_path}/t.db",
        providers=(provider,),
        cache=cache,
        allow_http=True,
        cache_namespace="faults",
    )
    shared = open_shared_cache(cache, max_entries=100, timeout=1, namespace="faults")
    shared.set("jwks", f"{issuer}/jwks", entry, 300)
    token = KEY.sign({"iss": issuer, "aud": "api", "sub": "bob", "exp": int(time.time()) + 300})
    answer = ask(Client(RestAuthMiddleware(echo_app, settings=settings)), token)
    assert answer.status_code == 200, "the entry was passed over; the keys were fetched"
    assert json.loads(answer.get_data())["remote_user"] == "bob"


@pytest.mark.parametrize("expires_at", [-600, float("nan"), True], ids=["past", "nan", "boolean"])
def test_a_cached_answer_past_its_own_expiry_is_not_used(
    fake_provider: FakeProvider, tmp_path: Path, expires_at: float
) -> None:
    # A host whose clock runs behind kept the answer longer than it holds.
    fake_provider.route("/me", lambda request: Reply(401, {"error": "invalid_token"}))
    cache = f"file://{tmp_path}/cache"
    provider = ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me")
    settings = Settings(
        token_store=f"sqlite://{tmp_path}/t.db",
        providers=(provider,),
        cache=cache,
        cache_namespace="faults",
        upstream_backoff=0,
    )
    client = Client(RestAuthMiddleware(echo_app, settings=settings))
    config = resolve(provider, allow_http=False)
    kind = f"{config.validation}:{config.name}:{config.fingerprint}"
    when = time.time() + expires_at if type(expires_at) is int else expires_at
    shared = open_shared_cache(cache, max_entries=100, timeout=1, namespace="faults")
    shared.set(
        kind, "opaque-1", {"active": True, "claims": {"sub": "dave"}, "expires_at": when}, 300
    )
    answer = ask(client, "opaque-1")
    assert answer.status_code == 401, answer.get_data(as_text=True)


# -- a shared cache whose replies arrive a byte at a time --------------------------


@pytest.fixture(params=["redis", "memcached"])
def dripping_cache(request: pytest.FixtureRequest) -> Iterator[tuple[str, TcpProxy]]:
    """A real Redis or memcached behind a proxy that can make one connection
    drip: its URL (through the proxy) and the proxy."""
    kind = request.param
    with redis_server() if kind == "redis" else memcached_server() as server:
        proxy = TcpProxy("127.0.0.1", server.port)
        try:
            scheme = "redis://127.0.0.1:{}/0" if kind == "redis" else "memcached://127.0.0.1:{}"
            yield scheme.format(proxy.port), proxy
        finally:
            proxy.cut()


def test_a_dripping_cache_reply_is_cut_and_only_that_call_fails(
    dripping_cache: tuple[str, TcpProxy],
) -> None:
    # Each byte comes within the 0.5 s per receive; the reply never ends in
    # time. Only the call on that connection may fail: other threads' calls
    # on the same backend (the lockout's counters) must go on, whole.
    url, proxy = dripping_cache
    backend = open_backend(url, max_entries=1000, timeout=0.5)
    try:
        proxy.drip_next.set()
        slow: list[BaseException | None] = []

        def slow_call() -> None:
            try:
                backend.cache.get("restauth:test:slow")
                slow.append(None)
            except Exception as exc:
                slow.append(exc)

        worker = threading.Thread(target=slow_call, daemon=True)
        worker.start()
        assert proxy.dripping.wait(10), "the first call made the dripping connection"
        errors: list[Exception] = []
        made = [0] * 4

        def other_calls(index: int) -> None:  # until the dripping call has ended, and a bit
            ends = None
            while ends is None or time.monotonic() < ends:
                if ends is None and not worker.is_alive():
                    ends = time.monotonic() + 0.5
                try:
                    backend.incr("restauth:test:counter", 60)
                    made[index] += 1
                except Exception as exc:
                    errors.append(exc)

        others = [threading.Thread(target=other_calls, args=(i,)) for i in range(4)]
        for thread in others:
            thread.start()
        worker.join(20)
        assert not worker.is_alive(), "the dripping call still runs after 20 s (limit: 1 s)"
        for thread in others:
            thread.join(20)
        assert errors == [], "other threads' calls go on, whole, while one drips and is cut"
        assert len(slow) == 1
        assert slow[0] is not None, "a reply that did not come whole is a failure"
        assert backend.count("restauth:test:counter") == sum(made) > 0
        assert backend.incr("restauth:test:counter", 60) == sum(made) + 1, "it works on"
    finally:
        backend.close()


@pytest.fixture
def slow_redis() -> Iterator[tuple[str, str, TcpProxy]]:
    """A private Redis behind a proxy that can hold its replies back: the
    URL through the proxy, the direct URL, and the proxy."""
    with redis_server() as server:
        proxy = TcpProxy("127.0.0.1", server.port)
        try:
            yield (
                f"redis://127.0.0.1:{proxy.port}/0",
                f"redis://127.0.0.1:{server.port}/0",
                proxy,
            )
        finally:
            proxy.cut()


def test_a_redis_counter_whose_reply_came_late_is_not_counted_twice(
    slow_redis: tuple[str, str, TcpProxy],
) -> None:
    # The transaction ran; its reply came after the 0.5 s receive timeout
    # (but before the call's deadline). Retried, it ran again: one failed
    # login counted as two, a user locked out at half the threshold.
    url, direct, proxy = slow_redis
    backend = open_backend(url, max_entries=1000, timeout=0.5)
    raw = redis.Redis.from_url(direct)
    try:
        assert backend.incr("restauth:test:late", 60) == 1  # a connection, made at full speed
        proxy.slow_down_open(0.7)  # that one only: a retry's new connection is fast
        with pytest.raises(redis.exceptions.RedisError):
            backend.incr("restauth:test:late", 60)
        assert raw.get("restauth:test:late") == b"2", "the late transaction counted once"
        assert backend.incr("restauth:test:late", 60) == 3
        proxy.slow_down_open(0.7)
        with pytest.raises(redis.exceptions.RedisError):
            backend.decr("restauth:test:late")
        assert raw.get("restauth:test:late") == b"2", "the late give-back was run once"
    finally:
        backend.close()
        raw.close()


def test_a_redis_call_has_one_deadline_not_one_per_reply(
    slow_redis: tuple[str, str, TcpProxy],
) -> None:
    # Each reply 0.4 s late, within the 0.5 s receive timeout: a new
    # connection's handshake reads three replies and a counter's transaction
    # five, each given a deadline of its own (1 s) the call took 4 s.
    url, _, proxy = slow_redis
    backend = open_backend(url, max_entries=1000, timeout=0.5)
    try:
        proxy.delay = 0.4
        with pytest.raises(CutOff):
            backend.incr("restauth:test:slow", 60)
        with pytest.raises(CutOff):
            backend.cache.get("restauth:test:slow")
    finally:
        proxy.delay = 0.0
        backend.close()


def test_a_request_is_answered_while_the_cache_drips(
    fake_provider: FakeProvider, tmp_path: Path, dripping_cache: tuple[str, TcpProxy]
) -> None:
    url, proxy = dripping_cache
    fake_provider.route("/me", lambda request: Reply(200, {"sub": "bob"}))
    provider = ProviderSettings("idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me")
    settings = Settings(
        token_store=f"sqlite://{tmp_path}/t.db",
        providers=(provider,),
        cache=url,
        cache_timeout=0.5,
    )
    middleware = RestAuthMiddleware(echo_app, settings=settings)
    try:
        proxy.drip_next.set()
        answer = within(lambda: ask(Client(middleware), "opaque-1"))
        assert answer.status_code == 200, "the cache is skipped; the provider answers"
        assert json.loads(answer.get_data())["remote_user"] == "bob"
    finally:
        middleware.close()


# -- a PostgreSQL store that is damaged, read-only, short of privileges or locked ----


@pytest.fixture
def pg() -> Iterator[tuple[str, str, psycopg.Connection[Any]]]:
    with postgres_database() as url:
        settings = Settings(token_store=url, token_store_timeout=1.0)
        store = settings.open_token_store()
        token, _ = issue_token(store, settings.token_policy(), owner="alice")
        store.close()
        with psycopg.connect(url, autocommit=True) as admin:
            yield url, token, admin


def within(call: Callable[[], Any], limit: float = 20.0) -> Any:
    """``call``'s result, failing if it hangs (the timeouts here are 1 s or less)."""
    done: list[Any] = []

    def run() -> None:
        try:
            done.append(call())
        except BaseException as exc:  # a 500 is re-raised below, as itself
            done.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit)
    assert done, f"still waiting after {limit:g} s, where the timeout is a second or less"
    if isinstance(done[0], BaseException):
        raise done[0]
    return done[0]


_OPENED: list[RestAuthMiddleware] = []


def store_client(url: str) -> Client:
    settings = Settings(token_store=url, token_store_timeout=1.0)
    middleware = RestAuthMiddleware(echo_app, settings=settings)
    _OPENED.append(middleware)
    return Client(middleware)


@pytest.fixture(autouse=True)
def _close_what_was_opened() -> Iterator[None]:
    # Their pools would go on reconnecting to a database dropped after the
    # test (and drawing on the random module while other tests run).
    yield
    while _OPENED:
        _OPENED.pop().close()


@pytest.mark.parametrize(
    "damage",
    [
        "ALTER TABLE restauth_tokens RENAME TO restauth_tokens_old",
        "ALTER DATABASE {db} SET default_transaction_read_only = on",
    ],
    ids=["table-renamed", "read-only-database"],
)
def test_a_damaged_or_read_only_store_is_503(
    pg: tuple[str, str, psycopg.Connection[Any]], damage: str
) -> None:
    url, token, admin = pg
    admin.execute(damage.format(db=f'"{url.rsplit("/", 1)[1]}"'))
    answer = within(lambda: ask(store_client(url), token))
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) > 0


def test_a_role_without_create_reads_or_is_503(
    pg: tuple[str, str, psycopg.Connection[Any]],
) -> None:
    url, token, admin = pg
    role = f"restauth_ro_{url.rsplit('_', 1)[1]}"
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        admin.execute(
            "GRANT SELECT, UPDATE ON restauth_tokens, restauth_token_changes, restauth_schema"
            f' TO "{role}"'
        )
        answer = within(lambda: ask(store_client(url.replace("root@", f"{role}@")), token))
        assert answer.status_code in (200, 503)
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')


def test_a_table_held_by_another_session_is_503_not_a_hang(
    pg: tuple[str, str, psycopg.Connection[Any]],
) -> None:
    url, token, admin = pg
    client = store_client(url)
    assert ask(client, token).status_code == 200
    admin.execute("BEGIN")
    admin.execute("LOCK TABLE restauth_tokens IN ACCESS EXCLUSIVE MODE")
    try:
        other = store_client(url)  # its first read: nothing remembered
        answer = within(lambda: ask(other, token))
        assert answer.status_code == 503
    finally:
        admin.execute("ROLLBACK")


def test_a_store_that_stops_answering_is_503_not_a_hang(
    pg: tuple[str, str, psycopg.Connection[Any]],
) -> None:
    # A server, PgBouncer or path that accepts and then answers nothing: no
    # reset, no statement_timeout from a server that is not running it.
    url, token, _ = pg
    host, port = url.split("@", 1)[1].split("/", 1)[0].split(":")
    proxy = TcpProxy(host, int(port))
    client = store_client(url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}"))
    assert ask(client, token).status_code == 200  # connected, schema checked
    settings = Settings(token_store=url)
    store = settings.open_token_store()
    unseen, _ = issue_token(store, settings.token_policy(), owner="bob")
    store.close()
    proxy.frozen.set()
    try:
        answer = within(lambda: ask(client, unseen))
        assert answer.status_code == 503
    finally:
        proxy.frozen.clear()
        proxy.cut()


@pytest.mark.parametrize("command", ["check", "revoke"])
def test_the_cli_names_a_damaged_store_without_a_traceback(
    pg: tuple[str, str, psycopg.Connection[Any]], command: str
) -> None:
    url, token, admin = pg
    admin.execute("ALTER TABLE restauth_tokens RENAME TO restauth_tokens_old")
    args = ["check", "--bearer", token] if command == "check" else ["token", "revoke", token]
    done = run_restauth(url, *args)
    assert done.returncode in (1, 3), done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "UndefinedTable" in done.stderr + done.stdout
