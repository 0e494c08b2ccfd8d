"""The shared cache, the same suite against every backend: memory, file,
Redis (the machine's, then a private one that is stopped mid-run) and
memcached (a private one from Debian's package)."""

from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import redis

from restauth_wsgi.cache import SharedCache, check_cache_url, open_shared_cache
from restauth_wsgi.cache.backends import open_backend

from .services import memcached_server, redis_server

BACKENDS = ["memory", "file", "redis", "memcached"]


class Planted:
    """What an attacker with write access to a shared cache would store."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(params=BACKENDS)
def cache_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory"
    elif request.param == "file":
        yield f"file://{tmp_path}/cache"
    elif request.param == "redis":
        with redis_server() as server:
            yield f"redis://127.0.0.1:{server.port}/0"
    else:
        with memcached_server() as server:
            yield f"memcached://127.0.0.1:{server.port}"


_opened: list[SharedCache] = []


def open_cache(url: str) -> SharedCache:
    cache = open_shared_cache(url, max_entries=1000, timeout=0.5)
    _opened.append(cache)
    return cache


@pytest.fixture(autouse=True)
def _close_caches() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def test_round_trip_and_expiry(cache_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = open_cache(cache_url)
    secret = f"token-{uuid.uuid4()}"
    assert cache.get("introspection:idp", secret) is None
    cache.set("introspection:idp", secret, {"active": True, "claims": {"sub": "alice"}}, ttl=1)
    assert cache.get("introspection:idp", secret) == {"active": True, "claims": {"sub": "alice"}}
    assert cache.get("userinfo:idp", secret) is None, "kinds do not mix"
    key = cache.key("introspection:idp", secret)
    if cache_url.startswith(("redis", "memcached")):
        # The server expires the key by its own clock: what is ours to get
        # right is the whole-second time to live it was given.
        # (-1 would be "never expires"; 0 is a whole second that just ticked over)
        # cachelib hands memcached an absolute expiry (the wall clock's whole
        # second plus the ttl), which memcached reads against its own clock,
        # ticking once a second and a second behind under load: it may hold 2.
        most = 2 if cache_url.startswith("memcached") else 1
        assert 0 <= seconds_to_live(cache_url, key) <= most
    else:
        # cachelib's memory and file caches read the time through time.time:
        # two seconds on, without waiting for them.
        later = time.time() + 2
        monkeypatch.setattr("cachelib.simple.time", lambda: later)
        monkeypatch.setattr("cachelib.file.time", lambda: later)
        assert cache.get("introspection:idp", secret) is None


def seconds_to_live(cache_url: str, key: str) -> int:
    """The time to live a Redis or memcached server holds for ``key``."""
    if cache_url.startswith("redis"):
        client = redis.Redis.from_url(cache_url)
        try:
            return int(client.ttl(key))
        finally:
            client.close()
    host, port = cache_url.removeprefix("memcached://").split(":")
    # memcached's meta get (1.6+) reports the remaining time with the t flag: "HD t1".
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(f"mg {key} t\r\n".encode())
        answer = conn.recv(256).decode()
    assert answer.startswith("HD t"), answer
    return int(answer.split()[1][1:])


def test_keys_are_hashes_and_values_json(cache_url: str, tmp_path: Path) -> None:
    cache = open_cache(cache_url)
    secret = f"ya29.{uuid.uuid4()}"
    cache.set("check:google", secret, {"active": True}, ttl=60)
    key = cache.key("check:google", secret)
    assert secret not in key
    assert len(key) < 250
    backend = cache.backend
    if cache_url.startswith("redis"):
        client = redis.Redis.from_url(cache_url)
        raw = client.get(key)
        client.close()
        assert isinstance(raw, bytes)
        assert raw.startswith(b'"'), "JSON text, not a pickle"
        assert b"active" in raw
    elif cache_url.startswith("file"):
        contents = b"".join(p.read_bytes() for p in (tmp_path / "cache").iterdir())
        assert b'{\\"active\\": true}' in contents, "JSON text, not a pickle"
        assert secret.encode() not in contents
    elif cache_url == "memory":
        assert all(secret not in k for k in backend._cache)  # type: ignore[attr-defined]


def test_a_planted_pickle_is_never_run(cache_url: str, tmp_path: Path) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    payload = pickle.dumps(Planted(str(marker)))
    cache = open_cache(cache_url)
    key = cache.key("introspection:idp", "victim-token")
    backend = cache.backend
    if cache_url.startswith("redis"):
        # cachelib's default Redis format: "!" + pickle.
        client = redis.Redis.from_url(cache_url)
        client.set(key, b"!" + payload)
        client.close()
    elif cache_url.startswith("memcached"):
        from pymemcache.client.base import Client

        host, port = cache_url.removeprefix("memcached://").split(":")
        raw = Client((host, int(port)))
        raw.set(key, payload, flags=1)  # python-memcached's "pickled" flag
        raw.close()
    elif cache_url.startswith("file"):
        filename = backend._get_filename(key)  # type: ignore[attr-defined]
        Path(filename).write_bytes(int(time.time() + 60).to_bytes(4, "little") + payload)
    else:
        backend._cache[key] = (time.time() + 60, payload)  # type: ignore[attr-defined]
    assert cache.get("introspection:idp", "victim-token") is None
    assert not marker.exists()


@pytest.mark.parametrize("starter", [redis_server, memcached_server], ids=["redis", "memcached"])
def test_outage_degrades_to_no_cache_and_recovers(
    starter: Callable[[], AbstractContextManager[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    with starter() as server:
        scheme = "redis" if starter is redis_server else "memcached"
        url = f"{scheme}://127.0.0.1:{server.port}"
        now = [1000.0]
        cache = SharedCache(
            functools.partial(open_backend, url, max_entries=1000, timeout=0.5),
            retry_after=0.5,
            clock=lambda: now[0],
        )
        _opened.append(cache)
        cache.set("userinfo:idp", "t", {"v": 1}, ttl=60)
        assert cache.get("userinfo:idp", "t") == {"v": 1}
        server.stop()
        with caplog.at_level(logging.WARNING):
            assert cache.get("userinfo:idp", "t") is None  # no exception
            cache.set("userinfo:idp", "t2", {"v": 2}, ttl=60)  # no exception
        assert "shared cache unavailable" in caplog.text
        server.start()
        cache.set("userinfo:idp", "t3", {"v": 3}, ttl=60)
        assert cache.get("userinfo:idp", "t3") is None, "left alone for retry_after"
        now[0] += 0.6
        cache.set("userinfo:idp", "t3", {"v": 3}, ttl=60)
        assert cache.get("userinfo:idp", "t3") == {"v": 3}, "recovered by itself"


def test_threads_share_one_backend_safely(cache_url: str) -> None:
    # gunicorn's threads share a worker's backend. pymemcache's plain client
    # let two threads' commands and replies interleave on one socket: most
    # calls failed (the cache then skipped) and gets came back empty.
    backend = open_backend(cache_url, max_entries=1000, timeout=0.5)
    try:
        for i in range(50):
            backend.cache.set(f"restauth:test:k{i}", json.dumps({"v": i}))
        wrong: list[object] = []

        def work(offset: int) -> None:
            for n in range(300):
                i = (n * 7 + offset) % 50
                try:
                    raw = backend.cache.get(f"restauth:test:k{i}")
                    if raw is None or json.loads(raw) != {"v": i}:
                        wrong.append((i, raw))
                except Exception as exc:
                    wrong.append(exc)
                backend.incr("restauth:test:counter", 60)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert wrong == []
        assert backend.count("restauth:test:counter") == 8 * 300, "no count lost"
    finally:
        backend.close()


@pytest.mark.parametrize("starter", [redis_server, memcached_server], ids=["redis", "memcached"])
def test_a_counter_always_expires(starter: Callable[[], AbstractContextManager[Any]]) -> None:
    # A counter with no expiry counts a user's failures for ever: a lockout
    # that never lifts. A give-back on a counter that has just expired must
    # not make one (Redis's DECR creates the key), nor may a counter an
    # older release left without one stay so.
    with starter() as server:
        scheme = "redis" if starter is redis_server else "memcached"
        url = f"{scheme}://127.0.0.1:{server.port}"
        backend = open_backend(url, max_entries=1000, timeout=0.5)
        try:
            backend.decr("restauth:test:gone")
            backend.incr("restauth:test:gone", 60)
            backend.incr("restauth:test:fresh", 60)
            if scheme == "redis":
                raw = redis.Redis.from_url(url)
                raw.set("restauth:test:old", 3)  # INCR applied, EXPIRE lost
                assert backend.incr("restauth:test:old", 60) == 4
                for key in ("gone", "fresh", "old"):
                    assert 0 < int(raw.ttl(f"restauth:test:{key}")) <= 60, key
                raw.close()
            else:
                for key in ("gone", "fresh"):
                    assert 0 <= seconds_to_live(url, f"restauth:test:{key}") <= 61, key
            assert backend.count("restauth:test:fresh") == 1
        finally:
            backend.close()


@pytest.mark.parametrize("starter", [redis_server, memcached_server], ids=["redis", "memcached"])
def test_a_counter_on_a_cache_that_just_failed_is_an_error_not_zero(
    starter: Callable[[], AbstractContextManager[Any]],
) -> None:
    # pymemcache answered calls to a server that had failed a moment ago
    # with a default: an incr of 0 (a failure not counted), no error seen.
    with starter() as server:
        scheme = "redis" if starter is redis_server else "memcached"
        backend = open_backend(f"{scheme}://127.0.0.1:{server.port}", max_entries=1000, timeout=0.5)
        try:
            assert backend.incr("restauth:test:c", 60) == 1
            server.stop()
            for _ in range(3):
                with pytest.raises(Exception):  # noqa: B017,PT011 - any error, never a quiet 0
                    backend.incr("restauth:test:c", 60)
            server.start()
            assert backend.incr("restauth:test:d", 60) == 1, "the next call reaches it again"
        finally:
            backend.close()


def test_unwritable_file_cache_is_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = open_cache(f"file://{blocker}/cache")  # no error at construction
    cache.set("userinfo:idp", "t", {"v": 1}, ttl=60)
    assert cache.get("userinfo:idp", "t") is None


@pytest.mark.parametrize(
    "url",
    [
        "memory",
        "file:///var/cache/restauth",
        "redis://localhost:6379/0",
        "rediss://:secret@cache.example:6380/1",
        "memcached://a:11211,b:11211",
    ],
)
def test_cache_urls(url: str) -> None:
    check_cache_url(url)


@pytest.mark.parametrize(
    "url", ["", "file://relative", "redis://", "memcached://host", "mongodb://x", "memcache"]
)
def test_bad_cache_urls(url: str) -> None:
    with pytest.raises(ValueError, match="not a supported cache"):
        check_cache_url(url)
