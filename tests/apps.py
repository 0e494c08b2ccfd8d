"""WSGI apps for servers the tests start (gunicorn imports them by name)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from restauth_wsgi import RestAuthMiddleware


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Hello world, naming the user the middleware authenticated."""
    user = environ.get("REMOTE_USER", "nobody")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello {user} via {environ.get('AUTH_TYPE')}".encode()]


#: hello world behind the middleware, settings from RESTAUTH_* of the server's environment.
application = RestAuthMiddleware(hello)


def create_hello() -> Callable[..., Iterable[bytes]]:
    """An application factory, for ``wrap("tests.apps:create_hello()")``."""
    return hello


def create_protected_flask() -> Any:
    """A Flask app that wraps its own ``wsgi_app``, as Flask's docs show."""
    from flask import Flask

    app = Flask(__name__)
    app.wsgi_app = RestAuthMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app
