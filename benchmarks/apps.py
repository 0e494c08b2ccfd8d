"""The apps gunicorn serves in the end-to-end benchmark.

``timed_bare`` and ``timed_wrapped`` are the same apps with a clock on them:
each worker adds up the CPU time its threads spend inside the WSGI call
(``time.thread_time``: this thread's CPU time only, never another thread's
turn at the GIL) and, when it exits, writes the count and the total to a
file in ``BENCH_TIMED_DIR``. What the wrapped app spends beyond the bare one
is the middleware's own cost in a loaded worker, where gunicorn's work
between requests leaves the processor's caches cold.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks.common import hello
from restauth_wsgi import RestAuthMiddleware

#: The bare hello app.
bare = hello
#: The same app behind the middleware (settings from RESTAUTH_*).
wrapped = RestAuthMiddleware(hello)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Clock:
    """CPU time spent inside a WSGI call, added up over this worker's threads."""

    def __init__(self) -> None:
        self.calls = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        atexit.register(self.write)

    def around(self, app: WsgiApp) -> WsgiApp:
        cpu = time.thread_time

        def timed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            started = cpu()
            body = app(environ, start_response)
            spent = cpu() - started
            with self._lock:
                self.calls += 1
                self.seconds += spent
            return body

        return timed

    def write(self) -> None:
        where = os.environ.get("BENCH_TIMED_DIR")
        if where and self.calls:
            with open(os.path.join(where, f"worker-{os.getpid()}.json"), "w") as out:
                out.write(f'{{"calls": {self.calls}, "seconds": {self.seconds!r}}}\n')


_clock = _Clock()
#: The bare app, its CPU time per call added up per worker.
timed_bare = _clock.around(hello)
#: The wrapped app, its CPU time per call added up per worker.
timed_wrapped = _clock.around(wrapped)
