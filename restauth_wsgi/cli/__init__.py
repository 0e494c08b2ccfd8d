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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``restauth`` with ``argv`` (default: the process's arguments); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
