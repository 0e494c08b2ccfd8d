"""Paste Deploy: wrap an application from an INI pipeline (Pyramid and friends).

    [pipeline:main]
    pipeline = restauth myapp

    [filter:restauth]
    use = egg:restauth-wsgi
    public_paths = /health
    providers = okta
    okta_domain = dev-123456.okta.com

Each key is a setting's variable without ``RESTAUTH_``, in lower case
(``public_paths`` is ``RESTAUTH_PUBLIC_PATHS``, ``okta_domain`` is
``RESTAUTH_OKTA_DOMAIN``); the full variable name works too. Values are
parsed as from the environment. ``RESTAUTH_*`` environment variables apply
underneath, so secrets can stay out of the INI file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .errors import ConfigurationError
from .middleware import RestAuthMiddleware
from .settings import PREFIX, Settings, unknown_variables

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def filter_factory(
    global_conf: Mapping[str, str], **local_conf: str
) -> Callable[[WSGIApplication], RestAuthMiddleware]:
    """The ``paste.filter_factory`` entry point (``use = egg:restauth-wsgi``).

    :raises ConfigurationError: naming the INI key and its variable.
    """
    settings = settings_from_ini(local_conf, os.environ)

    def wrap(app: WSGIApplication) -> RestAuthMiddleware:
        return RestAuthMiddleware(app, settings=settings)

    return wrap


def settings_from_ini(local_conf: Mapping[str, str], environ: Mapping[str, str]) -> Settings:
    """Settings from a ``[filter:...]`` section over ``RESTAUTH_*`` environment variables."""
    values = {k: v for k, v in environ.items() if k.startswith(PREFIX)}
    keys: dict[str, str] = {}
    for key, value in local_conf.items():
        variable = key.upper() if key.upper().startswith(PREFIX) else PREFIX + key.upper()
        variable = variable.replace("-", "_").replace(".", "_")
        keys[variable] = key
        values[variable] = value
    for variable in unknown_variables(values):
        if variable in keys:
            raise ConfigurationError(
                f"{keys[variable]} ({variable})", "is not a restauth-wsgi setting"
            )
    try:
        return Settings.from_mapping(values)
    except ConfigurationError as exc:
        if exc.variable in keys:
            raise ConfigurationError(
                f"{keys[exc.variable]} ({exc.variable})", exc.problem
            ) from None
        raise
