"""What the commands share: errors, settings loading and formatting."""

from __future__ import annotations

import os
import sys
import time

from restauth_wsgi.settings import Settings, settings_environ, unknown_variables


class CommandError(Exception):
    """A failure the user can act on; the message says how."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_settings() -> Settings:
    """The settings from the environment (and ``RESTAUTH_SETTINGS_FILE``),
    warning about unknown variables on stderr."""
    applied = settings_environ(os.environ)
    for variable in unknown_variables(applied):
        print(f"restauth: warning: {variable} is not a setting; is it misspelt?", file=sys.stderr)
    return Settings.from_mapping(applied)


def format_time(timestamp: float | None, *, never: str = "never") -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM UTC``."""
    if timestamp is None:
        return never
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def printable(text: str) -> str:
    """``text`` safe for a terminal: control and other unprintable characters
    escaped (``\\n``, ``\\x1b``), so a value a client chose (a Basic username)
    cannot forge or hide rows or move the cursor."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def read_secret(value: str) -> str:
    """The secret itself, or read from standard input when ``value`` is ``-``.

    Reading from stdin keeps tokens out of shell history and process lists.
    """
    if value != "-":
        return value
    secret = sys.stdin.readline().strip()
    if not secret:
        raise CommandError("nothing was read from standard input", exit_code=2)
    return secret
