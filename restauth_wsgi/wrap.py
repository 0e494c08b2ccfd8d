"""Wrap any WSGI application without writing code, e.g. from gunicorn's command line::

    gunicorn -c gunicorn.conf.py 'restauth_wsgi.wrap:wrap("myproject.wsgi:application")'
    gunicorn -c gunicorn.conf.py 'restauth_wsgi.wrap:wrap("app:create_app()")'

(``gunicorn.conf.py``: the one in ``examples/gunicorn``, or ``--no-control-socket``.)

Settings come from the ``RESTAUTH_*`` environment variables.
"""

from __future__ import annotations

import importlib
from typing import Any

from restauth_wsgi.middleware import RestAuthMiddleware
from restauth_wsgi.settings import Settings


def wrap(target: str, settings: Settings | None = None) -> RestAuthMiddleware:
    """The application named ``module:attribute`` behind the middleware.

    An attribute ending in ``()`` is called (an application factory).
    :raises ValueError: if ``target`` is not ``module:attribute`` or names nothing.
    """
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"{target!r} is not module:attribute, e.g. myapp.wsgi:application")
    call = attribute.endswith("()")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.removesuffix("()").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"{module_name} has no {attribute.removesuffix('()')}") from None
    app = obj() if call else obj
    if not callable(app):
        raise ValueError(f"{target} is not a WSGI application (not callable)")
    if _already_wrapped(app):
        # Twice would authenticate every request twice, the outer copy's
        # settings deciding nothing the inner one does not overrule.
        raise ValueError(
            f"{target} is already behind RestAuthMiddleware; serve it as it is"
            f" (gunicorn -c gunicorn.conf.py '{target}') instead of wrapping it again"
        )
    return RestAuthMiddleware(app, settings=settings)


def _already_wrapped(app: object, depth: int = 5) -> bool:
    """Whether ``app`` is, or (through the attributes WSGI wrappers keep their
    app in, such as Flask's ``wsgi_app``) holds, a :class:`RestAuthMiddleware`."""
    if isinstance(app, RestAuthMiddleware):
        return True
    if depth == 0:
        return False
    return any(
        _already_wrapped(inner, depth - 1)
        for inner in (getattr(app, name, None) for name in ("wsgi_app", "app", "application"))
        if inner is not None and inner is not app
    )
