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


def test_a_disarm_too_late_says_so_once_the_action_has_run() -> None:
    # A caller that disarms as its call ends must know whether its socket
    # was shut (the connection must not go back to a pool) and must not
    # close what the action is still using.
    watchdog = Watchdog()
    started, finished = threading.Event(), threading.Event()

    def slow_action() -> None:
        started.set()
        time.sleep(0.3)
        finished.set()

    disarm = watchdog.arm(time.monotonic(), slow_action)
    assert started.wait(10)
    assert disarm() is True
    assert finished.is_set(), "the disarm waited for the action to end"
    early = watchdog.arm(time.monotonic() + 60, lambda: None)
    assert early() is False
    assert early() is False, "disarming twice is harmless, and nothing ran"


def test_disarmed_calls_are_not_held_until_their_deadline() -> None:
    # 300 s timeouts at 1,000 calls a second held 300,000 finished calls.
    watchdog = Watchdog()
    for _ in range(10_000):
        watchdog.arm(time.monotonic() + 300, lambda: None)()
    held = len(watchdog._heap.entries)  # the heap itself: what memory it holds
    assert held <= 200, f"{held} disarmed entries still held"
    ran = threading.Event()
    watchdog.arm(time.monotonic(), ran.set)
    assert ran.wait(10), "what is armed still runs after the heap was rebuilt"


def _fork_and_arm(watchdog: Watchdog, done: multiprocessing.queues.Queue[str]) -> None:
    ran = threading.Event()
    disarm = watchdog.arm(time.monotonic() + 60, lambda: None)
    disarm()
    watchdog.arm(time.monotonic(), ran.set)
    done.put("ran" if ran.wait(10) else "hung")


def test_a_fork_while_another_thread_holds_the_lock_does_not_hang_the_child() -> None:
    watchdog = Watchdog()
    watchdog.arm(time.monotonic(), lambda: None)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:  # a thread of the parent mid-arm at the fork
        with watchdog._heap.ready:
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(10)
    try:
        context = multiprocessing.get_context("fork")
        done: multiprocessing.queues.Queue[str] = context.Queue()
        child = context.Process(target=_fork_and_arm, args=(watchdog, done))
        child.start()
        child.join(20)
        alive = child.is_alive()
        if alive:
            child.kill()
        assert not alive, "the child hung on a lock held at the fork"
        assert done.get(timeout=5) == "ran"
    finally:
        release.set()
