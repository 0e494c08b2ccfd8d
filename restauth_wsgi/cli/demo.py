"""``restauth demo``: the Flask example, protected, on the embedded defaults.

It serves the Flask example (``restauth_wsgi.example``, shipped in the
package) behind the middleware on a local port, with a fresh SQLite token
store in a temporary directory (removed on exit, so the demo never touches a
real store), creates a token for the sample user ``alice``, and prints the
``curl`` commands that show 200 with the token and 401 without. Other
``RESTAUTH_*`` settings apply as usual.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import shlex
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

from werkzeug.serving import make_server

from restauth_wsgi.cli.output import CommandError, load_settings
from restauth_wsgi.settings import Settings
from restauth_wsgi.tokens.issuing import issue_token

DEMO_USER = "alice"


def register(commands: Any) -> None:
    """Add the ``demo`` command to the ``restauth`` parser."""
    demo = commands.add_parser(
        "demo",
        help="serve the Flask example protected by restauth-wsgi, with a demo token",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on")
    demo.add_argument(
        "--port", type=int, default=8000, help="port to listen on; 0 picks a free one"
    )
    demo.add_argument(
        "--app-dir",
        type=Path,
        help="serve the create_app() of DIR/app.py instead of the bundled example",
    )
    demo.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    create_app = _load_example(args.app_dir)
    listener = _listen(args.host, args.port)
    workdir = tempfile.mkdtemp(prefix="restauth-demo-")
    # The default SIGTERM handler would skip the clean-up below.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        settings = dataclasses.replace(
            load_settings(),
            token_store=f"sqlite://{workdir}/tokens.db",
            public_paths=(*Settings.from_env().public_paths, "/health"),
        )
        store = settings.open_token_store()
        token, _ = issue_token(store, settings.token_policy(), owner=DEMO_USER, name="demo")
        server = make_server(
            args.host, args.port, create_app(settings), threaded=True, fd=listener.fileno()
        )
        listener.close()  # the server holds its own copy of the socket
        host = f"[{args.host}]" if ":" in args.host else args.host
        _print_instructions(f"http://{host}:{server.port}", settings, token)
        # werkzeug's serve_forever returns on Ctrl+C (it swallows KeyboardInterrupt).
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\nrestauth demo: stopped; its token store was removed.", flush=True)
    return 0


def _load_example(app_dir: Path | None) -> Any:
    try:
        import flask  # noqa: F401
    except ImportError:
        raise CommandError(
            "the demo serves a Flask app: pip install 'restauth-wsgi[demo]'"
        ) from None
    if app_dir is None:
        from restauth_wsgi.example.app import create_app

        return create_app
    source = app_dir / "app.py"
    if not source.is_file():
        raise CommandError(f"no Flask app at {source}", exit_code=2)
    spec = importlib.util.spec_from_file_location("restauth_demo_app", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_app


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound here so that a busy port gets the demo's advice."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        advice = " (is a demo already running?); try --port 0 for a free port"
        raise CommandError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}" + (advice if port else ""),
            exit_code=1,
        ) from None


def restauth_command() -> str:
    """How another shell runs this ``restauth``: by name if PATH finds this very
    one, else by its full path (a virtualenv that is not activated)."""
    script = Path(sys.executable).with_name("restauth")
    if not script.is_file():
        return f"{shlex.quote(sys.executable)} -m restauth_wsgi"
    found = shutil.which("restauth")
    if found is not None and Path(found).resolve() == script.resolve():
        return "restauth"
    return shlex.quote(str(script))


def _print_instructions(base: str, settings: Settings, token: str) -> None:
    url = f"{base}/rest/api/2/myself"
    print(
        f"""restauth demo: the Flask example at {base}/, protected by restauth-wsgi

Token store: {settings.token_store} (removed when the demo stops)
A token was created for the sample user {DEMO_USER!r}:

  curl -i -H "Authorization: Bearer {token}" {url}
  curl -i -u {DEMO_USER}:{token} {url}
  curl -i {url}
  curl -i -H "Authorization: Bearer restauth_wrong" {url}

The first two answer 200 for {DEMO_USER}; the others 401 with a WWW-Authenticate challenge.
Every endpoint, with {DEMO_USER}'s token:

  curl -u {DEMO_USER}:{token} {base}/

Try bob or carol too, from another shell:

  export RESTAUTH_TOKEN_STORE={settings.token_store}
  {restauth_command()} token create --user bob

Press Ctrl+C to stop.""",
        flush=True,
    )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
