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
parsed as from the environment. ``RESTAUTH_*`` environment variables (and
``RESTAUTH_SETTINGS_FILE``'s) apply underneath, so secrets can stay out of
the INI file. ``restauth --paste-ini FILE`` reads the same section, so the
command and the pipeline share one configuration.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from restauth_wsgi.config.declaration import declared
from restauth_wsgi.config.kinds import LIST, require_extra
from restauth_wsgi.errors import ConfigurationError
from restauth_wsgi.middleware import RestAuthMiddleware
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.settings import PREFIX, Settings, settings_environ, unknown_variables

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


def ini_values(
    local_conf: Mapping[str, str], environ: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The settings' values as variables (a section's keys over the environment's),
    and the INI key each variable came from."""
    values = settings_environ(environ)
    keys: dict[str, str] = {}
    for key, value in local_conf.items():
        variable = key.upper() if key.upper().startswith(PREFIX) else PREFIX + key.upper()
        variable = variable.replace("-", "_").replace(".", "_")
        keys[variable] = key
        values[variable] = value
    return values, keys


def settings_from_ini(local_conf: Mapping[str, str], environ: Mapping[str, str]) -> Settings:
    """Settings from a ``[filter:...]`` section over ``RESTAUTH_*`` environment variables.

    :raises ConfigurationError: naming the INI key and its variable.
    """
    values, keys = ini_values(local_conf, environ)
    listed = LIST.parse(values.get(PREFIX + "PROVIDERS", ""))
    strays = {
        variable: name
        for variable in unknown_variables(values)
        if variable in keys and (name := _provider_of(variable)) and name not in listed
    }
    try:
        settings = Settings.from_mapping(values)
    except ConfigurationError as exc:
        raise _in_ini_terms(exc, values, keys, strays) from None
    for variable in unknown_variables(values):
        if variable in keys:
            problem = "is not a restauth-wsgi setting"
            if variable in strays:
                problem += (
                    f": it would configure a provider {strays[variable]!r},"
                    f" which is not in providers ({', '.join(listed) or 'none'})"
                )
            raise ConfigurationError(f"{keys[variable]} ({variable})", problem)
    return settings


def _in_ini_terms(
    error: ConfigurationError,
    values: Mapping[str, str],
    keys: Mapping[str, str],
    strays: dict[str, str],
) -> ConfigurationError:
    """The error named by the INI key it is about. A listed provider that
    nothing configures, failing while keys configure one that is not listed,
    is a misspelt provider name: say so, rather than blame those keys."""
    if error.variable in keys:
        return ConfigurationError(f"{keys[error.variable]} ({error.variable})", error.problem)
    listed = LIST.parse(values.get(PREFIX + "PROVIDERS", ""))
    failing = next((n for n in listed if error.variable.startswith(f"{PREFIX}{n.upper()}_")), None)
    unconfigured = failing is not None and not any(
        v.startswith(f"{PREFIX}{failing.upper()}_") for v in values
    )
    if failing is not None and unconfigured and strays:
        variable, meant = next(iter(strays.items()))
        return ConfigurationError(
            f"{keys.get(PREFIX + 'PROVIDERS', 'providers')} ({PREFIX}PROVIDERS)",
            f"is {failing!r} misspelt? {keys[variable]} configures a provider {meant!r},"
            f" which is not listed; and {failing!r} itself fails:"
            f" {error.variable}: {error.problem}",
        )
    return error


def _provider_of(variable: str) -> str | None:
    """The provider name a ``RESTAUTH_<NAME>_<ATTRIBUTE>`` variable would configure."""
    attributes = [name for name, _ in declared(ProviderSettings)]
    for attribute in sorted(attributes, key=len, reverse=True):
        suffix = "_" + attribute.upper()
        if variable.endswith(suffix) and len(variable) > len(PREFIX) + len(suffix):
            return variable[len(PREFIX) : -len(suffix)].lower()
    return None


#: The ``use`` values that name this filter in an INI file.
_USES = (
    "egg:restauth-wsgi",
    "egg:restauth-wsgi#main",
    "egg:restauth_wsgi",
    "egg:restauth_wsgi#main",
    "call:restauth_wsgi.paste:filter_factory",
)


def filter_section(path: str, name: str | None = None) -> dict[str, str]:
    """The keys of the ``[filter:...]`` section of ``path`` that uses restauth-wsgi,
    interpolated as Paste Deploy does (``%(here)s``, ``[DEFAULT]``).

    :param name: the filter's name (``[filter:NAME]``); by default the one
        section whose ``use`` is ``egg:restauth-wsgi``.
    :raises ConfigurationError: naming the file when it cannot be read or has
        no such section (or several, and no name was given).
    """
    where = f"--paste-ini {path}"
    try:
        require_extra("paste", "reading a Paste Deploy INI file")
    except ValueError as exc:
        raise ConfigurationError(where, str(exc)) from None
    from paste.deploy.loadwsgi import FILTER, loadcontext

    if name is None:
        parser = configparser.RawConfigParser(strict=False)
        try:
            with open(path, encoding="utf-8") as file:
                parser.read_file(file)
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            raise ConfigurationError(where, f"cannot be read: {exc}") from None
        found = [
            section.removeprefix("filter:")
            for section in parser.sections()
            if section.startswith("filter:")
            and parser.get(section, "use", fallback="").strip() in _USES
        ]
        if len(found) != 1:
            raise ConfigurationError(
                where,
                "has no [filter:...] section with 'use = egg:restauth-wsgi'"
                if not found
                else f"has several restauth-wsgi filters ({', '.join(found)});"
                f" name one: --paste-ini {path}#{found[0]}",
            )
        name = found[0]
    try:
        context = loadcontext(FILTER, f"config:{os.path.abspath(path)}", name=name)
    except (OSError, LookupError, ValueError, configparser.Error) as exc:
        raise ConfigurationError(where, f"no filter {name!r} can be read: {exc}") from None
    return {str(k): str(v) for k, v in context.local_conf.items()}
