"""The kinds of setting values: how each is parsed from a string, checked
as a typed value, and shown by ``restauth config``.

Parsing and checking raise ``ValueError`` or ``TypeError`` with a message
that says what is wrong; the settings classes prefix it with the variable.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from restauth_wsgi.config.durations import format_duration, parse_duration

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Kind:
    """How one setting is read from a string, checked, and shown."""

    parse: Callable[[str], Any]
    check: Callable[[Any], Any]
    show: Callable[[Any], str] = str


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    folded = text.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean; use true or false")


def check_bool(value: object) -> bool:
    """A real ``bool`` (``1`` or ``"yes"`` in code is more likely a mistake)."""
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _show_bool(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")


def parse_list(text: str) -> tuple[str, ...]:
    """A comma-separated list; blanks around items and empty items are dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def check_str_tuple(value: object) -> tuple[str, ...]:
    """A list of strings (a lone string is refused: it is usually a forgotten list)."""
    if isinstance(value, str) or not isinstance(value, tuple | list | frozenset | set):
        raise TypeError(f"expected a list of strings, got {value!r}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"expected a list of strings, got the item {item!r}")
    return items


def _strip(text: str) -> str:
    return text.strip()


def _strip_or_none(text: str) -> str | None:
    return text.strip() or None


def _check_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _check_optional_str(value: object) -> str | None:
    return None if value is None else _check_str(value)


def _show_optional(value: Any) -> str:
    return "" if value is None else str(value)


def _mask(value: Any) -> str:
    return "" if not value else "****"


def int_at_least(minimum: int) -> Kind:
    """A whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None

    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected a whole number, got {value!r}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {value}")
        return value

    return Kind(parse, check)


def seconds_between(low: float, high: float) -> Kind:
    """A number of seconds in ``(low, high]``, fractions allowed (timeouts)."""

    def parse(text: str) -> float:
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number of seconds") from None

    def check(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number of seconds, got {value!r}")
        if not low < value <= high:
            raise ValueError(f"must be more than {low:g} and at most {high:g} seconds, got {value}")
        return float(value)

    return Kind(parse, check)


def duration_at_least(minimum: int) -> Kind:
    """A duration (``30d``, ``15m``, ``90``) of at least ``minimum`` seconds."""

    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected a number of seconds, got {value!r}")
        if value < minimum:
            raise ValueError(f"must be at least {format_duration(minimum)}, got {value}")
        return value

    return Kind(parse_duration, check, lambda v: format_duration(v) if v else "0")


def parse_lifetime(text: str) -> int:
    """A duration whose unit is required: ``90d``, ``12h``, never a bare ``90``.

    Token lifetimes are days or months; a bare number would be seconds, which
    is never what ``RESTAUTH_TOKEN_DEFAULT_LIFETIME=90`` means.
    """
    if text.strip().isdigit():
        number = text.strip()
        raise ValueError(
            f"{text!r} has no unit; a lifetime needs one: write {number}d for days"
            f" (or {number}h, {number}w, {number}y; {number}s for seconds)"
        )
    return parse_duration(text)


def lifetime_at_least(minimum: int) -> Kind:
    """A lifetime (``30d``, ``1y``: the unit required) of at least ``minimum`` seconds."""
    duration = duration_at_least(minimum)
    return Kind(parse_lifetime, duration.check, duration.show)


def one_of(*choices: str, optional: bool = False) -> Kind:
    """One of ``choices`` (case-insensitive when parsed); ``None`` when ``optional``."""
    return one_of_lazily(lambda: choices, optional=optional)


def one_of_lazily(choices: Callable[[], Sequence[str]], *, optional: bool = False) -> Kind:
    """As :func:`one_of`, the choices asked for when a value is checked: for
    choices that live in a module that cannot be imported yet."""

    def parse(text: str) -> str | None:
        folded = text.strip().lower()
        return None if optional and not folded else folded

    def check(value: object) -> str | None:
        if optional and value is None:
            return None
        if value not in choices():
            raise ValueError(f"{value!r} is not one of {', '.join(choices())}")
        return str(value)

    return Kind(parse, check, _show_optional)


def _parse_pairs(text: str) -> dict[str, str]:
    pairs = {}
    for item in parse_list(text):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{item!r} is not key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def _check_pairs(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {value!r}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str) or not key or not item:
            raise TypeError(f"expected non-empty strings, got {key!r}: {item!r}")
    return dict(value)


def _check_regex(value: object) -> str | None:
    if value is None:
        return None
    pattern = _check_str(value)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
    return pattern


BOOL = Kind(parse_bool, check_bool, _show_bool)
OPTIONAL_BOOL = Kind(parse_bool, lambda v: None if v is None else check_bool(v), _show_bool)
STRING = Kind(_strip, _check_str)
OPTIONAL_STRING = Kind(_strip_or_none, _check_optional_str, _show_optional)
SECRET = Kind(_strip_or_none, _check_optional_str, _mask)
LIST = Kind(parse_list, check_str_tuple, ",".join)
OPTIONAL_LIST = Kind(
    parse_list, lambda v: None if v is None else check_str_tuple(v), lambda v: ",".join(v or ())
)
PAIRS = Kind(_parse_pairs, _check_pairs, lambda v: ",".join(f"{k}={i}" for k, i in v.items()))
REGEX = Kind(_strip_or_none, _check_regex, _show_optional)


#: The optional extras (setup.cfg) and the modules each brings.
EXTRAS: dict[str, tuple[str, ...]] = {
    "postgresql": ("psycopg", "psycopg_pool"),
    "redis": ("redis",),
    "memcached": ("pymemcache",),
    "metrics": ("prometheus_client",),
    "passwords": ("bcrypt", "argon2"),
    "paste": ("paste.deploy",),
    "demo": ("flask",),
}


def require_extra(extra: str, what: str) -> None:
    """Check that the modules of an optional extra are installed, without importing them.

    :raises ValueError: saying what needs them and the ``pip install`` line.
    """
    missing = [module for module in EXTRAS[extra] if not _installed(module)]
    if missing:
        raise ValueError(
            f"{what} needs {' and '.join(missing)}, which is not installed:"
            f" pip install 'restauth-wsgi[{extra}]'"
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or blocked in sys.modules
        return False
