"""What the commands share: errors, settings loading and formatting."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from restauth_wsgi.settings import Settings, settings_environ, unknown_variables

#: ``FILE[#NAME]`` of ``restauth --paste-ini``, for the command being run.
_PASTE_INI: ContextVar[str | None] = ContextVar("paste_ini", default=None)


class CommandError(Exception):
    """A failure the user can act on; the message says how."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@contextmanager
def paste_ini(value: str | None) -> Iterator[None]:
    """Let the commands run inside read their settings as the Paste Deploy
    filter of ``FILE[#NAME]`` does (``None``: from the environment only)."""
    token = _PASTE_INI.set(value)
    try:
        yield
    finally:
        _PASTE_INI.reset(token)


def _filter_section() -> dict[str, str] | None:
    value = _PASTE_INI.get()
    if value is None:
        return None
    from restauth_wsgi.paste import filter_section

    path, _, name = value.partition("#")
    return filter_section(path, name or None)


def settings_values() -> dict[str, str]:
    """The ``RESTAUTH_*`` values the commands use, by variable: the environment
    and ``RESTAUTH_SETTINGS_FILE``, under ``--paste-ini``'s section when given."""
    section = _filter_section()
    if section is None:
        return settings_environ(os.environ)
    from restauth_wsgi.paste import ini_values

    values, _ = ini_values(section, os.environ)
    return values


def load_settings() -> Settings:
    """The settings as the middleware would have them here: from the environment
    (and ``RESTAUTH_SETTINGS_FILE``), warning about unknown variables on
    stderr; or, with ``--paste-ini``, exactly as the Paste Deploy filter
    builds them (unknown keys are errors there)."""
    section = _filter_section()
    if section is not None:
        from restauth_wsgi.paste import settings_from_ini

        return settings_from_ini(section, os.environ)
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
