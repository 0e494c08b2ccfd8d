"""One upstream call per key at a time: concurrent requests for the same new
token wait for the first one's answer instead of each asking the provider."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Runs ``fn`` once per key among concurrent callers; the others share its outcome."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[T]] = {}

    def run(self, key: str, fn: Callable[[], T], *, wait: float, timed_out: Callable[[], T]) -> T:
        """``fn()``'s result, computed by only one of the concurrent callers.

        :param wait: how long a follower waits for the leader.
        :param timed_out: called by a follower whose wait ran out.
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if not flight.done.wait(wait):
                return timed_out()
            if flight.error is not None:
                raise flight.error
            return flight.result  # type: ignore[return-value]
        try:
            flight.result = fn()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()
