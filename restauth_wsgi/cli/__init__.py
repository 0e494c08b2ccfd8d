"""The ``restauth`` command line: tokens, checks, configuration, demo.

Exit codes scripts can rely on (docs/cli.md):

* 0 -- success;
* 1 -- the command ran and failed: a token was refused, a limit was
  reached, no such token, the store could not be reached;
* 2 -- the command line or the ``RESTAUTH_*`` settings are invalid;
* 3 -- ``restauth check`` could not decide: what must vouch for the token
  is unavailable (the middleware would answer 503).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from restauth_wsgi import __version__
from restauth_wsgi.cli import check, config, demo, lockout, output, store, tokens, userinfo
from restauth_wsgi.cli.output import CommandError
from restauth_wsgi.errors import ConfigurationError, RestAuthError


def build_parser() -> argparse.ArgumentParser:
    """The ``restauth`` argument parser with every command."""
    parser = argparse.ArgumentParser(
        prog="restauth",
        description="Manage and test REST API authentication for restauth-wsgi. "
        "Settings come from RESTAUTH_* environment variables, as for the middleware.",
    )
    parser.add_argument("--version", action="version", version=f"restauth-wsgi {__version__}")
    parser.add_argument(
        "--paste-ini",
        metavar="FILE[#NAME]",
        help="read the settings from the [filter:NAME] section of a Paste Deploy INI file"
        " (the one that uses egg:restauth-wsgi by default), over the RESTAUTH_* variables,"
        " as the pipeline does (Pyramid's pserve)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    tokens.register(commands)
    store.register(commands)
    check.register(commands)
    userinfo.register(commands)
    lockout.register(commands)
    config.register(commands)
    demo.register(commands)
    return parser


# What an option of ours looks like (and a negative number, which argparse
# takes as a value anyway). Anything else that begins with "-" is a value:
# base64url tokens begin with "-" one time in 64, and argparse would take
# them for options ("--bearer: expected one argument").
_OPTION = re.compile(r"--[a-z][a-z-]*(=.*)?|-[A-Za-z]|-[0-9]+(\.[0-9]+)?", re.DOTALL)
# The options whose value is a token.
_TAKE_A_TOKEN = frozenset({"--bearer", "--basic"})
# Shorter than any provider's token: a positional this short is left where it is.
_SHORTEST_TOKEN = 16


def _tokens_as_values(argv: Sequence[str]) -> list[str]:
    """``argv`` with each token that begins with ``-`` made a value: glued
    to ``--bearer``/``--basic`` (``--bearer=-x``), or moved after ``--``
    when it is a command's positional token."""
    args = list(argv)
    end = args.index("--") if "--" in args else len(args)
    kept: list[str] = []
    values: list[str] = []
    for arg in args[:end]:
        if len(arg) < 2 or not arg.startswith("-") or _OPTION.fullmatch(arg):
            kept.append(arg)
        elif kept and kept[-1] in _TAKE_A_TOKEN:
            kept[-1] = f"{kept[-1]}={arg}"
        elif len(arg) >= _SHORTEST_TOKEN:
            values.append(arg)
        else:
            # Short: no token, perhaps an option's value ("--provider -gh"),
            # which must not be moved (the option would take the next word).
            kept.append(arg)
    if not values:
        return [*kept, *args[end:]]
    return [*kept, "--", *values, *args[end + 1 :]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``restauth`` with ``argv`` (default: the process's arguments); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(_tokens_as_values(sys.argv[1:] if argv is None else argv))
    try:
        with output.paste_ini(args.paste_ini):
            code: int = args.run(args)
        sys.stdout.flush()  # here, where a closed pipe can still be handled
    except BrokenPipeError:
        # The reader went away (`restauth config | head -1`): no traceback,
        # and nothing more to write (Python's documented way, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except ConfigurationError as exc:
        print(f"restauth: invalid settings: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"restauth: {exc}", file=sys.stderr)
        return exc.exit_code
    except RestAuthError as exc:
        print(f"restauth: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
