"""Values per thread or per process, made on first use and never inherited across ``fork``.

SQLite connections and HTTP connection pools must not be shared between a
pre-fork server's parent and its workers (gunicorn ``--preload``, mod_wsgi):
after a fork, the child makes its own on first use.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# Bumped in every forked child, so values made before the fork are not reused.
_generation = 0


def _after_fork() -> None:
    global _generation
    _generation += 1


os.register_at_fork(after_in_child=_after_fork)


def fork_generation() -> int:
    """How many forks deep this process is: it changes in every forked child."""
    return _generation


class PerThread(Generic[T]):
    """Holds one ``T`` per thread (and per process), made by ``factory``."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._local = threading.local()
        # Bumped by renew(): values made under an older one are made again.
        self._renewal = 0

    def get(self) -> T:
        """This thread's value, made now if it has none (or only a parent's,
        or one made before :meth:`renew`)."""
        local = self._local
        value: T | None = getattr(local, "value", None)
        if value is not None and local.generation == _generation:
            if local.renewal == self._renewal:
                return value
            _close(value)
        value = self._factory()
        local.value, local.generation, local.renewal = value, _generation, self._renewal
        return value

    def renew(self) -> None:
        """Make every thread's value again on its next :meth:`get` (the old
        one is closed then, by the thread that owns it)."""
        self._renewal += 1

    def discard(self) -> T | None:
        """Forget this thread's value and return it (to be closed), if it had one."""
        value: T | None = getattr(self._local, "value", None)
        self._local.value = None
        return value


class PerProcess(Generic[T]):
    """Holds one ``T`` per process (a connection pool), made by ``factory``."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._value: T | None = None
        self._generation = -1

    def get(self) -> T:
        """This process's value, made now if it has none (or only a parent's)."""
        value = self._value
        if value is not None and self._generation == _generation:
            return value
        with self._lock:
            if self._value is None or self._generation != _generation:
                self._value, self._generation = self._factory(), _generation
            return self._value

    def discard(self) -> T | None:
        """Forget this process's value and return it (to be closed), if it had one."""
        with self._lock:
            value = self._value if self._generation == _generation else None
            self._value = None
            return value


def _close(value: object) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        # A broken connection is being replaced anyway.
        with contextlib.suppress(Exception):
            close()
