"""Settings: from ``RESTAUTH_*`` environment variables, a mapping, or code.

Every setting has one environment variable, the name users see in errors
and docs. :meth:`Settings.from_env` and :meth:`Settings.from_mapping` parse
strings; ``Settings(...)`` in code takes typed values. Both end in the same
validation, which raises :class:`ConfigurationError` naming the variable.
Nothing here does I/O: a store or provider that is down is not a
configuration error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .durations import format_duration, parse_duration
from .errors import ConfigurationError
from .tokens.issuing import TokenPolicy
from .tokens.store import check_store_url

PREFIX = "RESTAUTH_"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# RFC 7235 section 2.2: the realm is sent as a quoted-string; keeping it to
# printable ASCII without quotes or backslashes means it never needs escaping.
_REALM = re.compile(r"[\x20-\x7e]{1,100}")


def default_token_store() -> str:
    """The store used when ``RESTAUTH_TOKEN_STORE`` is not set.

    ``$XDG_DATA_HOME/restauth/tokens.db``, that is
    ``~/.local/share/restauth/tokens.db`` by default, for the user the
    process runs as: the CLI and the middleware agree on it when they run as
    the same user. Servers running as another user (``www-data`` under
    Apache) should set ``RESTAUTH_TOKEN_STORE`` explicitly.
    """
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return "sqlite://" + os.path.join(os.path.abspath(data_home), "restauth", "tokens.db")


def env_name(attribute: str) -> str:
    """The environment variable of a :class:`Settings` attribute."""
    return PREFIX + attribute.upper()


@dataclass(frozen=True)
class Settings:
    """Every setting of the middleware and the CLI. See docs/settings.md."""

    #: RESTAUTH_ENABLED: ``False`` passes every request through untouched.
    enabled: bool = True
    #: RESTAUTH_API_TOKENS: accept the service's own API tokens.
    api_tokens: bool = True
    #: RESTAUTH_TOKEN_STORE: ``sqlite:///path``.
    token_store: str = field(default_factory=default_token_store)
    #: RESTAUTH_TOKEN_STORE_TIMEOUT: seconds a store call may wait (SQLite busy timeout).
    token_store_timeout: float = 5.0
    #: RESTAUTH_TOKEN_MAX_PER_USER: active tokens one user may hold (0: no limit).
    token_max_per_user: int = 10
    #: RESTAUTH_TOKEN_MAX_LIFETIME: the longest lifetime a new token may have, seconds.
    token_max_lifetime: int = 365 * 86400
    #: RESTAUTH_TOKEN_DEFAULT_LIFETIME: lifetime of a token created without one, seconds.
    token_default_lifetime: int = 90 * 86400
    #: RESTAUTH_TOKEN_ALLOW_NO_EXPIRY: whether tokens that never expire may be created.
    token_allow_no_expiry: bool = False
    #: RESTAUTH_PUBLIC_PATHS: path globs that need no authentication.
    public_paths: tuple[str, ...] = ()
    #: RESTAUTH_ALLOW_PREFLIGHT: let CORS preflight requests through unauthenticated.
    allow_preflight: bool = True
    #: RESTAUTH_TRUST_REMOTE_USER: keep a REMOTE_USER set by the server in front.
    trust_remote_user: bool = False
    #: RESTAUTH_REALM: the realm of the WWW-Authenticate challenges.
    realm: str = "api"

    def __post_init__(self) -> None:
        for spec in fields(self):
            check = _CHECKS[spec.name]
            value = getattr(self, spec.name)
            try:
                checked = check(value)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(env_name(spec.name), str(exc)) from None
            object.__setattr__(self, spec.name, checked)
        if self.token_default_lifetime > self.token_max_lifetime:
            raise ConfigurationError(
                "RESTAUTH_TOKEN_DEFAULT_LIFETIME",
                "must not be longer than RESTAUTH_TOKEN_MAX_LIFETIME",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``RESTAUTH_*`` variable of ``environ`` (default ``os.environ``)."""
        environ = os.environ if environ is None else environ
        return cls.from_mapping({k: v for k, v in environ.items() if k.startswith(PREFIX)})

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Settings:
        """Build settings from strings keyed by environment variable name.

        Keys that are not settings are ignored (see :func:`unknown_variables`).
        :raises ConfigurationError: naming the first variable that is wrong.
        """
        kwargs: dict[str, Any] = {}
        for name, parse in _PARSERS.items():
            variable = env_name(name)
            if variable in values:
                try:
                    kwargs[name] = parse(values[variable])
                except ValueError as exc:
                    raise ConfigurationError(variable, str(exc)) from None
        return cls(**kwargs)

    def token_policy(self) -> TokenPolicy:
        """The limits for issuing API tokens."""
        return TokenPolicy(
            max_per_user=self.token_max_per_user,
            max_lifetime=self.token_max_lifetime,
            default_lifetime=self.token_default_lifetime,
            allow_no_expiry=self.token_allow_no_expiry,
        )

    def masked(self) -> dict[str, str]:
        """Every setting as its variable and a printable value, secrets masked."""
        shown: dict[str, str] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif _PARSERS[spec.name] is parse_duration:
                text = format_duration(value)
            elif isinstance(value, tuple):
                text = ",".join(value)
            else:
                text = str(value)
            shown[env_name(spec.name)] = mask_url(text)
        return shown


def field_problems(values: Mapping[str, str]) -> list[ConfigurationError]:
    """Every variable of ``values`` that is invalid on its own (not only the first)."""
    problems = []
    for name, parse in _PARSERS.items():
        variable = env_name(name)
        if variable in values:
            try:
                _CHECKS[name](parse(values[variable]))
            except (TypeError, ValueError) as exc:
                problems.append(ConfigurationError(variable, str(exc)))
    return problems


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``RESTAUTH_*`` variables in ``environ`` that no setting reads (typos, usually)."""
    known = {env_name(name) for name in _PARSERS}
    return sorted(k for k in environ if k.startswith(PREFIX) and k not in known)


def mask_url(text: str) -> str:
    """Hide the password of a URL such as ``postgresql://user:secret@host/db``."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1****@", text)


# -- parsing strings ------------------------------------------------------------


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    folded = text.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean; use true or false")


def parse_list(text: str) -> tuple[str, ...]:
    """A comma-separated list; blanks around items and empty items are dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_int(text: str) -> int:
    """A whole number."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def parse_float(text: str) -> float:
    """A number of seconds, such as ``2.5``."""
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _identity(text: str) -> str:
    return text.strip()


# -- checking typed values --------------------------------------------------------


def check_bool(value: object) -> bool:
    """A real ``bool`` (``1`` or ``"yes"`` in code is more likely a mistake)."""
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _check_int(minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected a whole number, got {value!r}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return check


def _check_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number of seconds, got {value!r}")
    if not 0 < value <= 300:
        raise ValueError(f"must be more than 0 and at most 300 seconds, got {value}")
    return float(value)


def _check_duration(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a number of seconds, got {value!r}")
    if value <= 0:
        raise ValueError(f"must be positive, got {value}")
    return value


def _check_str_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, tuple | list | frozenset | set):
        raise TypeError(f"expected a list of strings, got {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"expected a list of strings, got the item {item!r}")
    return items


def _check_paths(value: object) -> tuple[str, ...]:
    paths = _check_str_tuple(value)
    for path in paths:
        if not path.startswith("/"):
            raise ValueError(f"{path!r} is not a path glob; each must start with '/'")
    return paths


def _check_token_store(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a store URL, got {value!r}")
    check_store_url(value)
    return value


def _check_realm(value: object) -> str:
    if not isinstance(value, str) or not _REALM.fullmatch(value) or set(value) & {'"', "\\"}:
        raise ValueError(
            f"{value!r} is not a realm; use 1-100 printable ASCII characters without quotes"
        )
    return value


_PARSERS: dict[str, Callable[[str], Any]] = {
    "enabled": parse_bool,
    "api_tokens": parse_bool,
    "token_store": _identity,
    "token_store_timeout": parse_float,
    "token_max_per_user": parse_int,
    "token_max_lifetime": parse_duration,
    "token_default_lifetime": parse_duration,
    "token_allow_no_expiry": parse_bool,
    "public_paths": parse_list,
    "allow_preflight": parse_bool,
    "trust_remote_user": parse_bool,
    "realm": _identity,
}

_CHECKS: dict[str, Callable[[Any], Any]] = {
    "enabled": check_bool,
    "api_tokens": check_bool,
    "token_store": _check_token_store,
    "token_store_timeout": _check_seconds,
    "token_max_per_user": _check_int(0),
    "token_max_lifetime": _check_duration,
    "token_default_lifetime": _check_duration,
    "token_allow_no_expiry": check_bool,
    "public_paths": _check_paths,
    "allow_preflight": check_bool,
    "trust_remote_user": check_bool,
    "realm": _check_realm,
}
