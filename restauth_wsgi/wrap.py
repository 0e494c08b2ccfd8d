"""Wrap any WSGI application without writing code, e.g. from gunicorn's command line::

    gunicorn 'restauth_wsgi.wrap:wrap("myproject.wsgi:application")'
    gunicorn 'restauth_wsgi.wrap:wrap("app:create_app()")'

Settings come from the ``RESTAUTH_*`` environment variables.
"""

from __future__ import annotations

import importlib
from typing import Any

from .middleware import RestAuthMiddleware
from .settings import Settings


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
    return RestAuthMiddleware(app, settings=settings)
