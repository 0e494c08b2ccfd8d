"""The watchdog that cuts calls past their deadline: it runs what is armed,
never what was disarmed, and works in a forked child (gunicorn's workers)."""

from __future__ import annotations

import multiprocessing
import threading
import time

from restauth_wsgi.watchdog import Watchdog

from .helpers import eventually


def test_it_runs_what_is_armed_and_never_what_was_disarmed() -> None:
    watchdog = Watchdog()
    ran: list[str] = []
    soon = time.monotonic() + 0.05
    watchdog.arm(soon + 0.1, lambda: ran.append("later"))
    disarm = watchdog.arm(soon, lambda: ran.append("disarmed"))
    watchdog.arm(soon, lambda: ran.append("armed"))
    disarm()
    eventually(lambda: ran == ["armed", "later"], f"both armed ran, in order: {ran}")
    assert "disarmed" not in ran


def test_an_action_that_fails_does_not_stop_the_others() -> None:
    watchdog = Watchdog()
    ran = threading.Event()

    def fails() -> None:
        raise RuntimeError("boom")

    watchdog.arm(time.monotonic(), fails)
    watchdog.arm(time.monotonic() + 0.05, ran.set)
    assert ran.wait(10)


def _in_child(watchdog: Watchdog, done: multiprocessing.queues.Queue[str]) -> None:
    ran = threading.Event()
    watchdog.arm(time.monotonic(), ran.set)
    done.put("ran" if ran.wait(10) else "hung")


def test_a_forked_child_has_a_watchdog_of_its_own() -> None:
    watchdog = Watchdog()
    started = threading.Event()
    watchdog.arm(time.monotonic(), started.set)  # the parent's thread runs
    assert started.wait(10)
    context = multiprocessing.get_context("fork")
    done: multiprocessing.queues.Queue[str] = context.Queue()
    child = context.Process(target=_in_child, args=(watchdog, done))
    child.start()
    child.join(20)
    assert done.get(timeout=5) == "ran"
