"""Who may do what, once we know who is asking.

* Path access levels: ``public`` (no authentication, credentials ignored),
  ``optional`` (anonymous requests pass without ``REMOTE_USER``, but
  credentials that are sent must be valid) and ``required``; from
  ``RESTAUTH_PUBLIC_PATHS``, ``RESTAUTH_PROTECTED_PATHS``,
  ``RESTAUTH_OPTIONAL_PATHS`` and ``RESTAUTH_DEFAULT_ACCESS``, in that order.
* A network allow-list (``RESTAUTH_ALLOWED_NETWORKS``), checked for every
  request before anything else.
* Read-only groups (``RESTAUTH_READ_ONLY_GROUPS``): GET and HEAD only.
* Rules from a TOML file (``RESTAUTH_RULES_FILE``), per path and method:
  required scopes (403 ``insufficient_scope``), allowed users and groups,
  allowed networks. Every rule that matches a request applies.
* The restrictions an administrator put on an API token.

Every check reads the one :class:`~restauth_wsgi.request.description.Request`: its path
as the router sees it (globs that add checks cover every spelling, globs
that relax them match only the canonical one) and the methods it is
judged as (``HEAD`` as ``GET``, an override header's method too).
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from restauth_wsgi.errors import ConfigurationError, Forbidden, InsufficientScope
from restauth_wsgi.identity import Identity
from restauth_wsgi.request.client_address import ClientAddress, IPAddress
from restauth_wsgi.request.description import Request, judged
from restauth_wsgi.request.paths import REMEMBERED_PATH_LENGTH, PathGlobs, RequestPath
from restauth_wsgi.tokens.restrictions import READ_METHODS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LEVELS = ("required", "optional", "public")
_RULE_KEYS = frozenset({"paths", "methods", "scopes", "groups", "users", "networks"})


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (``10.0.0.0/8``, ``2001:db8::/32``, or a single address) as networks.

    :raises ValueError: naming the one that is not.
    """
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not a network (CIDR) or an address") from None
    return tuple(networks)


def _within(address: IPAddress | None, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


@dataclass(frozen=True)
class Rule:
    """One ``[[rule]]`` of the rules file."""

    paths: PathGlobs
    methods: frozenset[str]
    scopes: tuple[str, ...]
    groups: frozenset[str]
    users: frozenset[str]
    networks: tuple[Network, ...]
    where: str

    def applies(self, request: Request) -> bool:
        """Whether the rule covers this request: any of its judged methods,
        any spelling of its path."""
        return (not self.methods or not self.methods.isdisjoint(request.methods)) and (
            self.paths.covers(request.path)
        )

    def check(self, identity: Identity, address: IPAddress | None) -> None:
        """Raise if the identity may not make a request this rule covers."""
        if self.networks and not _within(address, self.networks):
            raise Forbidden(
                "This resource cannot be reached from your network.",
                reason=f"{self.where}: {address} is not in its networks",
            )
        if (self.users or self.groups) and not (
            identity.username in self.users or identity.groups & self.groups
        ):
            raise Forbidden(
                "You are not allowed to do this.",
                reason=f"{self.where}: {identity.username!r} is not among its users or groups",
            )
        missing = tuple(s for s in self.scopes if s not in identity.scopes)
        if missing:
            raise InsufficientScope(
                f"The token lacks the scope this needs: {' '.join(self.scopes)}.",
                scopes=self.scopes,
                reason=f"{self.where}: missing scope {' '.join(missing)}",
            )


def load_rules(path: str) -> tuple[Rule, ...]:
    """The rules of a TOML file.

    :raises ConfigurationError: naming ``RESTAUTH_RULES_FILE`` and the rule.
    """
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise _invalid(f"{path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _invalid(f"{path} is not valid TOML: {exc}") from None
    extra = set(document) - {"rule"}
    if extra:
        raise _invalid(f"{path}: unknown table {sorted(extra)[0]!r}; use [[rule]]")
    entries = document.get("rule", [])
    if not isinstance(entries, list):
        raise _invalid(f"{path}: write rules as [[rule]]")
    return tuple(_rule(entry, f"rule {n} of {path}") for n, entry in enumerate(entries, 1))


def _invalid(problem: str) -> ConfigurationError:
    return ConfigurationError("RESTAUTH_RULES_FILE", problem)


def _rule(entry: Mapping[str, Any], where: str) -> Rule:
    def strings(key: str) -> tuple[str, ...]:
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _invalid(f"{where}: {key} must be a list of strings")
        return tuple(value)

    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise _invalid(
            f"{where}: unknown key {sorted(unknown)[0]!r}; use {', '.join(sorted(_RULE_KEYS))}",
        )
    paths = strings("paths")
    if not paths or not all(p.startswith("/") for p in paths):
        raise _invalid(f"{where}: paths must be path globs starting with '/'")
    if not any(entry.get(k) for k in ("scopes", "groups", "users", "networks")):
        raise _invalid(
            f"{where}: says nothing to check; give scopes, groups, users or networks",
        )
    try:
        networks = parse_networks(strings("networks"))
    except ValueError as exc:
        raise _invalid(f"{where}: {exc}") from None
    return Rule(
        paths=PathGlobs(paths),
        # HEAD runs the GET view, so a rule on either covers both.
        methods=frozenset(judged(m.upper()) for m in strings("methods")),
        scopes=strings("scopes"),
        groups=frozenset(strings("groups")),
        users=frozenset(strings("users")),
        networks=networks,
        where=where,
    )


class AccessPolicy:
    """The access settings, compiled once."""

    def __init__(
        self,
        *,
        public: Iterable[str] = (),
        protected: Iterable[str] = (),
        optional: Iterable[str] = (),
        default: str = "required",
        networks: Iterable[str] = (),
        read_only_groups: Iterable[str] = (),
        rules: tuple[Rule, ...] = (),
    ) -> None:
        self._public = PathGlobs(public)
        self._protected = PathGlobs(protected)
        self._optional = PathGlobs(optional)
        self._any_globs = bool(self._public.globs or self._protected.globs or self._optional.globs)
        self._levels: dict[RequestPath, str] = {}
        self.default = default
        self.networks = parse_networks(networks)
        self.read_only_groups = frozenset(read_only_groups)
        self.rules = rules
        #: Whether :meth:`authorize` checks anything of an identity without
        #: token restrictions (read-only groups or rules are set).
        self.checks_identities = bool(self.read_only_groups or rules)
        #: Whether anything needs the client address (so it is worked out only then).
        self.needs_address = bool(self.networks) or any(r.networks for r in rules)

    def level(self, path: RequestPath) -> str:
        """``public``, ``optional`` or ``required`` for this path."""
        if not self._any_globs:
            return self.default
        # Paths repeat: each short one's level is worked out once (bounded).
        level = self._levels.get(path)
        if level is None:
            level = self._level(path)
            if len(path.text) <= REMEMBERED_PATH_LENGTH:
                if len(self._levels) > 4096:
                    self._levels.clear()
                self._levels[path] = level
        return level

    def _level(self, path: RequestPath) -> str:
        if self._public.matches(path):
            return "public"
        if self._protected.covers(path):
            return "required"
        if self._optional.matches(path):
            return "optional"
        return self.default

    def check_network(self, client: ClientAddress | None) -> None:
        """Refuse a client outside the allow-list, before anything else."""
        if self.networks:
            address = None if client is None else client.ip
            if not _within(address, self.networks):
                raise Forbidden(
                    "This service cannot be reached from your network.",
                    reason=f"{address} is not in RESTAUTH_ALLOWED_NETWORKS",
                )

    def authorize(self, identity: Identity, request: Request) -> None:
        """Raise :class:`Forbidden` (or :class:`InsufficientScope`) if the
        identity may not make this request."""
        if identity.restrictions is None and not self.checks_identities:
            return
        address = None if request.client is None else request.client.ip
        if identity.restrictions is not None:
            refusal = identity.restrictions.refusal(request.methods, request.path, address)
            if refusal is not None:
                raise Forbidden("This token may not be used for this request.", reason=refusal)
        writes = request.methods - READ_METHODS
        if writes and identity.groups & self.read_only_groups:
            raise Forbidden(
                "You have read-only access.",
                reason=f"{identity.username!r} is in a read-only group; method"
                f" {' and '.join(sorted(writes))}",
            )
        for rule in self.rules:
            if rule.applies(request):
                rule.check(identity, address)
