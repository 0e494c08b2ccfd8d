"""``restauth config``: show the effective settings and what is wrong with them."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from restauth_wsgi.errors import ConfigurationError, TokenStoreUnavailable
from restauth_wsgi.settings import PREFIX, Settings, field_problems, unknown_variables
from restauth_wsgi.tokens.store import open_store


def register(commands: Any) -> None:
    """Add the ``config`` command to the ``restauth`` parser."""
    config = commands.add_parser(
        "config",
        help="show the effective settings (secrets masked) and check them",
        description="Print every setting as the middleware would see it in this"
        " environment, secrets masked, then check it: invalid values, unknown"
        " RESTAUTH_* variables, and whether the token store can be opened."
        " Exit 0: all good; 1: something cannot be reached; 2: invalid settings.",
    )
    config.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    environ = {k: v for k, v in os.environ.items() if k.startswith(PREFIX)}
    try:
        settings = Settings.from_mapping(environ)
    except ConfigurationError as first:
        print("Invalid settings:")
        for problem in field_problems(environ) or [first]:
            print(f"  {problem}")
        for variable in unknown_variables(environ):
            print(f"  {variable} is not a setting; is it misspelt?")
        return 2
    print("Settings (* = set in the environment; secrets masked):")
    for variable, value in settings.masked().items():
        mark = "*" if variable in environ else " "
        print(f"  {mark} {variable:<32} {value}")
    warnings = [f"{v} is not a setting; is it misspelt?" for v in unknown_variables(environ)]
    if not settings.enabled:
        warnings.append("RESTAUTH_ENABLED is false: every request passes unauthenticated")
    if not settings.api_tokens:
        warnings.append(
            "RESTAUTH_API_TOKENS is false and no provider is configured:"
            " every request outside the public paths is refused"
        )
    failures = []
    if settings.api_tokens:
        store = open_store(settings.token_store, timeout=settings.token_store_timeout)
        try:
            records = store.list()
        except TokenStoreUnavailable as exc:
            failures.append(f"token store: {exc.reason}")
        else:
            now = time.time()
            active = sum(1 for r in records if r.status(now) == "active")
            print(f"Token store: {store.url}: {len(records)} token(s), {active} active")
    for warning in warnings:
        print(f"Warning: {warning}")
    for failure in failures:
        print(f"Problem: {failure}")
    if not warnings and not failures:
        print("No problems found.")
    return 1 if failures else 0
