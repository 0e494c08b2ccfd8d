"""What an API token's request costs, in instructions, on each of its paths.

    python -m benchmarks.count_api_token

Counts (:mod:`benchmarks.callgrind`) one API token sent again and again to a
middleware on an SQLite store, each case on its own: the bare app sent the
same header; the token read from the store on every request
(``RESTAUTH_TOKEN_FEED=false``); its first use in this process (the
in-process memory of answers emptied before each request); its first request
after a change to the store (the change feed's poll made to start a new
epoch before each request); and the token seen before. The feed's thread is
stopped while the cases run, its last poll held fresh, so that every request
counts the same steps.

It also runs on a release from before the change feed: copy this file and
``benchmarks/callgrind.py`` into a checkout of that release's ``benchmarks/``
and run it there; it then counts the one path that release has, the store
read on every request. docs/performance.md compares the two ("no slower than
today", as the feed was asked to be).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable

from benchmarks.callgrind import collect, count
from benchmarks.common import QUICK, environ, hello, table, work_dir, wsgi_call
from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.tokens.issuing import issue_token
from restauth_wsgi.tokens.store import open_store

#: Requests counted per case.
CALLS = 20 if QUICK else 400
WITH_FEED = (
    "bare app",
    "read from the store on every request (RESTAUTH_TOKEN_FEED=false)",
    "first use in this process",
    "first request after a change",
    "seen before",
)
#: A release from before the change feed has one path.
BEFORE_THE_FEED = ("bare app", "read from the store on every request (no change feed)")


def _has_feed() -> bool:
    return any(field.name == "token_feed" for field in dataclasses.fields(Settings))


def _child() -> None:
    """Under callgrind: each case warmed up, then counted."""
    url = f"sqlite://{work_dir('restauth-count-')}/tokens.db"
    settings = Settings(token_store=url)
    app = RestAuthMiddleware(hello, settings=settings)
    token, _ = issue_token(open_store(url, timeout=5), settings.token_policy(), owner="alice")
    header = environ(f"Bearer {token}")
    fed, bare = wsgi_call(app, header), wsgi_call(hello, header)
    cases: dict[str, Callable[[], None]] = {"bare app": bare}
    if _has_feed():
        unfed = RestAuthMiddleware(hello, dataclasses.replace(settings, token_feed=False))
        fed()
        time.sleep(0.3)  # the feed's first poll
        recent = app.authentication._recent
        api = app.authentication._api
        assert recent is not None
        assert api is not None
        assert api.feed is not None
        process = api.feed._process
        process.stop.set()  # no thread polling while the count runs, and its poll
        assert process.thread is not None
        process.thread.join()
        process.seen = (process.epoch, float("inf"))  # ... held fresh

        def first_use() -> None:
            recent.entries.clear()
            fed()

        def after_a_change() -> None:
            process.seen = (object(), float("inf"))  # a poll that saw a change
            fed()

        cases[WITH_FEED[1]] = wsgi_call(unfed, header)
        cases[WITH_FEED[2]] = first_use
        cases[WITH_FEED[3]] = after_a_change
        cases[WITH_FEED[4]] = fed
    else:
        cases[BEFORE_THE_FEED[1]] = fed
    for case in cases.values():
        for _ in range(50):
            case()  # code and caches warm
    # "seen before" comes last: the case before it leaves the answer
    # remembered under the epoch its last request made.
    collect({name: [case] * CALLS for name, case in cases.items()})
    app.close()


def main() -> None:
    names = WITH_FEED if _has_feed() else BEFORE_THE_FEED
    per = count("benchmarks.count_api_token", names, CALLS)
    bare = per["bare app"]
    rows = [["case", "instructions per request", "beyond the bare app"]]
    rows += [[name, f"{n:,.0f}", f"{n - bare:,.0f}"] for name, n in per.items()]
    print(table(rows))
    if len(per) > len(BEFORE_THE_FEED):
        unfed = per[WITH_FEED[1]] - bare
        for name in WITH_FEED[2:4]:
            ratio = (per[name] - bare) / unfed
            print(f"{name}: {ratio:.3f}x the store read's, beyond the bare app")
    command = "python -m benchmarks.count_api_token"
    print(f"\n{CALLS} requests per case, counted by callgrind ({command})")


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        _child()
    else:
        main()
