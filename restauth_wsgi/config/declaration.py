"""How a setting is declared: once, as a field of a frozen dataclass.

:func:`setting` makes the field. Its name gives the variable
(``token_store`` is ``RESTAUTH_TOKEN_STORE``; a provider's ``issuer`` is
``RESTAUTH_<NAME>_ISSUER``), its annotation the type, its default the
default, and its metadata the rest: the :class:`~restauth_wsgi.config.kinds.Kind`
that parses, checks and shows the value, and the doc that is the setting's
row in docs/settings.md or docs/providers.md. Everything else is read from
there: :func:`parse_all` (strings to typed values), :func:`check_all` (every
value checked when the object is made), :func:`problems` (all that is
wrong, for ``restauth config``), and the docs' tables
(:mod:`restauth_wsgi.settings_doc`). The global settings and each
provider's go through the same loops; only how a name becomes a variable
differs, so each loop takes that as ``variable``.

Rejected: a table of kinds beside the dataclass, and a table of rows in the
docs, which is how the parsers, the docs and the fields drifted apart;
descriptors or a metaclass, which mypy cannot see through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar, overload

from restauth_wsgi.config.kinds import SECRET, Kind
from restauth_wsgi.errors import ConfigurationError

_T = TypeVar("_T")

_KEY = "restauth_wsgi.setting"


@dataclass(frozen=True)
class Declaration:
    """What is declared of a setting besides its name, type and default."""

    #: How the value is parsed from a string, checked and shown.
    kind: Kind
    #: What it means: its row in the docs (Markdown).
    doc: str
    #: How the docs state a default that is computed, or empty with a meaning
    #: of its own ("(any)"); otherwise the default is shown as ``restauth
    #: config`` shows it.
    default_doc: str | None = None


@overload
def setting(kind: Kind, default: _T, *, doc: str, default_doc: str | None = None) -> _T: ...


@overload
def setting(
    kind: Kind, *, factory: Callable[[], _T], doc: str, default_doc: str | None = None
) -> _T: ...


def setting(
    kind: Kind,
    default: Any = MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    doc: str,
    default_doc: str | None = None,
) -> Any:
    """A dataclass field that is a setting: the one place it is declared.

    :param factory: makes the default, where one value cannot be shared
        (a mapping) or depends on the environment (the token store's path).
    :param doc: the meaning, as the docs' table shows it.
    :param default_doc: the default as the docs state it, when it is
        computed or its emptiness has a meaning ("(derived)", "(any)").
    """
    metadata = {_KEY: Declaration(kind, doc, default_doc)}
    # A secret stays out of reprs, and so out of tracebacks and logs.
    shown = kind is not SECRET
    if factory is not None:
        return field(default_factory=factory, repr=shown, metadata=metadata)
    return field(default=default, repr=shown, metadata=metadata)


def declared(of: Any) -> list[tuple[str, Declaration]]:
    """The settings a dataclass (or its instance) declares, in field order: name and declaration."""
    return [(spec.name, spec.metadata[_KEY]) for spec in fields(of) if _KEY in spec.metadata]


def default_of(of: type, name: str) -> Any:
    """The declared default of the setting ``name`` (made afresh, for a factory)."""
    spec = next(spec for spec in fields(of) if spec.name == name)
    return spec.default_factory() if callable(spec.default_factory) else spec.default


@contextmanager
def named(variable: str) -> Iterator[None]:
    """Turn what a kind raises (``TypeError``, ``ValueError``) into a
    :class:`ConfigurationError` that names ``variable``."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(variable, str(exc)) from None


def parse_all(
    of: type, values: Mapping[str, str], variable: Callable[[str], str]
) -> dict[str, Any]:
    """The settings of ``of`` that ``values`` (strings keyed by variable) sets, parsed:
    keyword arguments for ``of``. Settings it does not set are left out (their defaults apply).

    :raises ConfigurationError: naming the first variable that cannot be parsed.
    """
    parsed = {}
    for name, declaration in declared(of):
        text = values.get(variable(name))
        if text is not None:
            with named(variable(name)):
                parsed[name] = declaration.kind.parse(text)
    return parsed


def check_all(instance: Any, variable: Callable[[str], str]) -> None:
    """Check every setting of a new (frozen) dataclass instance, in field order,
    and keep the checked value (a list given in code is kept as a tuple...).

    :raises ConfigurationError: naming the first variable whose value is wrong.
    """
    for name, declaration in declared(instance):
        with named(variable(name)):
            checked = declaration.kind.check(getattr(instance, name))
        object.__setattr__(instance, name, checked)


def problems(
    of: type,
    values: Mapping[str, str],
    variable: Callable[[str], str],
    *,
    skip: tuple[str, ...] = (),
) -> list[ConfigurationError]:
    """Every variable of ``values`` that is wrong on its own, not only the first.

    :param skip: settings whose value is not a value on its own (the provider
        names, which need the providers' variables).
    """
    found = []
    for name, declaration in declared(of):
        if name not in skip and variable(name) in values:
            try:
                with named(variable(name)):
                    declaration.kind.check(declaration.kind.parse(values[variable(name)]))
            except ConfigurationError as exc:
                found.append(exc)
    return found
